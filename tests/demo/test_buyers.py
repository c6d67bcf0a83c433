"""The demo's buyer's side: a published form, consented visits, a person in the portal."""

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.utils import timezone

from buyers.models import BuyerForm, DailyVisitCount, FormSubmission, Visit, Visitor
from buyers.services import VISIT_SOURCE_SYSTEM
from contacts.models import Audience, Touch, TouchKind
from demo.buyers import DEMO_FORM_SLUG
from leadrecord.ledger import ledger_verify
from leadrecord.models import ActorKind, LedgerEntry

from .conftest import demo_seeded

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def seeded(django_db_setup: None, django_db_blocker: object) -> Iterator[str]:
    with demo_seeded(django_db_blocker, contacts=40) as out:
        yield out


def test_the_demo_form_is_published_and_was_sent(seeded, client):
    form = BuyerForm.objects.get(slug=DEMO_FORM_SLUG)
    assert form.published and form.campaign is not None
    assert client.get(f"/f/{DEMO_FORM_SLUG}/").status_code == 200
    submissions = FormSubmission.objects.filter(form=form)
    assert submissions.count() == 4
    assert submissions.filter(campaign__utm_campaign="lead-routing-software").exists()
    assert not submissions.filter(shared_device=True).exists()
    assert "Demo buyer's side (form /f/talk-to-us/)" in seeded


def test_consented_visits_became_touches_dated_when_they_happened(seeded):
    visits = Touch.objects.filter(kind=TouchKind.VISIT, source_system=VISIT_SOURCE_SYSTEM).order_by(
        "occurred_at"
    )
    assert visits.count() == 3
    assert len({touch.contact_id for touch in visits}) == 1
    # The first and the last campaign the visitor came from both stay.
    assert [touch.campaign.utm_campaign if touch.campaign else "" for touch in visits] == [
        "monthly-edition",
        "lead-routing-software",
        "",
    ]
    first = visits[0]
    assert first.occurred_at < timezone.now() - timedelta(days=13)
    assert not Visit.objects.exists()  # kept visits are gone once they are touches
    assert Visitor.objects.filter(contact=first.contact).exists()
    # Views without consent are only counted.
    assert DailyVisitCount.objects.aggregate(views=Sum("views"))["views"] == 5


def test_a_person_used_the_portal_and_it_is_on_the_ledger_as_theirs(seeded):
    portal = LedgerEntry.objects.filter(
        actor_kind=ActorKind.PERSON, actor_label__endswith="via portal"
    )
    # (and what follows from it by the rules, e.g. a score that no longer qualifies)
    assert set(portal.values_list("action", flat=True)) >= {
        "consent.record",
        "disclosure.record",
        "disclosure.withdraw",
    }
    assert len(set(portal.values_list("contact_id", flat=True))) == 1
    assert ledger_verify().ok


def test_a_budget_told_to_sales_alone_stays_with_sales(seeded):
    submission = FormSubmission.objects.filter(campaign__utm_campaign="lead-routing-software").get()
    budget = submission.contact.disclosures.get(key="budget", value="About 40,000 a year")
    assert budget.audience == Audience.SALES


def test_running_seed_demo_again_adds_no_buyer(seeded):
    counts = (FormSubmission.objects.count(), Touch.objects.count(), LedgerEntry.objects.count())
    call_command("seed_demo", contacts=40)
    assert (
        FormSubmission.objects.count(),
        Touch.objects.count(),
        LedgerEntry.objects.count(),
    ) == counts
