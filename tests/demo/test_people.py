"""The demo data set: reproducible, plausible, complete, written through the services, once."""

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from contacts import services
from contacts.models import (
    JOURNEY_STAGE_KEY,
    Audience,
    Consent,
    ConsentPurpose,
    Contact,
    ContactKey,
    Disclosure,
    DisclosureSource,
    JourneyStage,
    Organization,
)
from demo.people import DEMO_TLD, WINDOW_SECONDS, demo_contacts_seed, demo_people
from leadrecord.ledger import Actor, ledger_verify
from leadrecord.models import LedgerEntry

from .conftest import demo_seeded, written_by_people

pytestmark = pytest.mark.django_db
SEED_ACTOR = "manage.py seed_demo"
FACT_KEYS = {"budget", "timeline", "team_size", "use_case", "pain_point", "current_tool"}
# Organizations are back-dated a little before their oldest member.
OLDEST = timedelta(seconds=WINDOW_SECONDS) + timedelta(days=3)


def test_the_same_seed_gives_the_same_people_and_another_seed_others():
    first, again = demo_people(40, 7), demo_people(40, 7)
    assert first == again
    other = demo_people(40, 8)
    assert {p.email for p in other.people} != {p.email for p in first.people}


def test_the_people_are_plausible_and_consistent():
    data = demo_people(200, 7)
    assert len(data.organizations) == 25
    assert len(data.people) == 200
    domains = {organization.domain for organization in data.organizations}
    assert len(domains) == 25
    assert all(domain.endswith(f".{DEMO_TLD}") for domain in domains)
    emails = [person.email for person in data.people]
    assert len(set(emails)) == 200
    assert {person.organization_domain for person in data.people} == domains
    assert len({person.title for person in data.people}) >= 10
    for person in data.people:
        assert person.email.endswith(f"@{person.organization_domain}")
        assert person.email.isascii()
        assert timedelta(0) < person.age <= timedelta(seconds=WINDOW_SECONDS)
        for consent in person.consents:
            assert timedelta(0) < consent.age <= person.age
        for disclosure in person.disclosures:
            assert timedelta(0) < disclosure.age < person.age
            if disclosure.withdrawn_age is not None:
                assert timedelta(0) < disclosure.withdrawn_age <= disclosure.age
            if disclosure.expires_in is not None:
                assert disclosure.expires_in > -disclosure.age  # expires after it was disclosed


@pytest.fixture(scope="module")
def seeded(django_db_setup: None, django_db_blocker: object) -> Iterator[str]:
    with demo_seeded(django_db_blocker, contacts=40) as out:
        yield out


def test_seed_demo_creates_the_people_the_seed_describes(seeded):
    data = demo_people(40, 7)
    assert Organization.objects.count() == 5
    assert Contact.objects.count() == 40
    assert set(Contact.objects.values_list("email", flat=True)) == {
        person.email for person in data.people
    }
    for email, domain in Contact.objects.values_list("email", "organization__domain"):
        assert str(email).endswith(f"@{domain}")
    # What the demo's buyers sent through the form and changed in the portal is theirs,
    # on top of the people's plan (demo/buyers.py).
    disclosures = Disclosure.objects.exclude(pk__in=written_by_people("disclosure"))
    consents = Consent.objects.exclude(pk__in=written_by_people("consent"))
    written = set(disclosures.values_list("contact__email", "key", "value", "audience"))
    planned = {
        (person.email, d.key, d.value, d.audience)
        for person in data.people
        for d in person.disclosures
    }
    assert written == planned
    assert consents.count() == sum(len(person.consents) for person in data.people)
    assert "organizations     5 created" in seeded
    assert "contacts         40 created" in seeded


def test_seed_demo_covers_every_audience_source_and_stage(seeded):
    disclosures = Disclosure.objects.all()
    assert set(disclosures.values_list("audience", flat=True)) == set(Audience.values)
    assert set(disclosures.values_list("source", flat=True)) == set(DisclosureSource.values)
    stages = disclosures.filter(key=JOURNEY_STAGE_KEY).values_list("value", flat=True)
    assert set(stages) == set(JourneyStage.values)
    assert set(disclosures.values_list("key", flat=True)) >= FACT_KEYS
    assert len(set(disclosures.values_list("purpose", flat=True))) >= 3
    now = timezone.now()
    assert disclosures.filter(withdrawn_at__isnull=False).exists()
    assert disclosures.filter(expires_at__lte=now).exists()
    assert disclosures.filter(expires_at__gt=now).exists()


