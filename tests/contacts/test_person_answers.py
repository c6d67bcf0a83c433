"""Several consents and disclosures at once (a form sent): one set-based write that
leaves the same record as recording them one by one."""

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from contacts import services
from contacts.models import Consent, Contact, Disclosure
from contacts.sealing import contact_keys, unseal
from contacts.services import ConsentInput, DisclosureInput
from leadrecord.errors import Conflict, InvalidInput
from leadrecord.ledger import Actor, ledger_verify
from leadrecord.models import LedgerEntry

from ..factories import contact_make

pytestmark = pytest.mark.django_db
PERSON = Actor.person(None, "form test")
CONSENTS = [
    ConsentInput(purpose="marketing_email", granted=True, source="form:x", notice_version=" v1 "),
    ConsentInput(purpose="sales_contact", granted=True, source="form:x", notice_version="s1"),
]
DISCLOSURES = [
    DisclosureInput(
        key="journey_stage",
        value="comparing",
        audience="all",
        purpose="qualification",
        source="form",
    ),
    DisclosureInput(
        key="budget", value="  50k  ", audience="sales", purpose="qualification", source="form"
    ),
]


def _rows(contact: Contact) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    consents = Consent.objects.filter(contact=contact).order_by("id")
    disclosures = Disclosure.objects.filter(contact=contact).order_by("id")
    return (
        list(consents.values_list("purpose", "granted", "source", "notice_version", "occurred_at")),
        list(
            disclosures.values_list(
                "key", "value", "audience", "purpose", "source", "disclosed_at", "expires_at"
            )
        ),
    )


def _entries(contact: Contact) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """Each consent or disclosure entry's action, actor, plain payload and sealed values."""
    key = contact_keys([contact.pk])[contact.pk]
    entries = LedgerEntry.objects.filter(
        contact_id=contact.pk, subject_type__in=("consent", "disclosure")
    ).order_by("seq")
    return [
        (
            entry.action,
            entry.actor_label,
            {k: v for k, v in (entry.after or {}).items() if k != "sealed"},
            unseal(key=key, contact_id=contact.pk, payload=entry.after),
        )
        for entry in entries
    ]


def test_the_record_is_the_same_as_one_by_one():
    when = timezone.now() - timedelta(days=2)
    batched, single = contact_make(), contact_make()
    consents, disclosures = services.person_answers_record(
        contact=batched,
        consents=CONSENTS,
        disclosures=DISCLOSURES,
        actor=PERSON,
        occurred_at=when,
    )
    for item in CONSENTS:
        services.consent_record(
            contact=single,
            purpose=item.purpose,
            granted=item.granted,
            source=item.source,
            notice_version=item.notice_version,
            actor=PERSON,
            occurred_at=when,
        )
    for answer in DISCLOSURES:
        services.disclosure_record(
            contact=single,
            key=answer.key,
            value=answer.value,
            audience=answer.audience,
            purpose=answer.purpose,
            source=answer.source,
            actor=PERSON,
            occurred_at=when,
        )

    assert _rows(batched) == _rows(single)
    assert _rows(batched)[1][1][1] == "50k"  # trimmed, as one by one
    assert _entries(batched) == _entries(single)
    assert [c.pk for c in consents] == list(
        Consent.objects.filter(contact=batched).order_by("id").values_list("id", flat=True)
    )
    assert all(d.pk for d in disclosures)
    assert ledger_verify().ok


def test_the_statements_do_not_grow_with_the_answers():
    few, many = contact_make(), contact_make()
    with CaptureQueriesContext(connection) as one_each:
        services.person_answers_record(
            contact=few, consents=CONSENTS[:1], disclosures=DISCLOSURES[1:], actor=PERSON
        )
    more = [
        DisclosureInput(
            key=key, value="x", audience="marketing", purpose="qualification", source="form"
        )
        for key in ("timeline", "team_size", "use_case", "pain_point")
    ]
    with CaptureQueriesContext(connection) as several:
        services.person_answers_record(
            contact=many,
            consents=[
                *CONSENTS[:1],
                ConsentInput(purpose="analytics", granted=True, source="form:x"),
            ],
            disclosures=[*DISCLOSURES[1:], *more],
            actor=PERSON,
        )
    assert Disclosure.objects.filter(contact=many).count() == 5
    assert len(several.captured_queries) == len(one_each.captured_queries)


@pytest.mark.parametrize(
    ("consents", "disclosures", "attr"),
    [
        ([ConsentInput(purpose="telepathy", granted=True, source="form:x")], [], "purpose"),
        (
            CONSENTS,
            [*DISCLOSURES, DisclosureInput("budget", "1", "everyone", "qualification", "form")],
            "audience",
        ),
        (
            CONSENTS,
            [DisclosureInput("journey_stage", "bored", "all", "qualification", "form")],
            "value",
        ),
        (CONSENTS, [DisclosureInput("<script>", "1", "all", "qualification", "form")], "key"),
    ],
)
def test_one_wrong_answer_writes_nothing_and_names_its_field(consents, disclosures, attr):
    contact = contact_make()
    entries = LedgerEntry.objects.count()
    with pytest.raises(InvalidInput) as refused:
        services.person_answers_record(
            contact=contact, consents=consents, disclosures=disclosures, actor=PERSON
        )
    assert refused.value.attr == attr
    assert not Consent.objects.filter(contact=contact).exists()
    assert not Disclosure.objects.filter(contact=contact).exists()
    assert LedgerEntry.objects.count() == entries


def test_an_erased_person_gets_nothing_recorded():
    contact = contact_make()
    services.contact_erase(contact=contact, actor=Actor.system("test"))
    entries = LedgerEntry.objects.count()
    with pytest.raises(Conflict):
        services.person_answers_record(
            contact=contact, consents=CONSENTS, disclosures=DISCLOSURES, actor=PERSON
        )
    assert not Disclosure.objects.filter(contact=contact).exists()
    assert LedgerEntry.objects.count() == entries


def test_nothing_to_record_writes_nothing():
    contact = contact_make()
    entries = LedgerEntry.objects.count()
    assert services.person_answers_record(contact=contact, actor=PERSON) == ([], [])
    assert LedgerEntry.objects.count() == entries
