"""A new person's form post in a few statements (buyers.bulk, PostgreSQL): the same record
as the services write, hostile and oversized values refused or kept exactly, and a
clash with a concurrent writer ending as the services' path ends it."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models import Model, QuerySet
from django.test import Client
from django.test.utils import CaptureQueriesContext

from buyers import services
from buyers.models import BuyerForm, FormSubmission, Visitor
from contacts import signals
from contacts.models import Consent, Contact, ContactKey, Disclosure, Organization, Touch
from contacts.sealing import unseal
from contacts.selectors import campaign_for_utm, organization_find
from contacts.services import contact_create, organization_get_or_create
from handoff import services as handoff_services
from handoff.models import Qualification
from leadrecord.ledger import ledger_verify
from leadrecord.models import LedgerEntry
from tests.plans import plan_without_scans

from .conftest import SYSTEM, send

# Each test its own transactions, as in production: a post defers its ledger entries only
# in a transaction of its own (one that already holds the ledger lock does not).
pytestmark = [pytest.mark.postgres]

FAST = "EXECUTE leadrecord_form_write"


def _submit(
    buyer_form: BuyerForm, email: str, *, fast: bool, **data: Any
) -> tuple[services.Sent, list[str]]:
    """The same post by a new person, through the few statements or through the services
    (a browser with a visitor id the record does not know goes the services' way, and
    otherwise records what a browser without one does)."""
    defaults: dict[str, Any] = {
        "first_name": "  Ada ",
        "last_name": "Lovelace",
        "organization": "Acme",
        "consents": frozenset({"marketing_email", "analytics", "sales_contact"}),
        "answers": {
            "journey_stage": services.Answer("comparing", "all"),
            "budget": services.Answer("50k ", "sales"),
            "timeline": services.Answer("Q3", "marketing"),
        },
    }
    with CaptureQueriesContext(connection) as queries:
        sent = services.form_submit(
            form=buyer_form,
            data=services.FormInput(email=email, **{**defaults, **data}),
            arrival=services.Arrival(
                page_url="https://www.buyers.example/demo?utm_campaign=spring-2026&gclid=g1",
                referrer="https://search.example/",
                utm={"utm_campaign": "spring-2026", "utm_source": "google"},
                click_ids={"gclid": "g1"},
            ),
            visitor_token=None if fast else "a-browser-the-record-does-not-know",
        )
    sql = [query["sql"] for query in queries.captured_queries]
    assert any(FAST in text for text in sql) == fast, sql
    return sent, sql


def _rows(queryset: QuerySet[Any], *exclude: str) -> list[dict[str, Any]]:
    model: type[Model] = queryset.model
    names = [
        field.attname
        for field in model._meta.concrete_fields
        if field.attname not in {"id", *exclude}
    ]
    return list(queryset.order_by("id").values(*names))


def _record(email: str) -> dict[str, Any]:
    """Everything a post put on the record for ``email``, without ids, times and the
    email itself; sealed ledger values unsealed."""
    contact = Contact.objects.get(email_key=email)
    key = bytes(ContactKey.objects.get(contact=contact).key)
    touch = Touch.objects.get(contact=contact)
    submission = FormSubmission.objects.get(contact=contact)
    assert submission.touch_id == touch.pk
    times = ("occurred_at", "recorded_at", "disclosed_at", "created_at", "submitted_at")
    entries = []
    subjects: dict[str, list[str]] = {}
    for entry in LedgerEntry.objects.filter(contact_id=contact.pk).order_by("seq"):
        ranks = subjects.setdefault(entry.subject_type, [])
        if entry.subject_id not in ranks:
            ranks.append(entry.subject_id)
        payloads = []
        for payload in (entry.before, entry.after):
            if isinstance(payload, dict):
                payload = dict(payload)
                if "sealed" in payload:
                    values = unseal(key=key, contact_id=contact.pk, payload=payload)
                    if values.get("email") == email:
                        values["email"] = "the email"
                    payload["sealed"] = values
                if payload.get("touch") == touch.pk:
                    payload["touch"] = "the touch"
            payloads.append(payload)
        entries.append(
            (
                entry.action,
                entry.subject_type,
                ranks.index(entry.subject_id),
                entry.actor_kind,
                entry.actor_id,
                entry.actor_label.replace(f"#{contact.pk} ", "#the-person "),
                entry.reason,
                *payloads,
            )
        )
    return {
        "contact": _rows(Contact.objects.filter(pk=contact.pk), "email", "email_key", *times),
        "consents": _rows(Consent.objects.filter(contact=contact), "contact_id", *times),
        "disclosures": _rows(Disclosure.objects.filter(contact=contact), "contact_id", *times),
        "touch": _rows(Touch.objects.filter(pk=touch.pk), "contact_id", *times),
        "submission": _rows(
            FormSubmission.objects.filter(pk=submission.pk), "contact_id", "touch_id", *times
        ),
        "visitors": Visitor.objects.filter(contact=contact).count(),
        "qualifications": _rows(
            Qualification.objects.filter(contact=contact), "contact_id", "qualified_at", *times
        ),
        "entries": entries,
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("scoring", [False, True], ids=["no ruleset", "active ruleset"])
def test_the_few_statements_write_what_the_services_write(buyer_form, campaign, scoring):
    organization_get_or_create(name="Acme", actor=SYSTEM)
    if scoring:
        # Scores follow the answers and then the touch: the person qualifies on the touch.
        ruleset = handoff_services.ruleset_create(
            name="r",
            points={"disclosure:budget": 15, "kind:form": 60},
            mql_threshold=50,
            sla_hours=24,
            actor=SYSTEM,
        )
        handoff_services.ruleset_activate(ruleset=ruleset, actor=SYSTEM)
    fast, _ = _submit(buyer_form, "fast@buyers.example", fast=True)
    slow, _ = _submit(buyer_form, "slow@buyers.example", fast=False)

    assert fast.visitor_token and slow.visitor_token  # analytics consent: a visitor id each
    assert fast.submission.contact.email == "fast@buyers.example"
    assert _record("fast@buyers.example") == _record("slow@buyers.example")
    record = _record("fast@buyers.example")
    assert [entry[0] for entry in record["entries"]][:5] == [
        "contact.create",
        "consent.record",
        "consent.record",
        "consent.record",
        "disclosure.record",
    ]
    assert record["entries"][-1][0] == "form.submit"
    assert record["submission"][0]["campaign_id"] == campaign.pk
    assert bool(record["qualifications"]) == scoring
    assert ledger_verify().ok


@pytest.mark.django_db(transaction=True)
def test_a_known_email_an_unknown_organization_and_no_organization(buyer_form):
    """Only a new person at a known organization (or none) takes the few statements; the
    rest is the services' as before."""
    contact_create(email="known@buyers.example", actor=SYSTEM)
    _submit(buyer_form, "known@buyers.example", fast=False)  # known: the services
    sent, _ = _submit(buyer_form, "new@buyers.example", fast=False, organization="Initech")
    assert sent.submission.created_person
    assert Organization.objects.filter(name="Initech").count() == 1
    # The organization is known now, and a person without one links to none.
    _submit(buyer_form, "next@buyers.example", fast=True, organization="initech")
    _submit(buyer_form, "none@mail.example", fast=True, organization="")
    initech = Organization.objects.get(name="Initech")
    assert Contact.objects.get(email_key="next@buyers.example").organization == initech
    assert Contact.objects.get(email_key="none@mail.example").organization is None
    assert ledger_verify().ok