def test_seed_demo_consents_have_a_history_with_withdrawals(seeded):
    # A withdrawal in the portal names no notice version (demo/buyers.py); the plan's do.
    consents = Consent.objects.exclude(pk__in=written_by_people("consent"))
    assert set(consents.values_list("purpose", flat=True)) == set(ConsentPurpose.values)
    assert set(consents.values_list("notice_version", flat=True)) <= {"2026-01", "2026-06"}
    withdrawn = [
        consent
        for consent in consents.filter(granted=False)
        if consents.filter(
            contact=consent.contact,
            purpose=consent.purpose,
            granted=True,
            occurred_at__lt=consent.occurred_at,
        ).exists()
    ]
    assert withdrawn
    assert len(set(consents.values_list("source", flat=True))) >= 4


def test_seed_demo_is_back_dated_over_half_a_year_and_never_in_the_future(seeded):
    now = timezone.now()
    times = [
        *Contact.objects.values_list("created_at", flat=True),
        *Organization.objects.values_list("created_at", flat=True),
        *Consent.objects.values_list("occurred_at", flat=True),
        *Disclosure.objects.values_list("disclosed_at", flat=True),
    ]
    times += [
        moment
        for moment in Disclosure.objects.values_list("withdrawn_at", flat=True)
        if moment is not None
    ]
    assert all(now - OLDEST <= moment <= now for moment in times)
    assert min(times) < now - timedelta(days=90)
    assert max(times) > now - timedelta(days=30)
    entries = LedgerEntry.objects.all()
    assert set(entries.values_list("actor_label", flat=True)) >= {SEED_ACTOR}
    assert entries.filter(occurred_at__lt=now - timedelta(days=30)).exists()


def test_seed_demo_is_on_the_ledger_and_the_ledger_verifies(seeded):
    result = ledger_verify()
    assert result.ok
    demo_entries = LedgerEntry.objects.filter(actor_label=SEED_ACTOR)
    # The buyer's side (demo/buyers.py) is written by the people themselves, not the seed.
    disclosures = Disclosure.objects.exclude(pk__in=written_by_people("disclosure"))
    expected = (
        Organization.objects.count()
        + Contact.objects.count()
        + Consent.objects.exclude(pk__in=written_by_people("consent")).count()
        + disclosures.count()
        + disclosures.exclude(withdrawn_at=None).count()
        + 6  # the demo users
        + 1  # the demo CRM's webhook endpoint
    )
    assert demo_entries.count() == expected
    assert result.entries == LedgerEntry.objects.count()  # the pipeline's are the rest


def test_running_seed_demo_again_changes_nothing(seeded, capsys):
    models = (Organization, Contact, ContactKey, Consent, Disclosure, LedgerEntry)
    before = {model: model.objects.count() for model in models}
    withdrawn = Disclosure.objects.exclude(withdrawn_at=None).count()
    call_command("seed_demo", contacts=40)
    assert {model: model.objects.count() for model in models} == before
    assert Disclosure.objects.exclude(withdrawn_at=None).count() == withdrawn
    assert "40 already exist" in capsys.readouterr().out
    assert ledger_verify().ok


def test_an_erased_demo_person_is_not_created_again(seeded):
    contact = Contact.objects.earliest("id")
    services.contact_erase(contact=contact, actor=Actor.system("test"))
    entries = LedgerEntry.objects.count()
    summary = demo_contacts_seed(count=40, seed=7, actor=Actor.system(SEED_ACTOR))
    assert summary.skipped
    assert summary.contacts == 0
    assert LedgerEntry.objects.count() == entries
    assert Contact.objects.count() == 40
    assert Contact.objects.filter(erased_at__isnull=False).count() == 1


@pytest.mark.django_db
def test_no_contacts_asked_for_none_created():
    before = (Organization.objects.count(), Contact.objects.count())
    summary = demo_contacts_seed(count=0, seed=7, actor=Actor.system(SEED_ACTOR))
    assert (summary.organizations, summary.contacts, summary.skipped) == (0, 0, False)
    assert (Organization.objects.count(), Contact.objects.count()) == before
