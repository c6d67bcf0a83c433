"""The webhook endpoint API and pages: who may, what is refused, the secret shown once."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from contacts import services as contact_services
from contacts.models import Channel
from leadrecord.ledger import Actor
from leadrecord.models import LedgerAction, LedgerEntry
from tests.factories import contact_make
from webhooks.delivery import deliveries_run
from webhooks.models import Endpoint, Message

from .receiver import Receiver

pytestmark = pytest.mark.django_db

BODY = {"url": "", "event_types": ["touch.recorded", "contact.created"], "audience": "marketing"}


@pytest.fixture
def manager(users, api_client_for):
    return api_client_for(users["manager"])


def _create(client: Any, **overrides: Any) -> Any:
    return client.post("/api/v1/webhooks/endpoints/", {**BODY, **overrides}, format="json")


def _attr(response: Any) -> str:
    return response.json()["errors"][0]["attr"]


@pytest.mark.parametrize("role", ["manager", "integration"])
def test_managers_and_integrations_add_endpoints_and_see_the_secret_once(
    role: str, users, api_client_for, receiver: Receiver
) -> None:
    client = api_client_for(users[role])
    created = _create(client, url=receiver.url)
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["secret"].startswith("whsec_") and len(body["secret"]) > 30
    assert body["event_types"] == ["contact.created", "touch.recorded"]
    listed = client.get("/api/v1/webhooks/endpoints/").json()
    assert listed["count"] == 1 and "secret" not in listed["results"][0]
    detail = client.get(f"/api/v1/webhooks/endpoints/{body['id']}/").json()
    assert "secret" not in detail
    assert body["secret"] not in str(LedgerEntry.objects.values_list("after", flat=True))
    rotated = client.post(f"/api/v1/webhooks/endpoints/{body['id']}/rotate-secret/")
    assert rotated.status_code == 200
    assert rotated.json()["secret"] != body["secret"]
    assert rotated.json()["previous_secret_valid_until"]


@pytest.mark.parametrize("role", ["marketer", "sales_rep", "privacy_officer"])
def test_other_roles_may_not(role: str, users, api_client_for, receiver: Receiver) -> None:
    client = api_client_for(users[role])
    assert _create(client, url=receiver.url).status_code == 403
    assert client.get("/api/v1/webhooks/endpoints/").status_code == 403
    assert not Endpoint.objects.exists()


def test_anonymous_callers_are_refused(client) -> None:
    assert client.get("/api/v1/webhooks/endpoints/").status_code == 401


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://10.0.0.8/hooks", "address_refused"),
        ("http://192.168.1.20/hooks", "address_refused"),
        ("http://172.16.4.4/hooks", "address_refused"),
        ("http://169.254.169.254/latest/meta-data/", "address_refused"),
        ("http://[fd00:ec2::254]/", "address_refused"),
        ("http://100.64.0.1/", "address_refused"),
        ("http://0.0.0.0:8080/", "address_refused"),
        ("http://[::ffff:10.0.0.1]/", "address_refused"),
        ("ftp://example.com/hooks", "invalid_url"),
        ("not a url", "invalid_url"),
        ("http://user:pass@example.com/", "invalid_url"),
        ("http://example.com:99999/", "invalid_url"),
        ("http://no-such-host.invalid/", "unresolvable_url"),
        ("http://[::1/", "invalid_url"),
        ("https://example.com:0/", "invalid_url"),
    ],
)
def test_private_and_bad_addresses_are_refused(manager, url: str, code: str) -> None:
    refused = _create(manager, url=url)
    assert refused.status_code == 400, refused.json()
    assert refused.json()["errors"][0] == {
        "code": code,
        "detail": refused.json()["errors"][0]["detail"],
        "attr": "url",
    }
    assert not Endpoint.objects.exists()
    assert not LedgerEntry.objects.filter(action=LedgerAction.WEBHOOK_ENDPOINT_CREATE).exists()


def test_loopback_is_refused_unless_the_setting_allows_it(manager, settings) -> None:
    settings.WEBHOOKS_ALLOW_LOOPBACK = False
    for url in ("http://127.0.0.1:8000/hooks", "http://localhost/hooks", "http://[::1]/"):
        refused = _create(manager, url=url)
        assert refused.status_code == 400 and _attr(refused) == "url"
        assert "loopback" in refused.json()["errors"][0]["detail"]
    settings.WEBHOOKS_ALLOW_LOOPBACK = True
    assert _create(manager, url="http://127.0.0.1:8000/hooks").status_code == 201
    # The setting lets loopback through, nothing else.
    assert _create(manager, url="http://10.1.1.1/").status_code == 400


@pytest.mark.parametrize(
    ("overrides", "attr"),
    [
        ({"event_types": []}, "event_types"),
        ({"event_types": ["contact.exploded"]}, "event_types.0"),
        ({"event_types": "touch.recorded"}, "event_types"),
        ({"audience": "everyone"}, "audience"),
        ({"audience": None}, "audience"),
        ({"url": "http://example.com/" + "a" * 2000}, "url"),
    ],
)
def test_wrong_input_is_a_400_naming_the_field(manager, receiver, overrides, attr) -> None:
    refused = _create(manager, **{"url": receiver.url, **overrides})
    assert refused.status_code == 400, refused.json()
    assert _attr(refused) == attr
    assert not Endpoint.objects.exists()


def test_missing_fields_are_named(manager) -> None:
    refused = manager.post("/api/v1/webhooks/endpoints/", {}, format="json")
    assert refused.status_code == 400
    assert {e["attr"] for e in refused.json()["errors"]} == {"url", "event_types", "audience"}


def _delivered_endpoint(manager, receiver) -> dict[str, Any]:
    created = _create(manager, url=receiver.url).json()
    person = contact_make()
    contact_services.touch_record(
        contact=person, channel=Channel.objects.get(key="web"), actor=Actor.system("t")
    )
    deliveries_run()
    return created


def test_the_delivery_log_and_replay(manager, receiver: Receiver) -> None:
    created = _delivered_endpoint(manager, receiver)
    url = f"/api/v1/webhooks/endpoints/{created['id']}/"
    log = manager.get(url + "deliveries/").json()
    assert log["count"] == 2
    assert {row["event_type"] for row in log["results"]} == {"contact.created", "touch.recorded"}
    assert {row["status"] for row in log["results"]} == {"succeeded"}
    assert {row["response_code"] for row in log["results"]} == {204}
    assert manager.get(url + "deliveries/?status=failed").json()["count"] == 0
    assert _attr(manager.get(url + "deliveries/?status=nope")) == "status"
    first = log["results"][-1]["message_id"]
    queued = manager.post(url + "replay/", {"message_ids": [first]}, format="json")
    assert queued.status_code == 202 and queued.json() == {"queued": 1}
    deliveries_run()
    assert [r.id for r in receiver.received].count(first) == 2
    replayed = manager.get(url + "deliveries/").json()["results"][0]
    assert replayed["message_id"] == first and replayed["replay"] is True
    now = timezone.now().isoformat()
    ranged = manager.post(
        url + "replay/", {"since": "2026-01-01T00:00:00+00:00", "until": now}, format="json"
    )
    assert ranged.status_code == 202 and ranged.json() == {"queued": 2}


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({}, "message_ids"),
        ({"message_ids": []}, "message_ids"),
        ({"message_ids": ["msg_nope"]}, "message_ids"),
        ({"message_ids": ["x" * 41]}, "message_ids.0"),
        ({"message_ids": ["m"] * 1001}, "message_ids"),
        ({"since": "2026-01-01T00:00:00+00:00"}, "until"),
        ({"since": "2026-01-02T00:00:00+00:00", "until": "2026-01-01T00:00:00+00:00"}, "until"),
        ({"since": "2026-01-01T00:00:00", "until": "2026-01-02T00:00:00+00:00"}, "since"),
        ({"failed": "perhaps"}, "failed"),
    ],
)
def test_replay_refuses_wrong_input(manager, receiver, body, attr) -> None:
    created = _delivered_endpoint(manager, receiver)
    refused = manager.post(
        f"/api/v1/webhooks/endpoints/{created['id']}/replay/", body, format="json"
    )
    assert refused.status_code == 400, refused.json()
    assert _attr(refused) == attr
    assert not LedgerEntry.objects.filter(action=LedgerAction.WEBHOOK_REPLAY).exists()


def test_another_endpoints_messages_are_not_replayed(manager, receiver: Receiver) -> None:
    one = _delivered_endpoint(manager, receiver)
    other = _create(manager, url=receiver.url).json()
    theirs = Message.objects.filter(endpoint_id=one["id"]).values_list("id", flat=True)[0]
    refused = manager.post(
        f"/api/v1/webhooks/endpoints/{other['id']}/replay/",
        {"message_ids": [theirs]},
        format="json",
    )
    assert refused.status_code == 400
    assert (
        manager.post(
            "/api/v1/webhooks/endpoints/999999/replay/", {"failed": True}, format="json"
        ).status_code
        == 404
    )


def test_enable_of_an_enabled_endpoint_is_a_conflict(manager, receiver: Receiver) -> None:
    created = _create(manager, url=receiver.url).json()
    answer = manager.post(f"/api/v1/webhooks/endpoints/{created['id']}/enable/")
    assert answer.status_code == 409


def test_the_pages_add_an_endpoint_and_show_its_log(client, users, receiver: Receiver) -> None:
    client.force_login(users["manager"])
    assert client.get("/webhooks/").status_code == 200
    page = client.post(
        "/webhooks/",
        {"url": receiver.url, "event_types": ["touch.recorded"], "audience": "sales"},
    )
    assert page.status_code == 200
    endpoint = Endpoint.objects.get()
    assert endpoint.secret in page.content.decode()
    contact_services.touch_record(
        contact=contact_make(), channel=Channel.objects.get(key="web"), actor=Actor.system("t")
    )
    deliveries_run()
    detail = client.get(f"/webhooks/{endpoint.pk}/").content.decode()
    assert "touch.recorded" in detail and "succeeded" in detail
    assert endpoint.secret not in detail
    refused = client.post(
        "/webhooks/",
        {"url": "http://10.0.0.1/", "event_types": ["touch.recorded"], "audience": "sales"},
    )
    assert refused.status_code == 400 and "private address" in refused.content.decode()
    rotated = client.post(f"/webhooks/{endpoint.pk}/rotate-secret/")
    endpoint.refresh_from_db()
    assert endpoint.secret in rotated.content.decode()
    replay = client.post(f"/webhooks/{endpoint.pk}/replay/", {"failed": "on"})
    assert replay.status_code == 302
    client.force_login(users["marketer"])
    assert client.get(f"/webhooks/{endpoint.pk}/").status_code == 403
