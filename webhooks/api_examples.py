"""OpenAPI examples of the webhook endpoint API and of each event's payload."""

from __future__ import annotations

from typing import Any

from leadrecord.api_examples import refusal, request, response

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 -- an example, not a key
ENDPOINT = {
    "id": 3,
    "url": "https://crm.example.com/hooks/leadrecord",
    "event_types": ["contact.created", "disclosure.recorded", "touch.recorded"],
    "audience": "marketing",
    "enabled": True,
    "disabled_reason": "",
    "created_at": "2026-11-02T09:15:00.000000+00:00",
}

ENDPOINTS_LIST = [response("An endpoint", ENDPOINT)]
ENDPOINTS_CREATE = [
    request(
        "Marketing's CRM",
        {
            "url": "https://crm.example.com/hooks/leadrecord",
            "event_types": ["contact.created", "disclosure.recorded", "touch.recorded"],
            "audience": "marketing",
        },
    ),
    response("Added, with its secret (shown this once)", {**ENDPOINT, "secret": SECRET}, 201),
    refusal(
        "A private address",
        400,
        "address_refused",
        "10.0.0.8 resolves to a private address (10.0.0.8); webhooks go to public addresses only.",
        "url",
        "validation_error",
    ),
]
ENDPOINT_DETAIL = [response("An endpoint", ENDPOINT)]
ENDPOINT_ROTATE = [
    response(
        "A new secret; the old one signs too until then",
        {
            **ENDPOINT,
            "secret": "whsec_3bS0k1xR2pQ7dVn8YwZ4aLcE5fGhJ6mT",
            "previous_secret_valid_until": "2026-11-03T09:15:00.000000+00:00",
        },
    )
]
ENDPOINT_ENABLE = [response("Enabled again", ENDPOINT)]
DELIVERIES = [
    response(
        "One attempt",
        {
            "message_id": "msg_5f0c2b7e9a1d4c3b8e6f7a20",
            "event_type": "touch.recorded",
            "sequence": 42,
            "attempted_at": "2026-11-02T09:16:00.120000+00:00",
            "status": "failed",
            "response_code": 503,
            "response_excerpt": "upstream unavailable",
            "error": "",
            "replay": False,
        },
    )
]
REPLAY = [
    request("By ids", {"message_ids": ["msg_5f0c2b7e9a1d4c3b8e6f7a20"]}),
    request(
        "A time range",
        {"since": "2026-11-01T00:00:00+00:00", "until": "2026-11-02T00:00:00+00:00"},
    ),
    request("Every failed one", {"failed": True}),
    response("Queued again", {"queued": 1}, 202),
]


def _event(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": event_type,
        "timestamp": "2026-11-02T09:16:00.000000+00:00",
        "data": {**data, "ledger_seq": 5120, "sequence": 42},
    }


# One delivery body per event type, as an endpoint acting for marketing receives it.
EVENT_PAYLOADS: dict[str, dict[str, Any]] = {
    "contact.created": _event(
        "contact.created",
        {"contact": 201, "organization": 14, "links": {"self": "/api/v1/contacts/201/"}},
    ),
    "contact.merged": _event(
        "contact.merged",
        {"contact": 201, "merged": 233, "links": {"self": "/api/v1/contacts/201/"}},
    ),
    "contact.erased": _event("contact.erased", {"contact": 201}),
    "consent.granted": _event(
        "consent.granted",
        {
            "consent": 77,
            "contact": 201,
            "purpose": "sales_contact",
            "links": {"self": "/api/v1/contacts/201/"},
        },
    ),
    "consent.withdrawn": _event(
        "consent.withdrawn",
        {
            "consent": 78,
            "contact": 201,
            "purpose": "marketing_email",
            "links": {"self": "/api/v1/contacts/201/"},
        },
    ),
    "disclosure.recorded": _event(
        "disclosure.recorded",
        {
            "disclosure": 310,
            "contact": 201,
            "key": "journey_stage",
            "audience": "marketing",
            "value": "comparing",
            "links": {"self": "/api/v1/contacts/201/"},
        },
    ),
    "disclosure.withdrawn": _event(
        "disclosure.withdrawn",
        {
            "disclosure": 310,
            "contact": 201,
            "key": "journey_stage",
            "links": {"self": "/api/v1/contacts/201/"},
        },
    ),
    "touch.recorded": _event(
        "touch.recorded",
        {
            "touch": 9120,
            "contact": 201,
            "channel": "webinar",
            "campaign": 12,
            "kind": "webinar_attended",
            "links": {"self": "/api/v1/contacts/201/timeline/"},
        },
    ),
    "handoff.created": _event(
        "handoff.created",
        {
            "handoff": 55,
            "contact": 201,
            "status": "pending",
            "due_at": "2026-11-03T09:16:00+00:00",
            "ruleset_version": 2,
            "links": {"self": "/api/v1/handoffs/55/"},
        },
    ),
    "handoff.accepted": _event(
        "handoff.accepted",
        {
            "handoff": 55,
            "contact": 201,
            "status": "accepted",
            "owner": "sam",
            "links": {"self": "/api/v1/handoffs/55/"},
        },
    ),
    "handoff.rejected": _event(
        "handoff.rejected",
        {
            "handoff": 56,
            "contact": 202,
            "status": "rejected",
            "reason": "bad_timing",
            "links": {"self": "/api/v1/handoffs/56/"},
        },
    ),
    "handoff.expired": _event(
        "handoff.expired",
        {
            "handoff": 57,
            "contact": 203,
            "status": "expired",
            "links": {"self": "/api/v1/handoffs/57/"},
        },
    ),
    "deal.created": _event(
        "deal.created",
        {
            "deal": 19,
            "organization": 14,
            "amount": "48000.00",
            "source": "marketing",
            "contacts": [201],
            "links": {"self": "/api/v1/deals/19/"},
        },
    ),
    "sale.recorded": _event(
        "sale.recorded",
        {
            "deal": 19,
            "sale_event": 31,
            "kind": "won",
            "amount": "48000.00",
            "links": {"self": "/api/v1/deals/19/"},
        },
    ),
    "deal.source_overridden": _event(
        "deal.source_overridden",
        {
            "deal": 19,
            "source": "sales",
            "derived_source": "marketing",
            "links": {"self": "/api/v1/deals/19/"},
        },
    ),
    "ruleset.activated": _event(
        "ruleset.activated", {"ruleset": 4, "version": 3, "links": {"self": "/api/v1/rulesets/4/"}}
    ),
    "attribution.run_completed": _event(
        "attribution.run_completed",
        {
            "run": 88,
            "conversions": 42,
            "touches": 5120,
            "links": {"self": "/api/v1/attribution/runs/88/"},
        },
    ),
}
