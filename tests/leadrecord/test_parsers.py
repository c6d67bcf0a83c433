"""The API's JSON parser: no body, however deep or however it carries a NUL, is a 5xx.

PostgreSQL's text and jsonb cannot hold U+0000, and Python's decoder gives up
on deep nesting with a RecursionError: both were 500s. Now each is a 400 in the
standard error format, and nothing is written.
"""

import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from contacts.models import Contact, IdempotencyRecord, Touch
from leadrecord.models import LedgerEntry
from leadrecord.parsers import MAX_DEPTH
from leadrecord.roles import Role

pytestmark = pytest.mark.django_db

DEEP = "[" * 1000 + "]" * 1000
DEEP_OBJECT = '{"a":' * 1000 + "1" + "}" * 1000

# Every JSON write of the API, as a role that may call it.
JSON_WRITES = [
    ("/api/v1/contacts/", Role.MARKETER),
    ("/api/v1/events/", Role.INTEGRATION),
    ("/api/v1/touches/", Role.MARKETER),
    ("/api/v1/campaigns/", Role.MANAGER),
    ("/api/v1/channels/", Role.MANAGER),
    ("/api/v1/contacts/merge/", Role.MANAGER),
    ("/api/v1/rulesets/", Role.MANAGER),
    ("/api/v1/handoffs/", Role.MANAGER),
    ("/api/v1/deals/", Role.MANAGER),
    ("/api/v1/targets/", Role.MANAGER),
]


def counts() -> tuple[int, ...]:
    return (
        Contact.objects.count(),
        Touch.objects.count(),
        IdempotencyRecord.objects.count(),
        LedgerEntry.objects.count(),
    )


def event(**changes: Any) -> dict[str, Any]:
    data = {
        "type": "touch",
        "source_system": "crm",
        "external_id": "ev-1",
        "occurred_at": "2026-01-15T09:30:00Z",
        "contact": {"email": "ada@example.com"},
        "channel": "web",
        "kind": "visit",
    }
    data.update(changes)
    return data


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["arrays", "objects"])
@pytest.mark.parametrize(("path", "role"), JSON_WRITES)
def test_json_nested_a_thousand_deep_is_a_400(path, role, body, users, api_client_for):
    before = counts()
    response = api_client_for(users[role]).post(path, body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json() == {
        "type": "client_error",
        "errors": [
            {
                "code": "parse_error",
                "detail": f"JSON parse error - nested more than {MAX_DEPTH} levels.",
                "attr": None,
            }
        ],
    }
    assert counts() == before


def nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = [value]
    return value


def test_nesting_up_to_the_limit_is_read(users, api_client_for):
    client = api_client_for(users[Role.INTEGRATION])
    # The body, "events", the event and "extra" take three levels.
    ok = client.post(
        "/api/v1/events/", {"events": [event(extra=nested(MAX_DEPTH - 3))]}, format="json"
    )
    assert ok.status_code == 200, ok.content
    assert ok.json()["created"] == 1
    too_deep = client.post(
        "/api/v1/events/",
        {"events": [event(external_id="ev-2", extra=nested(MAX_DEPTH - 2))]},
        format="json",
    )
    assert too_deep.status_code == 400
    assert too_deep.json()["errors"][0]["code"] == "parse_error"


def nul_error(response: Any) -> tuple[str, str]:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["type"] == "validation_error"
    [error] = body["errors"]
    assert error["detail"] == "Null characters are not allowed."
    return error["code"], error["attr"]


@pytest.mark.parametrize("idempotency_key", [None, "key-1"])
def test_a_nul_in_an_events_external_id_is_a_400_naming_it(idempotency_key, users, api_client_for):
    # With an Idempotency-Key the answer (which echoes the external id) was stored
    # in a jsonb column: a 500 on PostgreSQL.
    headers = {"HTTP_IDEMPOTENCY_KEY": idempotency_key} if idempotency_key else {}
    before = counts()
    response = api_client_for(users[Role.INTEGRATION]).post(
        "/api/v1/events/",
        {"events": [event(), event(external_id="ev-\x00-2")]},
        format="json",
        **headers,
    )
    assert nul_error(response) == ("null_characters_not_allowed", "events.1.external_id")
    assert counts() == before


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({"email": "ada@example.com", "first_name": "A\x00"}, "first_name"),
        (
            {"email": "ada@example.com", "organization": {"name": "Acme\x00", "domain": ""}},
            "organization.name",
        ),
        ({"email": "ada@example.com", "unknown\x00key": 1}, "non_field_errors"),
        ({"email": "ada@example.com", "tags": ["a", "b\x00"]}, "tags.1"),
    ],
)
def test_a_nul_anywhere_in_a_body_is_a_400_naming_where(body, attr, users, api_client_for):
    before = counts()
    response = api_client_for(users[Role.MARKETER]).post("/api/v1/contacts/", body, format="json")
    assert nul_error(response) == ("null_characters_not_allowed", attr)
    assert counts() == before


def test_an_escaped_backslash_before_u0000_is_text_not_a_nul(users, api_client_for):
    response = api_client_for(users[Role.MARKETER]).post(
        "/api/v1/contacts/",
        json.dumps({"email": "ada@example.com", "first_name": "\\u0000"}),
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    assert Contact.objects.get().first_name == "\\u0000"


def test_a_nul_in_the_idempotency_key_is_a_400_naming_it(users, api_client_for):
    before = counts()
    response = api_client_for(users[Role.INTEGRATION]).post(
        "/api/v1/events/",
        {"events": [event()]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="key-\x00",
    )
    assert nul_error(response) == ("null_characters_not_allowed", "Idempotency-Key")
    assert counts() == before


def test_malformed_json_is_still_drf_s_parse_error(users, api_client_for):
    response = api_client_for(users[Role.MARKETER]).post(
        "/api/v1/contacts/", '{"email": NaN}', content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "parse_error"


@pytest.mark.parametrize("role", [Role.PRIVACY_OFFICER, None])
def test_a_caller_who_may_not_write_is_refused_before_the_body_is_read(role, users, api_client_for):
    caller = api_client_for(users[role]) if role else APIClient()
    response = caller.post("/api/v1/events/", DEEP, content_type="application/json")
    assert response.status_code == (403 if role else 401)
    response = caller.post(
        "/api/v1/events/", {"events": [event(external_id="\x00")]}, format="json"
    )
    assert response.status_code == (403 if role else 401)