HOSTILE = "O'Brien\\\t\n%s $1 ');DROP TABLE contacts_contact;-- “quoted” \u202e 🙂"


@pytest.mark.django_db(transaction=True)
def test_hostile_values_are_kept_exactly(buyer_form):
    _submit(
        buyer_form,
        "hostile@buyers.example",
        fast=True,
        first_name=HOSTILE,
        organization="",
        answers={"timeline": services.Answer(HOSTILE, "marketing")},
    )
    contact = Contact.objects.get(email_key="hostile@buyers.example")
    assert contact.first_name == HOSTILE.strip()
    disclosure = Disclosure.objects.get(contact=contact)
    assert disclosure.value == HOSTILE.strip()
    key = bytes(ContactKey.objects.get(contact=contact).key)
    entry = LedgerEntry.objects.get(action="disclosure.record", contact_id=contact.pk)
    assert unseal(key=key, contact_id=contact.pk, payload=entry.after) == {"value": HOSTILE.strip()}
    assert ledger_verify().ok


def _counts() -> tuple[int, ...]:
    return tuple(
        model.objects.count()
        for model in (Contact, Consent, Disclosure, Touch, FormSubmission, LedgerEntry)
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("first_name", "x" * 5000),
        ("organization", "o" * 5000),
        ("budget", "b" * 5000),
        ("budget", "50k\x00"),
        ("email", "x@buyers.example');DROP TABLE contacts_contact;--"),
        ("email", ""),
        ("journey_stage", "ready_to_talk'; --"),
        ("budget__audience", "everyone"),
        ("utm_campaign", "c" * 5000),
    ],
)
def test_oversized_and_hostile_posts_are_refused_naming_the_field(buyer_form, field, value):
    organization_get_or_create(name="Acme", actor=SYSTEM)
    before = _counts()
    body = {"email": "bad@buyers.example", "organization": "Acme", "budget": "50k"}
    response = send(Client(), buyer_form.slug, {**body, field: value})
    assert response.status_code == 400, response.content[:300]
    assert field in response.context["form"].errors
    assert _counts() == before


@pytest.mark.django_db(transaction=True)
def test_a_refused_post_leaves_the_next_one_its_statements(buyer_form):
    """A post undone after its rows went in (the form unpublished meanwhile) leaves the
    connection's prepared statements for the next post."""
    organization_get_or_create(name="Acme", actor=SYSTEM)
    _submit(buyer_form, "first@buyers.example", fast=True)
    before = _counts()
    BuyerForm.objects.filter(pk=buyer_form.pk).update(published=False)
    with pytest.raises(services.InvalidInput):
        _submit(buyer_form, "second@buyers.example", fast=True)
    assert _counts() == before
    BuyerForm.objects.filter(pk=buyer_form.pk).update(published=True)
    _, sql = _submit(buyer_form, "third@buyers.example", fast=True)
    assert not [text for text in sql if text.startswith("PREPARE")]
    assert Contact.objects.filter(email_key="third@buyers.example").exists()


