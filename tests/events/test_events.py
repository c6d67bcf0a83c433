"""POST events/: per-event answers, duplicates, idempotency keys, and bad input."""

import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from contacts.models import Consent, Contact, Disclosure, Organization, Touch
from leadrecord.ledger import ledger_verify
from leadrecord.models import LedgerEntry

pytestmark = pytest.mark.django_db

URL = "/api/v1/events/"


def touch(n: int, **overrides: Any) -> dict[str, Any]:
    event = {
        "type": "touch",
        "source_system": "hubspot",
        "external_id": f"t-{n}",
        "occurred_at": "2026-10-01T09:00:00+02:00",
        "contact": {
            "email": f"person{n % 5}@acme.example",
            "first_name": "Pat",
            "organization": {"name": "Acme", "domain": "acme.example"},
        },
        "channel": "webinar",
        "kind": "webinar_attended",
    }
    event.update(overrides)
    return event


def stored() -> tuple[int, ...]:
    return (
        Touch.objects.count(),
        Consent.objects.count(),
        Disclosure.objects.count(),
        Contact.objects.count(),
        Organization.objects.count(),
        LedgerEntry.objects.count(),
    )


@pytest.fixture
def integration(users, api_client_for):
    return api_client_for(users["integration"])


def test_a_batch_of_every_type_is_stored_with_results_in_request_order(integration):
    events = [
        touch(1),
        {
            "type": "consent",
            "source_system": "hubspot",
            "external_id": "c-1",
            "occurred_at": "2026-10-01T09:05:00Z",
            "contact": {"email": "Person1@ACME.example"},
            "purpose": "sales_contact",
            "granted": True,
            "source": "demo request form",
            "notice_version": "2026-06",
        },
        {
            "type": "disclosure",
            "source_system": "hubspot",
            "external_id": "d-1",
            "occurred_at": "2026-10-01T09:06:00Z",
            "contact": {"email": "person1@acme.example"},
            "key": "journey_stage",
            "value": "ready_to_talk",
            "audience": "all",
            "purpose": "sales_contact",
            "source": "self",
        },
        touch(2, channel="email", kind="email_click"),
    ]
    response = integration.post(URL, {"events": events})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["created"], body["duplicate"], body["rejected"]) == (4, 0, 0)
    assert [r["external_id"] for r in body["results"]] == ["t-1", "c-1", "d-1", "t-2"]
    first = Touch.objects.get(pk=body["results"][0]["id"])
    assert first.channel.key == "webinar" and first.kind == "webinar_attended"
    assert first.occurred_at.isoformat() == "2026-10-01T07:00:00+00:00"
    person1 = Contact.objects.get(email_key="person1@acme.example")
    assert first.contact == person1 and person1.organization is not None
    assert person1.organization.domain == "acme.example"
    assert Consent.objects.get(pk=body["results"][1]["id"]).contact == person1
    assert Disclosure.objects.get(pk=body["results"][2]["id"]).value == "ready_to_talk"
    assert Contact.objects.count() == 2 and Organization.objects.count() == 1
    actions = list(LedgerEntry.objects.order_by("seq").values_list("action", flat=True))
    assert actions[-4:] == ["touch.record", "consent.record", "disclosure.record", "touch.record"]
    assert actions.count("contact.create") == 2 and actions.count("organization.create") == 1
    assert ledger_verify().ok


def test_repeats_are_duplicates_and_change_nothing(integration):
    first = integration.post(URL, {"events": [touch(1), touch(2)]}).json()
    before = stored()
    again = integration.post(URL, {"events": [touch(2), touch(3), touch(3)]}).json()
    assert [r["status"] for r in again["results"]] == ["duplicate", "created", "duplicate"]
    assert again["results"][0]["id"] == first["results"][1]["id"]
    assert again["results"][2]["id"] == again["results"][1]["id"]
    assert stored()[0] == before[0] + 1


def test_the_same_external_id_from_another_system_is_another_event(integration):
    integration.post(URL, {"events": [touch(1)]})
    other = integration.post(URL, {"events": [touch(1, source_system="marketo")]}).json()
    assert other["created"] == 1


