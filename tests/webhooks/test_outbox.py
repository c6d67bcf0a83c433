"""The outbox: every event type, written with the change it follows, scoped by audience.

A real HTTP receiver on loopback gets each delivery, and the standardwebhooks package
(not the product's code) verifies every signature.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, cast

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from contacts import services as contact_services
from contacts.models import Audience, Channel, Contact, Disclosure, Organization
from handoff import services as handoff_services
from handoff.models import Handoff
from leadrecord.ledger import Actor, LedgerWatcher, WrittenEntry, ledger_verify, ledger_watch
from leadrecord.models import LedgerAction, LedgerEntry
from reports.runs import run_execute, run_request
from tests.factories import UserFactory, contact_make
from webhooks import services
from webhooks.delivery import deliveries_run
from webhooks.events import Facts, event_data, event_type_of
from webhooks.models import Endpoint, EventType, Message, MessageStatus
from webhooks.outbox import messages_expand

from .receiver import Receiver

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("webhook tests")


def _endpoint(url: str, event_types: list[str], audience: str = "sales") -> tuple[Endpoint, str]:
    return services.endpoint_create(
        url=url, event_types=event_types, audience=audience, actor=SYSTEM
    )


def _ruleset_active() -> None:
    ruleset = handoff_services.ruleset_create(
        name="v1", points={}, mql_threshold=100, sla_hours=1, actor=SYSTEM
    )
    handoff_services.ruleset_activate(ruleset=ruleset, actor=SYSTEM)


def _consented(contact: Contact) -> None:
    contact_services.consent_record(
        contact=contact, purpose="sales_contact", granted=True, source="form", actor=SYSTEM
    )


@dataclass(frozen=True)
class _People:
    ada: Contact
    bob: Contact
    cy: Contact
    dup: Contact
    rep: User


def _every_event_type_happens() -> _People:
    """One change of every kind an event type stands for."""
    rep = cast(User, UserFactory(role="sales_rep"))
    _ruleset_active()  # ruleset.activated
    ada = contact_make(organization="example.com")  # contact.created
    _consented(ada)  # consent.granted
    contact_services.consent_record(
        contact=ada, purpose="marketing_email", granted=False, source="form", actor=SYSTEM
    )  # consent.withdrawn
    disclosure = contact_services.disclosure_record(
        contact=ada,
        key="budget",
        value="50k",
        audience="sales",
        purpose="qualification",
        source="form",
        actor=SYSTEM,
    )  # disclosure.recorded
    contact_services.disclosure_withdraw(disclosure=disclosure, actor=SYSTEM)
    _disclose(ada, "all", "EVERYONE-1234", key="industry")
    _disclose(ada, "marketing", "MKT-5678", key="newsletter_topic")
    contact_services.touch_record(
        contact=ada, channel=Channel.objects.get(key="webinar"), actor=SYSTEM
    )  # touch.recorded
    accepted = handoff_services.handoff_create(contact=ada, actor=SYSTEM)
    handoff_services.handoff_accept(handoff=accepted, user=rep)
    bob = contact_make(organization="example.com")
    _consented(bob)
    rejected = handoff_services.handoff_create(contact=bob, actor=SYSTEM)
    handoff_services.handoff_reject(handoff=rejected, user=rep, reason="bad_timing")
    cy = contact_make(organization="example.com")
    _consented(cy)
    handoff_services.handoff_create(
        contact=cy, actor=SYSTEM, occurred_at=timezone.now() - timedelta(hours=2)
    )
    assert handoff_services.handoffs_expire_due() == 1
    deal, _ = handoff_services.deal_create(
        name="Example rollout",
        organization=cast(Organization, ada.organization),
        members=[handoff_services.Member(contact=ada, role="champion")],
        amount=Decimal("48000"),
        actor=SYSTEM,
    )
    handoff_services.sale_event_record(deal=deal, kind="won", amount=Decimal("48000"), actor=SYSTEM)
    handoff_services.deal_source_override(deal=deal, source="sales", reason="CRM", actor=SYSTEM)
    run, _ = run_request(trigger="command")
    assert run_execute(run_id=run.pk).status == "complete"
    dup = contact_make(organization="example.com")
    contact_services.contact_merge(keep=bob, merge=dup, actor=SYSTEM)
    contact_services.contact_erase(contact=cy, actor=SYSTEM)
    return _People(ada, bob, cy, dup, rep)


def test_every_event_type_arrives_signed_in_sequence(receiver: Receiver) -> None:
    _, secret = _endpoint(receiver.url, list(EventType.values), audience="sales")
    people = _every_event_type_happens()
    ada, bob, cy, dup, rep = people.ada, people.bob, people.cy, people.dup, people.rep

    assert deliveries_run() == Message.objects.count()
    bodies = [got.verified(secret) for got in receiver.received]
    assert {body["type"] for body in bodies} == set(EventType.values)
    # Sequence numbers are the endpoint's own, from 1 without gaps, in ledger order.
    by_sequence = sorted(bodies, key=lambda body: body["data"]["sequence"])
    assert [body["data"]["sequence"] for body in by_sequence] == list(range(1, len(bodies) + 1))
    seqs = [body["data"]["ledger_seq"] for body in by_sequence]
    assert seqs == sorted(seqs)
    # A person's events arrive in their order.
    for person in (ada, bob, cy):
        theirs = [b["data"]["sequence"] for b in bodies if b["data"].get("contact") == person.pk]
        assert theirs == sorted(theirs) and len(theirs) >= 2
    ids = [got.id for got in receiver.received]
    assert len(set(ids)) == len(ids)
    assert set(ids) == set(Message.objects.values_list("id", flat=True))
    assert not Message.objects.exclude(status=MessageStatus.DELIVERED).exists()
    by_type = {body["type"]: body for body in reversed(by_sequence)}  # the first of each
    assert by_type["contact.merged"]["data"]["merged"] == dup.pk
    # Withdrawn before it was sent: the value went with the withdrawal.
    assert "value" not in by_type["disclosure.recorded"]["data"]
    assert "50k" not in b"".join(receiver.bodies()).decode()
    assert by_type["handoff.accepted"]["data"]["owner"] == rep.get_username()
    assert by_type["contact.created"]["data"]["links"]["self"] == f"/api/v1/contacts/{ada.pk}/"
    # Each event names the ledger entry it comes from.
    for body in bodies:
        entry = LedgerEntry.objects.get(seq=body["data"]["ledger_seq"])
        assert entry.recorded_at.isoformat(timespec="microseconds") == body["timestamp"]
    # The erased event says who, nothing about them.
    assert by_type["contact.erased"]["data"] == {
        "contact": cy.pk,
        "ledger_seq": by_type["contact.erased"]["data"]["ledger_seq"],
        "sequence": by_type["contact.erased"]["data"]["sequence"],
    }
    assert ledger_verify().ok


@dataclass
class _Written:
    """What the outbox was handed for each entry, and the data built from it then (the
    payload the outbox used to store), per audience."""

    data: dict[tuple[int, str], dict[str, Any]]


@pytest.fixture
def written_payloads() -> Iterator[_Written]:
    found = _Written({})

    def written(entries: list[WrittenEntry]) -> None:
        typed = [(entry, kind) for entry in entries if (kind := event_type_of(entry))]
        facts = Facts.read(typed)
        for entry, kind in typed:
            for audience in Audience.values:
                built = event_data(entry, kind, audience, facts)
                if built is not None:
                    found.data[(entry.seq, audience)] = built.data

    ledger_watch(LedgerWatcher("tests.webhooks.written", lambda: frozenset(LedgerAction), written))
    yield found
    ledger_watch(LedgerWatcher("tests.webhooks.written", frozenset, lambda entries: None))


def test_a_payload_built_when_sent_is_the_one_built_when_written(
    written_payloads: _Written,
) -> None:
    """Messages of most types are written without data and built from their ledger entry
    when sent: for every event type and audience, what goes out is what was built from
    the entry as it was appended (the same JSON; stored JSON came back with its keys in
    PostgreSQL's order), and a replay sends the same bytes again."""
    receivers = {audience: Receiver().start() for audience in Audience.values}
    try:
        secrets = {
            audience: _endpoint(server.url, list(EventType.values), audience=audience)[1]
            for audience, server in receivers.items()
        }
        _every_event_type_happens()
        assert Message.objects.filter(data__isnull=True).exists()
        assert Message.objects.filter(data__isnull=False).exists()  # disclosures, handoffs
        deliveries_run()
        kinds: dict[str, set[str]] = {}
        for audience, server in receivers.items():
            assert (
                len(server.received) == Message.objects.filter(endpoint__audience=audience).count()
            )
            for got in server.received:
                body = got.verified(secrets[audience])
                data = body["data"]
                expected = {
                    **written_payloads.data[(data["ledger_seq"], audience)],
                    **({"value": data["value"]} if "value" in data else {}),
                    "ledger_seq": data["ledger_seq"],
                    "sequence": data["sequence"],
                }
                assert body == {
                    "type": body["type"],
                    "timestamp": body["timestamp"],
                    "data": expected,
                }
                kinds.setdefault(audience, set()).add(body["type"])
        # Every type reached the sales endpoint; the others each heard of the disclosure
        # told to everyone (with its value) and of what carries no disclosure.
        assert kinds["sales"] == set(EventType.values)
        for audience in ("marketing", "all"):
            assert {"disclosure.recorded", "touch.recorded", "deal.created"} <= kinds[audience]
        # A replay sends the very same bytes again.
        sales = receivers["sales"]
        first = {got.id: got.body for got in sales.received}
        endpoint = Endpoint.objects.get(audience="sales")
        assert services.messages_replay(
            endpoint=endpoint, actor=SYSTEM, message_ids=list(first)
        ) == len(first)
        deliveries_run()
        again = sales.received[len(first) :]
        assert {got.id: got.body for got in again} == first
    finally:
        for server in receivers.values():
            server.stop()


def test_a_rolled_back_change_writes_and_sends_nothing(receiver: Receiver) -> None:
    _endpoint(receiver.url, ["touch.recorded", "contact.created"])
    with pytest.raises(RuntimeError), transaction.atomic():
        contact = contact_make()
        contact_services.touch_record(
            contact=contact, channel=Channel.objects.get(key="web"), actor=SYSTEM
        )
        assert Message.objects.count() == 2
        raise RuntimeError("the change fails after its writes")
    assert not Message.objects.exists()
    assert deliveries_run() == 0
    assert receiver.received == []


def test_nothing_is_written_when_no_endpoint_wants_the_event(receiver: Receiver) -> None:
    _endpoint(receiver.url, ["deal.created"])
    contact_make()
    assert not Message.objects.exists()
    # A disabled endpoint's events are not written either.
    endpoint, _ = _endpoint(receiver.url, ["contact.created"])
    services.endpoint_disable(endpoint=endpoint, reason="test")
    contact_make()
    assert not Message.objects.exists()


def _disclose(contact: Contact, audience: str, value: str, key: str = "budget") -> Disclosure:
    return contact_services.disclosure_record(
        contact=contact,
        key=key,
        value=value,
        audience=audience,
        purpose="qualification",
        source="form",
        actor=SYSTEM,
    )


def test_an_endpoint_hears_only_what_its_audience_may_see() -> None:
    receivers = {audience: Receiver().start() for audience in ("marketing", "sales", "all")}
    try:
        for audience, server in receivers.items():
            _endpoint(server.url, list(EventType.values), audience=audience)
        _ruleset_active()
        person = contact_make()
        _disclose(person, "marketing", "MKT-ONLY-4411")
        _disclose(person, "sales", "SALES-ONLY-9912")
        _disclose(person, "all", "EVERYONE-7070")
        # A handoff on a stage told to sales alone: marketing may not know of it.
        _disclose(person, "sales", "ready_to_talk", key="journey_stage")
        assert Handoff.objects.filter(contact=person).exists()
        deliveries_run()
        text = {a: b"\n".join(s.bodies()).decode() for a, s in receivers.items()}
        assert "MKT-ONLY-4411" in text["marketing"]
        assert "SALES-ONLY-9912" not in text["marketing"]
        assert "handoff.created" not in text["marketing"]
        assert "SALES-ONLY-9912" in text["sales"] and "MKT-ONLY-4411" not in text["sales"]
        assert "handoff.created" in text["sales"]
        assert "EVERYONE-7070" in text["all"]
        assert "MKT-ONLY-4411" not in text["all"] and "SALES-ONLY-9912" not in text["all"]
        for audience in ("marketing", "sales", "all"):
            assert "EVERYONE-7070" in text[audience]
        # Not even the key of a disclosure outside the audience goes out.
        marketing_types = [json.loads(b)["type"] for b in receivers["marketing"].bodies()]
        assert marketing_types.count("disclosure.recorded") == 2
    finally:
        for server in receivers.values():
            server.stop()


def test_bulk_ingest_writes_its_messages_in_order(api_client_for, users, receiver) -> None:
    _, secret = _endpoint(receiver.url, ["touch.recorded"], audience="marketing")
    client = api_client_for(users["integration"])
    events = [
        {
            "type": "touch",
            "source_system": "web",
            "external_id": f"t-{number}",
            "occurred_at": "2026-11-01T10:00:00+00:00",
            "contact": {"email": f"bulk{number % 2}@example.com"},
            "channel": "web",
        }
        for number in range(6)
    ]
    answer = client.post("/api/v1/events/", {"events": events}, format="json")
    assert answer.status_code == 200, answer.json()
    assert answer.json()["created"] == 6
    # On PostgreSQL the batch wrote a range, which delivery writes out first.
    messages_expand()
    messages = list(Message.objects.order_by("sequence"))
    assert [m.sequence for m in messages] == [1, 2, 3, 4, 5, 6]
    touches = [r["id"] for r in answer.json()["results"]]
    ledger = LedgerEntry.objects.filter(seq__in=[m.ledger_seq for m in messages])
    assert dict(ledger.values_list("seq", "action")) == {
        m.ledger_seq: LedgerAction.TOUCH_RECORD for m in messages
    }
    assert [int(ledger.get(seq=m.ledger_seq).subject_id) for m in messages] == touches
    # The same events again are duplicates: no change, no message.
    client.post("/api/v1/events/", {"events": events}, format="json")
    assert Message.objects.count() == 6
    # A body that is refused writes nothing.
    refused = client.post(
        "/api/v1/events/", {"events": [*events, {"type": "nope"}] * 200}, format="json"
    )
    assert refused.status_code == 400
    assert Message.objects.count() == 6
    deliveries_run()
    bodies = [got.verified(secret)["data"] for got in receiver.received]
    assert sorted(body["sequence"] for body in bodies) == [1, 2, 3, 4, 5, 6]
    assert [body["touch"] for body in sorted(bodies, key=lambda b: b["sequence"])] == touches
    for person in {body["contact"] for body in bodies}:
        theirs = [body["sequence"] for body in bodies if body["contact"] == person]
        assert theirs == sorted(theirs) and len(theirs) == 3


def test_bulk_ingest_gives_each_endpoint_the_types_it_wants(api_client_for, users) -> None:
    both = Receiver().start()
    touches_only = Receiver().start()
    try:
        _, both_secret = _endpoint(both.url, ["contact.created", "touch.recorded"])
        _, touch_secret = _endpoint(touches_only.url, ["touch.recorded"])
        idle, _ = _endpoint(both.url, ["deal.created"])  # wants none of them
        events = [
            {
                "type": "touch",
                "source_system": "web",
                "external_id": f"t-{number}",
                "occurred_at": "2026-11-01T10:00:00+00:00",
                "contact": {"email": f"new{number % 3}@example.com"},
                "channel": "web",
            }
            for number in range(9)
        ]
        client = api_client_for(users["integration"])
        assert client.post("/api/v1/events/", {"events": events}, format="json").status_code == 200
        deliveries_run()
        got = sorted(
            (r.verified(both_secret) for r in both.received), key=lambda b: b["data"]["sequence"]
        )
        assert [b["type"] for b in got] == ["contact.created"] * 3 + ["touch.recorded"] * 9
        assert [b["data"]["sequence"] for b in got] == list(range(1, 13))
        assert [b["data"]["ledger_seq"] for b in got] == sorted(
            b["data"]["ledger_seq"] for b in got
        )
        only = [r.verified(touch_secret) for r in touches_only.received]
        assert sorted(b["data"]["sequence"] for b in only) == list(range(1, 10))
        assert {b["type"] for b in only} == {"touch.recorded"}
        idle.refresh_from_db()
        assert idle.last_sequence == 0
        assert len({m.id for m in Message.objects.all()}) == 21
    finally:
        both.stop()
        touches_only.stop()


def test_a_mixed_bulk_batch_numbers_every_endpoints_messages_in_ledger_order(
    api_client_for, users
) -> None:
    """Touches, a new person, a consent and disclosures in one batch: each endpoint's
    messages, thin or not, are numbered from 1 in ledger order, without gaps, and hold
    only what its audience may see."""
    receivers = {audience: Receiver().start() for audience in ("marketing", "sales")}
    try:
        secrets = {
            audience: _endpoint(server.url, list(EventType.values), audience=audience)[1]
            for audience, server in receivers.items()
        }
        person = {"email": "mixed@example.com"}
        common = {"source_system": "crm", "occurred_at": "2026-11-01T10:00:00+00:00"}
        events = [
            {**common, "type": "touch", "external_id": "t-1", "contact": person, "channel": "web"},
            {**common, "type": "consent", "external_id": "c-1", "contact": person,
             "purpose": "sales_contact", "granted": True, "source": "form"},
            {**common, "type": "disclosure", "external_id": "d-1", "contact": person,
             "key": "budget", "value": "SALES-SECRET-31", "audience": "sales",
             "purpose": "qualification", "source": "self"},
            {**common, "type": "touch", "external_id": "t-2", "contact": person,
             "channel": "email"},
        ]  # fmt: skip
        answer = api_client_for(users["integration"]).post(
            "/api/v1/events/", {"events": events}, format="json"
        )
        assert answer.status_code == 200 and answer.json()["created"] == 4, answer.json()
        deliveries_run()
        for audience, server in receivers.items():
            bodies = [got.verified(secrets[audience]) for got in server.received]
            ordered = sorted(bodies, key=lambda body: body["data"]["sequence"])
            assert [b["data"]["sequence"] for b in ordered] == list(range(1, len(bodies) + 1))
            seqs = [b["data"]["ledger_seq"] for b in ordered]
            assert seqs == sorted(seqs)
            types = [b["type"] for b in ordered]
            assert types[0] == "contact.created" and types.count("touch.recorded") == 2
            assert "consent.granted" in types
            text = b"".join(server.bodies()).decode()
            if audience == "sales":
                assert "disclosure.recorded" in types and "SALES-SECRET-31" in text
            else:
                assert "disclosure.recorded" not in types and "SALES-SECRET-31" not in text
                assert "budget" not in text
    finally:
        for server in receivers.values():
            server.stop()


def test_erasure_empties_pending_payloads_about_the_person(receiver: Receiver) -> None:
    _endpoint(receiver.url, ["disclosure.recorded", "contact.erased"], audience="all")
    person = contact_make(first_name="Erinwyn")
    bystander = contact_make()
    _disclose(person, "all", "ERIN-BUDGET-7731")
    _disclose(bystander, "all", "BYSTANDER-1")
    assert Message.objects.filter(personal__isnull=False).count() == 2
    contact_services.contact_erase(contact=person, actor=SYSTEM)
    assert list(
        Message.objects.filter(personal__isnull=False).values_list("contact_id", flat=True)
    ) == [bystander.pk]
    deliveries_run()
    everything = b"".join(receiver.bodies()).decode()
    assert "ERIN-BUDGET-7731" not in everything and "Erinwyn" not in everything
    assert "BYSTANDER-1" in everything
    erased = [json.loads(b) for b in receiver.bodies() if b"contact.erased" in b]
    assert [body["data"]["contact"] for body in erased] == [person.pk]


def test_a_withdrawn_disclosures_value_leaves_its_pending_messages() -> None:
    receiver = Receiver()  # down: the message waits
    _endpoint(receiver.url, ["disclosure.recorded"], audience="all")
    person = contact_make()
    disclosure = _disclose(person, "all", "WITHDRAWN-VALUE-5150")
    assert Message.objects.get().personal == {"value": "WITHDRAWN-VALUE-5150"}
    contact_services.disclosure_withdraw(disclosure=disclosure, actor=SYSTEM)
    message = Message.objects.get()
    assert message.personal is None and (message.data or {})["disclosure"] == disclosure.pk