@pytest.mark.django_db(transaction=True)
def test_the_same_email_made_meanwhile_ends_as_a_known_persons_post(buyer_form):
    """Another writer inserts the same email while the post is under way: the post's
    insert waits for it, clashes, is undone and sent again the services' way, which
    finds the person."""
    email = "race@buyers.example"
    made = threading.Event()
    errors: list[BaseException] = []

    def other_writer() -> None:
        try:
            with transaction.atomic():
                contact_create(email=email, actor=SYSTEM)
                made.set()
                time.sleep(1)  # the post reads no such person, and then waits on this
        except BaseException as error:
            errors.append(error)
            made.set()
        finally:
            connection.close()

    thread = threading.Thread(target=other_writer)
    thread.start()
    assert made.wait(10)
    response = send(Client(), buyer_form.slug, {"email": email, "budget": "50k"})
    thread.join(10)
    assert not errors
    assert response.status_code == 200, response.content[:300]
    contact = Contact.objects.get(email_key=email)
    submission = FormSubmission.objects.get(contact=contact)
    assert not submission.created_person
    assert Disclosure.objects.filter(contact=contact, key="budget").count() == 1
    assert ledger_verify().ok


@pytest.mark.django_db(transaction=True)
def test_a_post_redone_after_preparing_leaves_the_connection_usable(buyer_form):
    """A post undone after its statement was prepared (an organization made meanwhile,
    which its flush rechecks): the statement outlasts the transaction, and the next post
    on the same connection runs it rather than preparing it again."""
    organization_get_or_create(name="Acme", actor=SYSTEM)
    connection.close()  # a new session: nothing prepared on it yet
    made: list[threading.Thread] = []
    errors: list[BaseException] = []

    def other_writer() -> None:
        try:
            organization_get_or_create(name="Initech", actor=SYSTEM)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    def meanwhile(sender: Any, **_: Any) -> None:
        if not made:
            made.append(threading.Thread(target=other_writer))
            made[0].start()
            made[0].join(10)

    signals.contacts_changed.connect(meanwhile, weak=False, dispatch_uid="test.fast.meanwhile")
    try:
        _submit(buyer_form, "first@buyers.example", fast=True)
    finally:
        signals.contacts_changed.disconnect(dispatch_uid="test.fast.meanwhile")
    assert made and not errors
    # Redone the services' way (which would not take the few statements' path again).
    assert Organization.objects.filter(name="Initech").exists()
    assert Contact.objects.filter(email_key="first@buyers.example").exists()
    _, sql = _submit(buyer_form, "second@buyers.example", fast=True)
    assert not [text for text in sql if text.startswith("PREPARE leadrecord_form_write")]
    assert Contact.objects.filter(email_key="second@buyers.example").exists()
    assert ledger_verify().ok


@pytest.mark.django_db(transaction=True)
def test_the_read_finds_organizations_and_campaigns_through_an_index(buyer_form, campaign):
    """A record holds many organizations and campaigns: the form post's one read, and the
    services' own lookups, must be able to find a name or a utm_campaign in any case
    through an index, not by reading every row (the planner is told to avoid a scan, so
    only an expression no index serves shows one)."""
    organization_get_or_create(name="ACME", actor=SYSTEM)
    organization_get_or_create(name="Initech", domain="initech.example", actor=SYSTEM)
    captured: list[tuple[str, Any]] = []

    def keep(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        captured.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(keep):
        _submit(buyer_form, "indexed@buyers.example", fast=True)
        # No organization named: the one of the email's domain.
        _submit(buyer_form, "p@initech.example", fast=True, organization="")
        assert organization_find("acme", "") is not None
        assert campaign_for_utm("SPRING-2026") == campaign
    reads = [
        (sql[sql.index("EXECUTE leadrecord_form_read") :], params)
        for sql, params in captured
        if "leadrecord_form_read" in sql
    ]
    lookups = [
        (sql, params)
        for sql, params in captured
        if "leadrecord_form_read" not in sql
        and ("FROM contacts_organization WHERE" in sql or "utm_campaign) = UPPER" in sql)
    ]
    assert len(reads) == 2 and len(lookups) == 2
    for sql, params in [*reads, *lookups]:
        # A prepared statement comes to be planned for any value (its generic plan).
        plan = plan_without_scans(sql, params, generic=True)
        if "contacts_organization" in sql or "leadrecord_form_read_name" in sql:
            assert "organization_name_lower" in plan, plan
        if "leadrecord_form_read_domain" in sql:
            assert "organization_domain_unique" in plan, plan
        if "utm_campaign" in sql or "leadrecord_form_read" in sql:
            assert "campaign_utm_campaign_upper" in plan, plan