def test_a_rejected_event_does_not_stop_the_others(integration):
    future = (timezone.now() + timedelta(days=2)).isoformat()
    events = [
        touch(1),
        touch(2, channel="carrier_pigeon"),
        touch(3, occurred_at="2026-10-01T09:00:00"),
        touch(4, occurred_at=future),
        touch(5, contact={"email": "not an email"}),
        touch(6, external_id=""),
        touch(7, type="telegram"),
        "not an object",
        touch(8, kind="seance"),
        touch(9, campaign=999999),
        {
            "type": "disclosure",
            "source_system": "s",
            "external_id": "d",
            "occurred_at": "2026-10-01T09:00:00Z",
            "contact": {"email": "a@b.example"},
            "key": "journey_stage",
            "value": "bored",
            "audience": "all",
            "purpose": "qualification",
            "source": "self",
        },
        {
            "type": "consent",
            "source_system": "s",
            "external_id": "c",
            "occurred_at": "2026-10-01T09:00:00Z",
            "contact": {"email": "a@b.example"},
            "purpose": "mind_reading",
            "granted": True,
            "source": "x",
        },
        {
            "type": "sale",
            "source_system": "s",
            "external_id": "s",
            "occurred_at": "2026-10-01T09:00:00Z",
            "deal_external_id": "D-1",
            "kind": "won",
            "amount": "100.00",
        },
        touch(10),
    ]
    body = integration.post(URL, {"events": events}).json()
    statuses = [r["status"] for r in body["results"]]
    assert statuses == ["created"] + ["rejected"] * 12 + ["created"]
    attrs = [r["errors"][0]["attr"] for r in body["results"][1:-1]]
    assert attrs == [
        "channel",
        "occurred_at",
        "occurred_at",
        "contact.email",
        "external_id",
        "type",
        "non_field_errors",
        "kind",
        "campaign",
        "value",
        "purpose",
        "deal_external_id",
    ]
    assert Touch.objects.count() == 2
    assert not Contact.objects.filter(email_key="a@b.example").exists()


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"events": []},
        {"events": "touch"},
        {"events": [touch(n) for n in range(1001)]},
        {"not_events": [touch(1)]},
        "events",
    ],
)
def test_a_body_that_is_not_a_batch_is_a_400_and_writes_nothing(integration, body):
    before = stored()
    response = integration.post(URL, body)
    assert response.status_code == 400
    assert response.json()["type"] == "validation_error"
    assert stored() == before


def test_malformed_json_and_huge_bodies_are_refused(integration):
    before = stored()
    malformed = integration.generic("POST", URL, '{"events": [', "application/json")
    assert malformed.status_code == 400
    huge = json.dumps({"events": [touch(1, padding="x" * (10 * 1024 * 1024))]})
    too_big = integration.generic("POST", URL, huge, "application/json")
    assert too_big.status_code == 413
    assert too_big.json()["errors"][0]["code"] == "request_too_large"
    assert stored() == before


def test_idempotency_key_replays_the_first_answer(integration):
    body = {"events": [touch(1), touch(2)]}
    first = integration.post(URL, body, HTTP_IDEMPOTENCY_KEY="batch-7")
    before = stored()
    replay = integration.post(URL, body, HTTP_IDEMPOTENCY_KEY="batch-7")
    assert replay.status_code == 200
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert "Idempotent-Replayed" not in first.headers
    assert stored() == before
    other = integration.post(URL, {"events": [touch(3)]}, HTTP_IDEMPOTENCY_KEY="batch-7")
    assert other.status_code == 422
    assert other.json()["errors"][0]["code"] == "idempotency_key_reused"
    assert stored() == before


def test_idempotency_keys_belong_to_their_caller(users, api_client_for, make_user):
    body = {"events": [touch(1)]}
    api_client_for(users["integration"]).post(URL, body, HTTP_IDEMPOTENCY_KEY="k")
    other = api_client_for(make_user("integration")).post(
        URL, {"events": [touch(2)]}, HTTP_IDEMPOTENCY_KEY="k"
    )
    assert other.status_code == 200 and other.json()["created"] == 1


def test_an_oversized_idempotency_key_is_a_400(integration):
    response = integration.post(URL, {"events": [touch(1)]}, HTTP_IDEMPOTENCY_KEY="k" * 256)
    assert response.status_code == 400
    assert Touch.objects.count() == 0


def test_events_find_merged_contacts_by_their_old_email(integration, users, api_client_for):
    from contacts import services
    from leadrecord.ledger import Actor

    keep, _ = services.contact_create(email="keep@acme.example", actor=Actor.system("t"))
    gone, _ = services.contact_create(email="person1@acme.example", actor=Actor.system("t"))
    services.contact_merge(keep=keep, merge=gone, actor=Actor.system("t"))
    body = integration.post(URL, {"events": [touch(1)]}).json()
    assert Touch.objects.get(pk=body["results"][0]["id"]).contact == keep


def test_events_never_attach_to_an_erased_person(integration):
    from contacts import services
    from leadrecord.ledger import Actor

    erased, _ = services.contact_create(email="person1@acme.example", actor=Actor.system("t"))
    services.contact_erase(contact=erased, actor=Actor.system("t"))
    # Dated before the erasure: refused (old data never brings them back).
    body = integration.post(URL, {"events": [touch(1)]}).json()
    assert body["results"][0]["status"] == "rejected"
    assert body["results"][0]["errors"][0]["code"] == "contact_erased"
    # Dated after it: the person came back, as someone new.
    later = timezone.now().isoformat()
    body = integration.post(URL, {"events": [touch(11, occurred_at=later)]}).json()
    new_touch = Touch.objects.get(pk=body["results"][0]["id"])
    assert new_touch.contact != erased and new_touch.contact.email == "person1@acme.example"


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("marketer", 200),
        ("sales_rep", 200),
        ("manager", 200),
        ("integration", 200),
        ("privacy_officer", 403),
    ],
)
def test_who_may_post_events(users, api_client_for, role, expected):
    response = api_client_for(users[role]).post(URL, {"events": [touch(1)]})
    assert response.status_code == expected


def test_anonymous_may_not_post_events(client):
    response = client.post(URL, {"events": [touch(1)]}, content_type="application/json")
    assert response.status_code == 401


def test_idempotency_keys_are_forgotten_after_a_day(integration):
    from contacts.models import IdempotencyRecord
    from events.ingest import idempotency_records_expire
    from events.tasks import idempotency_records_expire_task

    integration.post(URL, {"events": [touch(1)]}, HTTP_IDEMPOTENCY_KEY="old")
    integration.post(URL, {"events": [touch(2)]}, HTTP_IDEMPOTENCY_KEY="new")
    IdempotencyRecord.objects.filter(key="old").update(
        created_at=timezone.now() - timedelta(hours=24, minutes=1)
    )
    # A stale key is a fresh key: another body is taken, not a 422.
    again = integration.post(URL, {"events": [touch(3)]}, HTTP_IDEMPOTENCY_KEY="old")
    assert again.status_code == 200 and again.json()["created"] == 1
    assert "Idempotent-Replayed" not in again.headers
    IdempotencyRecord.objects.filter(key="old").update(
        created_at=timezone.now() - timedelta(days=2)
    )
    assert idempotency_records_expire_task.delay().get() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
    assert idempotency_records_expire() == 0  # safe to run twice


@pytest.mark.parametrize("email", ["jo,e@acme.example", "jo@acme..example"])
def test_an_email_the_contact_api_refuses_is_refused_in_a_batch_too(integration, email):
    event = touch(1)
    event["contact"] = {"email": email}
    body = integration.post(URL, {"events": [event]}).json()
    assert body["rejected"] == 1
    assert body["results"][0]["errors"][0]["attr"] == "contact.email"
    assert not Contact.objects.filter(email=email).exists()
