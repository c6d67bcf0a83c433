"""Request and response examples for the OpenAPI schema, one set per operation.

The API views attach them with ``extend_schema(examples=...)``. They tell one
story, the one docs/api.md tells: Ada Lovelace of Example Analytics (contact 201)
attends a webinar, says she is comparing tools, agrees to be called by sales,
is handed off, accepted by sam, and becomes a deal that is won. The values were
taken from real answers of the API on the demo data, so they match the schema
(``tests/leadrecord/test_api_examples.py`` checks every request example against
its request schema, and that no operation is without examples).

Paginated lists are given one item: drf-spectacular wraps it in
``{"count", "next", "previous", "results"}`` itself.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample

# --- helpers ------------------------------------------------------------------------------------


def request(name: str, value: Any, summary: str = "") -> OpenApiExample:
    return OpenApiExample(name, value=value, summary=summary or name, request_only=True)


def response(name: str, value: Any, status: int = 200, summary: str = "") -> OpenApiExample:
    return OpenApiExample(
        name, value=value, summary=summary or name, response_only=True, status_codes=[str(status)]
    )


def refusal(
    name: str,
    status: int,
    code: str,
    detail: str,
    attr: str | None = None,
    kind: str = "client_error",
) -> OpenApiExample:
    """An error answer as drf-standardized-errors writes it."""
    return response(
        name,
        {"type": kind, "errors": [{"code": code, "detail": detail, "attr": attr}]},
        status=status,
    )


def invalid(name: str, code: str, detail: str, attr: str | None) -> OpenApiExample:
    return refusal(name, 400, code, detail, attr, kind="validation_error")


FORBIDDEN = refusal(
    "Not allowed for your role",
    403,
    "permission_denied",
    "You do not have permission to perform this action.",
)
ERASED = refusal("The person was erased", 410, "contact_erased", "This contact has been erased.")

# --- shared values ------------------------------------------------------------------------------

ORGANIZATION = {"id": 26, "name": "Example Analytics", "domain": "example.com"}
CONSENTS_NOW = [
    {
        "purpose": "analytics",
        "granted": False,
        "source": "",
        "notice_version": "",
        "occurred_at": None,
    },
    {
        "purpose": "marketing_email",
        "granted": True,
        "source": "webinar registration",
        "notice_version": "2026-09",
        "occurred_at": "2026-11-02T09:06:00Z",
    },
    {
        "purpose": "sales_contact",
        "granted": True,
        "source": "pricing-page form",
        "notice_version": "2026-09",
        "occurred_at": "2026-11-02T09:04:00Z",
    },
]
DISCLOSURE_STAGE = {
    "id": 636,
    "key": "journey_stage",
    "value": "comparing",
    "audience": "all",
    "purpose": "qualification",
    "source": "self",
    "disclosed_at": "2026-11-02T09:05:00Z",
    "expires_at": None,
}
DISCLOSURE_BUDGET = {
    "id": 635,
    "key": "budget",
    "value": "40-60k USD this year",
    "audience": "sales",
    "purpose": "qualification",
    "source": "self",
    "disclosed_at": "2026-11-02T09:05:00Z",
    "expires_at": None,
}
CONTACT_SUMMARY = {
    "id": 201,
    "email": "ada.lovelace@example.com",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "title": "Head of Operations",
    "organization": ORGANIZATION,
    "journey_stage": "comparing",
    "score": 57,
    "qualified": True,
    "created_at": "2026-11-02T09:00:00Z",
}
CONTACT_DETAIL = {
    **CONTACT_SUMMARY,
    "consents": CONSENTS_NOW,
    "disclosures": [DISCLOSURE_BUDGET, DISCLOSURE_STAGE],
}
NEW_CONTACT = {
    **CONTACT_SUMMARY,
    "journey_stage": None,
    "score": 0,
    "qualified": False,
    "consents": [
        {**consent, "granted": False, "source": "", "notice_version": "", "occurred_at": None}
        for consent in CONSENTS_NOW
    ],
    "disclosures": [],
}
HANDOFF_PENDING = {
    "id": 34,
    "contact": 201,
    "status": "pending",
    "sla_state": "on_time",
    "ruleset_version": 2,
    "score": 57,
    "buyer_signal": "consent:sales_contact",
    "automatic": False,
    "note": "Attended the webinar and asked about pricing.",
    "occurred_at": "2026-11-03T08:30:00Z",
    "recorded_at": "2026-11-03T08:30:00Z",
    "due_at": "2026-11-05T08:30:00Z",
    "assigned_to": None,
    "owner": None,
    "decided_by": None,
    "decided_at": None,
    "reason": "",
    "decision_note": "",
}
HANDOFF_ACCEPTED = {
    **HANDOFF_PENDING,
    "status": "accepted",
    "sla_state": "accepted",
    "owner": 2,
    "decided_by": 2,
    "decided_at": "2026-11-03T14:10:00Z",
}
HANDOFF_REJECTED = {
    **HANDOFF_PENDING,
    "id": 35,
    "contact": 88,
    "status": "rejected",
    "sla_state": "rejected",
    "decided_by": 3,
    "decided_at": "2026-11-04T09:20:00Z",
    "reason": "bad_timing",
    "decision_note": "Budget is frozen until Q2; asked us to call back in March.",
}
RULESET = {
    "id": 3,
    "name": "Q1 rules",
    "version": 3,
    "status": "draft",
    "points": {"channel:webinar": 12, "disclosure:budget": 20, "kind:form": 10},
    "mql_threshold": 50,
    "sla_hours": 48,
    "sourcing_window_days": 90,
    "lookback_days": 365,
    "auto_handoff": False,
    "created_at": "2026-11-20T10:00:00Z",
    "activated_at": None,
    "retired_at": None,
}
SALE_WON = {
    "id": 17,
    "kind": "won",
    "amount": "48000.00",
    "occurred_at": "2026-11-20T15:30:00Z",
    "recorded_at": "2026-11-20T15:31:12Z",
    "source_system": "crm",
    "external_id": "opp-0042-won",
}
DEAL = {
    "id": 21,
    "name": "Example Analytics platform",
    "organization": 26,
    "contacts": [{"contact": 201, "role": "champion", "other_organization": False}],
    "amount": "48000.00",
    "owner": 2,
    "state": "open",
    "source": "marketing",
    "source_reason": "Marketing-sourced: a buying-group member's handoff was made 2 days before "
    "this deal and accepted by sam (sourcing window 90 days, ruleset v2).",
    "derived_source": "marketing",
    "overridden": False,
    "sourcing_handoff": 34,
    "influenced": True,
    "sale_events": [],
    "external_id": "opp-0042",
    "occurred_at": "2026-11-05T10:00:00Z",
    "recorded_at": "2026-11-05T10:00:00Z",
}
DEAL_WON = {**DEAL, "state": "won", "sale_events": [SALE_WON]}
RUN = {
    "id": 2,
    "status": "complete",
    "trigger": "api",
    "created_at": "2026-11-23T02:30:00Z",
    "started_at": "2026-11-23T02:30:01Z",
    "finished_at": "2026-11-23T02:30:02Z",
    "conversions": 6,
    "touches": 1249,
    "models": [
        "first_touch",
        "last_touch",
        "linear",
        "time_decay",
        "position_based",
        "w_shaped",
        "markov",
        "shapley",
    ],
    "models_unavailable": {},
    "unallocated": {"markov": {"7": 1140.25}},
    "ruleset_version": 2,
    "lookback_days": 365,
    "input_digest": "e60a31fb3cf3c62f4a6a998caf828a4db40cb89dbc3ce28a7ae94e61032cf5f1",
    "error": "",
}
DATE_ERROR = invalid("An impossible range", "invalid", "The last day comes before the first.", "to")

# --- leadrecord: health, me, ledger -------------------------------------------------------------

HEALTH = [response("Up", {"status": "ok", "database": "ok"})]
ME = [response("A marketer", {"id": 1, "username": "maria", "roles": ["marketer"]})]
LEDGER = [
    response(
        "The newest entry",
        {
            "seq": 3023,
            "occurred_at": "2026-11-23T02:30:02Z",
            "recorded_at": "2026-11-23T02:30:02Z",
            "actor": "attribution",
            "actor_kind": "system",
            "action": "attribution.run",
            "subject_type": "attribution_run",
            "subject_id": "2",
            "reason": "",
            "prev_hash": "91e7af22743febcdf72e2b3c337d9513c736ceec91b4ea953ad011468070366f",
            "hash": "ec1fe1d892d957e5b2256658e9bb5497766c86d80be0a7dbde7a728fbc6d5a7c",
        },
    ),
    FORBIDDEN,
]
LEDGER_CHECKPOINT_LATEST = [
    response(
        "The latest checkpoint",
        {
            "seq": 3023,
            "hash": "ec1fe1d892d957e5b2256658e9bb5497766c86d80be0a7dbde7a728fbc6d5a7c",
            "signed_at": "2026-11-23T02:45:00.118254+00:00",
            "signature": "GB96NqNcD7z7GSbJXR4tIhxFTKnyRLdTylHpbFgGXX+TbnvKA99ra/ckija+E0hh"
            "eSW2pvrTBNf5cMCX0BYlCw==",
            "public_key": "rmcNpZg2VEQqOu/2wmKH3iVHR/JDW1C/sxpJdEn/8TI=",
        },
    ),
    refusal(
        "None signed yet",
        404,
        "not_found",
        "No checkpoint has been signed yet: set LEDGER_SIGNING_KEY and run manage.py "
        "ledger_checkpoint (Celery beat runs it every 15 minutes).",
    ),
    FORBIDDEN,
]

# --- contacts -----------------------------------------------------------------------------------

CONTACTS_LIST = [response("A page of contacts", CONTACT_SUMMARY)]
CONTACTS_CREATE = [
    request(
        "A new person",
        {
            "email": "ada.lovelace@example.com",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "title": "Head of Operations",
            "organization": {"name": "Example Analytics", "domain": "example.com"},
        },
    ),
    request("Only the email", {"email": " Ada.Lovelace@EXAMPLE.com "}),
    response("Created", NEW_CONTACT, status=201),
    response(
        "Already known (email matched trimmed and case-insensitively)", CONTACT_DETAIL, status=200
    ),
    invalid("Not an email", "invalid", "Enter a valid email address.", "email"),
]
CONTACT_DETAIL_EXAMPLES = [
    response("As a manager sees her", CONTACT_DETAIL),
    response(
        "As a marketer sees her (no sales-only disclosure)",
        {**CONTACT_DETAIL, "disclosures": [DISCLOSURE_STAGE]},
    ),
    ERASED,
]
TIMELINE = [
    response(
        "An entry",
        {
            "seq": 3026,
            "occurred_at": "2026-11-02T09:04:00Z",
            "recorded_at": "2026-11-02T09:04:02Z",
            "actor": "maria",
            "action": "consent.record",
            "summary": "Consent to sales contact granted (source: pricing-page form, "
            "notice 2026-09)",
        },
    ),
    ERASED,
]
CONSENT = {
    "id": 448,
    "contact": 201,
    "purpose": "sales_contact",
    "granted": True,
    "source": "pricing-page form",
    "notice_version": "2026-09",
    "occurred_at": "2026-11-02T09:04:00Z",
    "recorded_at": "2026-11-02T09:04:02Z",
}
CONSENTS_LIST = [response("A grant", CONSENT), ERASED]
CONSENTS_CREATE = [
    request(
        "Agreed to a sales call",
        {
            "purpose": "sales_contact",
            "granted": True,
            "source": "pricing-page form",
            "notice_version": "2026-09",
            "occurred_at": "2026-11-02T10:04:00+01:00",
        },
    ),
    request(
        "Withdrew analytics consent",
        {"purpose": "analytics", "granted": False, "source": "preference centre"},
    ),
    response("Recorded", CONSENT, status=201),
    invalid(
        "A time without an offset",
        "invalid",
        "Give the time with a UTC offset (e.g. 2026-11-02T10:00:00+01:00).",
        "occurred_at",
    ),
    ERASED,
]
DISCLOSURES_LIST = [response("A disclosure you may see", DISCLOSURE_STAGE), ERASED]
DISCLOSURES_CREATE = [
    request(
        "Her stage, for everyone",
        {
            "key": "journey_stage",
            "value": "comparing",
            "audience": "all",
            "purpose": "qualification",
            "source": "self",
        },
    ),
    request(
        "Her budget, for sales only, for three months",
        {
            "key": "budget",
            "value": "40-60k USD this year",
            "audience": "sales",
            "purpose": "qualification",
            "source": "self",
            "expires_at": "2027-02-02T00:00:00+00:00",
            "occurred_at": "2026-11-02T10:05:00+01:00",
        },
    ),
    response("Recorded", {**DISCLOSURE_STAGE, "contact": 201}, status=201),
    invalid(
        "An unknown stage",
        "invalid_choice",
        "journey_stage takes learning, comparing or ready_to_talk.",
        "value",
    ),
    ERASED,
]
DISCLOSURE_WITHDRAW = [
    response(
        "Withdrawn",
        {
            "id": 635,
            "contact": 201,
            "key": "budget",
            "audience": "sales",
            "withdrawn_at": "2026-11-21T09:00:00Z",
        },
    ),
    refusal("Not one you can see", 404, "not_found", "Not found."),
]
CONTACT_MERGE = [
    request(
        "Two addresses, one person",
        {"keep": 201, "merge": 203, "reason": "Same person: work and old work address."},
    ),
    response("The kept contact, with the merged one's records", CONTACT_DETAIL),
    invalid("Into itself", "merge_into_self", "A contact cannot be merged into itself.", "merge"),
]
CONTACT_ERASE = [
    request("On the person's request", {"reason": "Asked to be forgotten by email on 2026-11-21."}),
    response("Erased", {"id": 201, "erased_at": "2026-11-21T10:15:00Z"}),
    ERASED,
]
CONTACT_EXPORT = [
    response(
        "Everything held about her",
        {
            "generated_at": "2026-11-21T10:00:00+00:00",
            "contact": {
                "id": 201,
                "email": "ada.lovelace@example.com",
                "first_name": "Ada",
                "last_name": "Lovelace",
                "title": "Head of Operations",
                "organization": ORGANIZATION,
                "created_at": "2026-11-02T09:00:00+00:00",
            },
            "merged_contacts": [],
            "consents": [
                {
                    "purpose": "sales_contact",
                    "granted": True,
                    "source": "pricing-page form",
                    "notice_version": "2026-09",
                    "occurred_at": "2026-11-02T09:04:00+00:00",
                    "recorded_at": "2026-11-02T09:04:02+00:00",
                }
            ],
            "disclosures": [
                {**DISCLOSURE_BUDGET, "withdrawn_at": None},
                {**DISCLOSURE_STAGE, "withdrawn_at": None},
            ],
            "record": [
                {
                    "seq": 3025,
                    "occurred_at": "2026-11-02T09:00:00+00:00",
                    "recorded_at": "2026-11-02T09:00:00+00:00",
                    "actor": "maria",
                    "action": "contact.create",
                    "details": {"organization": 26, "email": "ada.lovelace@example.com"},
                }
            ],
        },
    ),
    ERASED,
]

# --- channels, campaigns, touches, events ------------------------------------------------------

CHANNELS_LIST = [response("A channel", {"key": "webinar", "team": "marketing", "active": True})]
CHANNELS_CREATE = [
    request("A new channel", {"key": "podcast", "team": "marketing"}),
    response("Created", {"key": "podcast", "team": "marketing", "active": True}, status=201),
    invalid("Already there", "unique", "Channel 'podcast' exists.", "key"),
]
CHANNEL_UPDATE = [
    request("Retire it", {"active": False}),
    response("Updated", {"key": "podcast", "team": "marketing", "active": False}),
]
CAMPAIGN = {
    "id": 19,
    "name": "Webinar: Attribution in practice",
    "channel": "webinar",
    "team": "marketing",
    "utm_source": "webinar",
    "utm_medium": "webinar",
    "utm_campaign": "attribution-in-practice",
    "cost": "4500.00",
    "created_at": "2026-10-01T09:00:00Z",
}
CAMPAIGNS_LIST = [response("A campaign", CAMPAIGN)]
CAMPAIGNS_CREATE = [
    request(
        "A webinar",
        {
            "name": "Webinar: Attribution in practice",
            "channel": "webinar",
            "utm_source": "webinar",
            "utm_medium": "webinar",
            "utm_campaign": "attribution-in-practice",
            "cost": "4500.00",
        },
    ),
    response("Created", CAMPAIGN, status=201),
    invalid(
        "Another currency",
        "unsupported_currency",
        "Amounts are in USD; other currencies are not accepted until exchange rates exist.",
        "currency",
    ),
]
TOUCH = {
    "id": 1432,
    "contact": 201,
    "channel": "webinar",
    "campaign": 19,
    "kind": "webinar_attended",
    "occurred_at": "2026-11-02T09:00:00Z",
    "recorded_at": "2026-11-02T09:45:00Z",
    "source_system": "webinar-platform",
    "external_id": "wb-2026-11-02-0042",
}
TOUCHES_LIST = [response("A touch", TOUCH)]
TOUCHES_CREATE = [
    request(
        "A webinar attended, by email",
        {
            "contact_email": "ada.lovelace@example.com",
            "channel": "webinar",
            "campaign": 19,
            "kind": "webinar_attended",
            "occurred_at": "2026-11-02T10:00:00+01:00",
            "source_system": "webinar-platform",
            "external_id": "wb-2026-11-02-0042",
        },
    ),
    request("A visit, by contact id", {"contact": 201, "channel": "web", "kind": "visit"}),
    response("Recorded", TOUCH, status=201),
    response("The same external id again: the first touch", TOUCH, status=200),
    invalid("An unknown channel", "does_not_exist", "Unknown channel 'fax'.", "channel"),
]
EVENTS_REQUEST = {
    "events": [
        {
            "type": "touch",
            "source_system": "crm",
            "external_id": "t-1",
            "occurred_at": "2026-11-02T10:00:00+01:00",
            "channel": "webinar",
            "kind": "webinar_attended",
            "contact": {
                "email": "ada@example.com",
                "organization": {"name": "Example", "domain": "example.com"},
            },
        },
        {
            "type": "disclosure",
            "source_system": "crm",
            "external_id": "d-1",
            "occurred_at": "2026-11-02T10:05:00+01:00",
            "contact": {"email": "ada@example.com"},
            "key": "journey_stage",
            "value": "comparing",
            "audience": "all",
            "purpose": "qualification",
            "source": "self",
        },
        {
            "type": "consent",
            "source_system": "crm",
            "external_id": "c-1",
            "occurred_at": "2026-11-02T10:06:00+01:00",
            "contact": {"email": "ada@example.com"},
            "purpose": "marketing_email",
            "granted": True,
            "source": "webinar registration",
        },
        {
            "type": "touch",
            "source_system": "crm",
            "external_id": "t-2",
            "occurred_at": "2026-11-02T10:07:00+01:00",
            "channel": "carrier_pigeon",
            "contact": {"email": "ada@example.com"},
        },
    ]
}
EVENTS = [
    request("A touch, a disclosure, a consent and a bad channel", EVENTS_REQUEST),
    request(
        "A sale on a deal known by its external id",
        {
            "events": [
                {
                    "type": "sale",
                    "source_system": "crm",
                    "external_id": "opp-0042-won",
                    "occurred_at": "2026-11-20T16:30:00+01:00",
                    "deal_external_id": "opp-0042",
                    "kind": "won",
                    "amount": "48000.00",
                }
            ]
        },
    ),
    response(
        "Three stored, one rejected",
        {
            "created": 3,
            "duplicate": 0,
            "rejected": 1,
            "results": [
                {"external_id": "t-1", "status": "created", "id": 1433, "errors": []},
                {"external_id": "d-1", "status": "created", "id": 637, "errors": []},
                {"external_id": "c-1", "status": "created", "id": 449, "errors": []},
                {
                    "external_id": "t-2",
                    "status": "rejected",
                    "id": None,
                    "errors": [
                        {
                            "code": "does_not_exist",
                            "detail": "Unknown channel 'carrier_pigeon'.",
                            "attr": "channel",
                        }
                    ],
                },
            ],
        },
    ),
    response(
        "The same batch again: duplicates, nothing changed",
        {
            "created": 0,
            "duplicate": 3,
            "rejected": 1,
            "results": [
                {"external_id": "t-1", "status": "duplicate", "id": 1433, "errors": []},
                {"external_id": "d-1", "status": "duplicate", "id": 637, "errors": []},
                {"external_id": "c-1", "status": "duplicate", "id": 449, "errors": []},
                {
                    "external_id": "t-2",
                    "status": "rejected",
                    "id": None,
                    "errors": [
                        {
                            "code": "does_not_exist",
                            "detail": "Unknown channel 'carrier_pigeon'.",
                            "attr": "channel",
                        }
                    ],
                },
            ],
        },
    ),
    invalid("No events", "invalid", "Send 1 to 1000 events, not 0.", "events"),
    refusal(
        "An Idempotency-Key reused with another body",
        422,
        "idempotency_key_reused",
        "This Idempotency-Key came with a different body before.",
        "Idempotency-Key",
    ),
]

# --- rulesets, handoffs, deals, targets ---------------------------------------------------------

RULESETS_LIST = [response("A ruleset", {**RULESET, "status": "active"})]
RULESET_INPUT = {
    "name": "Q1 rules",
    "points": {"channel:webinar": 12, "kind:form": 10, "disclosure:budget": 20},
    "mql_threshold": 50,
    "sla_hours": 48,
    "sourcing_window_days": 90,
    "lookback_days": 365,
    "auto_handoff": False,
}
RULESETS_CREATE = [
    request("A draft", RULESET_INPUT),
    response("Created as a draft", RULESET, status=201),
    invalid(
        "A point key of no known kind",
        "invalid",
        "'score' is not a rule: use channel:<key>, kind:<kind> or disclosure:<key>.",
        "points",
    ),
    FORBIDDEN,
]
RULESET_DETAIL = [response("A draft", RULESET)]
RULESET_UPDATE = [
    request("Raise the threshold", {"mql_threshold": 55}),
    response("Updated", {**RULESET, "mql_threshold": 55}),
    refusal(
        "Active or retired rulesets do not change",
        409,
        "ruleset_frozen",
        "Ruleset v3 is active; only drafts change. Copy it into a new draft instead.",
    ),
]
RULESET_ACTIVATE = [
    response(
        "Active; the previous one retired",
        {**RULESET, "status": "active", "activated_at": "2026-11-20T10:30:00Z"},
    ),
    refusal(
        "Not a draft",
        409,
        "ruleset_frozen",
        "Ruleset v3 is active; only drafts change. Copy it into a new draft instead.",
    ),
]
HANDOFFS_LIST = [response("A pending handoff", HANDOFF_PENDING)]
HANDOFFS_CREATE = [
    request("Hand her to sales", {"contact": 201, "note": HANDOFF_PENDING["note"]}),
    response("Pending, due within the SLA", HANDOFF_PENDING, status=201),
    refusal(
        "No say-so from the buyer",
        409,
        "no_buyer_consent",
        "This person has neither granted sales_contact consent nor said they are ready to talk; "
        "they are not handed to sales without their say-so.",
        "contact",
    ),
    refusal(
        "One is open already",
        409,
        "handoff_open",
        "This person was handed off on 2026-11-03 09:15 UTC and is still waiting for sales.",
        "contact",
    ),
]
HANDOFF_DETAIL = [response("Pending", HANDOFF_PENDING), response("Rejected", HANDOFF_REJECTED)]
HANDOFF_ACCEPT = [
    request("Take it yourself", {}),
    request("Give it to a rep (manager)", {"owner": 2}),
    response("Accepted", HANDOFF_ACCEPTED),
    refusal(
        "Decided already",
        409,
        "handoff_not_pending",
        "This handoff is already accepted; nothing changed.",
    ),
    refusal(
        "Expired already (the SLA job returned it to marketing)",
        409,
        "handoff_not_pending",
        "This handoff is already expired; nothing changed.",
    ),
]
HANDOFF_REJECT = [
    request(
        "Bad timing",
        {"reason": "bad_timing", "note": HANDOFF_REJECTED["decision_note"]},
    ),
    response("Rejected: back to marketing with the reason", HANDOFF_REJECTED),
    invalid("No reason", "required", "This field is required.", "reason"),
]
DEALS_LIST = [response("A deal", DEAL)]
DEALS_CREATE = [
    request(
        "From the accepted handoff",
        {
            "name": "Example Analytics platform",
            "organization": 26,
            "contacts": [{"contact": 201, "role": "champion"}],
            "amount": "48000.00",
            "owner": 2,
            "source_system": "crm",
            "external_id": "opp-0042",
            "occurred_at": "2026-11-05T11:00:00+01:00",
        },
    ),
    response("Created, its source derived", DEAL, status=201),
    response("The same external id again: the first deal", DEAL, status=200),
    invalid(
        "A buying-group member who is no contact",
        "does_not_exist",
        "No living contact 999999.",
        "contacts",
    ),
]
DEAL_DETAIL = [response("Won", DEAL_WON)]
SALE_EVENTS_CREATE = [
    request(
        "Won",
        {
            "kind": "won",
            "amount": "48000.00",
            "occurred_at": "2026-11-20T16:30:00+01:00",
            "source_system": "crm",
            "external_id": "opp-0042-won",
        },
    ),
    request("Lost (no amount)", {"kind": "lost", "occurred_at": "2026-11-20T16:30:00+01:00"}),
    response("Recorded", SALE_WON, status=201),
    response("The same external id again: the first event", SALE_WON, status=200),
    invalid(
        "Before the deal",
        "before_deal",
        "This deal was created on 2026-11-05 10:00 UTC; a sale event cannot come before it.",
        "occurred_at",
    ),
    refusal("Won twice", 409, "already_won", "This deal has already been won.", "kind"),
]
DEAL_OVERRIDE = [
    request(
        "Sales found them first",
        {
            "source": "sales",
            "reason": "The rep met the buyer at a customer dinner before the webinar.",
        },
    ),
    response(
        "Overridden; the derived source is kept beside it",
        {
            **DEAL,
            "source": "sales",
            "source_reason": "Overridden to sales: The rep met the buyer at a customer dinner "
            "before the webinar.",
            "overridden": True,
        },
    ),
    invalid("No reason", "required", "This field is required.", "reason"),
]
TARGET = {
    "period": "2027-Q1",
    "marketing_pipeline_share": "0.4500",
    "updated_at": "2026-11-20T10:00:00Z",
}
TARGETS_LIST = [response("A quarter's target", TARGET)]
TARGETS_CREATE = [
    request("Next quarter", {"period": "2027-Q1", "marketing_pipeline_share": "0.45"}),
    response("Set", TARGET, status=201),
    response("Changed (the quarter had one)", TARGET, status=200),
    invalid(
        "Not a quarter",
        "invalid",
        "A period is a quarter like 2026-Q3.",
        "period",
    ),
]

# --- attribution runs and reports ---------------------------------------------------------------

RUN_CREATE = [
    response("Queued (or the run already in flight)", {**RUN, "status": "queued"}, status=202),
    FORBIDDEN,
]
RUN_DETAIL = [response("Complete", RUN)]
REPORT_ATTRIBUTION = [
    response(
        "Linear, by channel",
        {
            "run": {"id": 2, "finished_at": "2026-11-23T02:30:02Z"},
            "model": "linear",
            "group_by": "channel",
            "changes_since": 3,
            "rows": [
                {"key": "sales_call", "credit": 34865.96, "conversions": 1.6303},
                {"key": "email", "credit": 13947.12, "conversions": 0.54},
                {"key": "webinar", "credit": 3300.0, "conversions": 0.1},
            ],
        },
    ),
    invalid("An unknown model", "invalid_choice", '"astrology" is not a valid choice.', "model"),
    refusal(
        "A model the run could not compute",
        409,
        "model_unavailable",
        "Attribution run #2 could not compute markov: FitError: the per-conversion split "
        "missed a channel's credit by 3.0e-10 of the total after the fit's last step",
        "model",
    ),
]
REPORT_MODELS = [
    response(
        "Every model side by side",
        {
            "run": 2,
            "group_by": "channel",
            "models": RUN["models"],
            "rows": [
                {
                    "key": "email",
                    "credits": {
                        "first_touch": 47900.0,
                        "last_touch": 0.0,
                        "linear": 13947.12,
                        "time_decay": 8130.3,
                        "position_based": 21383.33,
                        "w_shaped": 31525.28,
                        "markov": 15235.15,
                        "shapley": 13931.28,
                    },
                }
            ],
        },
    ),
    DATE_ERROR,
]
REPORT_CAMPAIGNS = [
    response(
        "Cost against attributed revenue",
        {
            "run": 2,
            "model": "linear",
            "rows": [
                {
                    "campaign_id": 3,
                    "name": "Nurture: closing the handoff loop",
                    "channel": "email",
                    "cost": "3500.00",
                    "attributed_revenue": 4784.62,
                    "roi": 0.367,
                }
            ],
        },
    ),
    DATE_ERROR,
]
REPORT_RECONCILIATION = [
    response(
        "This quarter",
        {
            "run": {"id": 2, "finished_at": "2026-11-23T02:30:02Z"},
            "gross_attributed": "61200.00",
            "churn": "4800.00",
            "net_revenue": "78500.00",
            "outside_attribution": {
                "count": 3,
                "amount": "20600.00",
                "no_touches": {"count": 2, "amount": "17400.00"},
                "consent_withdrawn": {"count": 1, "amount": "3200.00"},
            },
            "not_yet_attributed": {"count": 1, "amount": "1500.00"},
        },
    ),
    DATE_ERROR,
]
REPORT_CONTRIBUTION = [
    response(
        "This quarter",
        {
            "pipeline": {
                "marketing_sourced": "138100.00",
                "sales_sourced": "224800.00",
                "total": "362900.00",
                "marketing_share": "0.3805",
            },
            "revenue": {
                "marketing_sourced": "35400.00",
                "sales_sourced": "47900.00",
                "total": "83300.00",
                "marketing_share": "0.4250",
            },
            "target_share": "0.4500",
            "influenced": {"pipeline": "62800.00", "revenue": "83300.00"},
            "people": {
                "contacts": 202,
                "engaged": 147,
                "qualified": 97,
                "handed_off": 18,
                "accepted": 9,
                "customers": 4,
            },
        },
    ),
    DATE_ERROR,
]
REPORT_FUNNEL = [
    response(
        "This quarter",
        {
            "stages": [
                {
                    "key": "qualified",
                    "label": "Qualified",
                    "people": 97,
                    "conversion_to_next": 0.1856,
                    "median_days_in_stage": 3.5,
                },
                {
                    "key": "handed_off",
                    "label": "Handed off",
                    "people": 18,
                    "conversion_to_next": 0.5,
                    "median_days_in_stage": 0.55,
                },
                {
                    "key": "customers",
                    "label": "Customers",
                    "people": 4,
                    "conversion_to_next": None,
                    "median_days_in_stage": None,
                },
            ],
            "leakage": [
                {
                    "key": "qualified_not_handed_off",
                    "label": "Qualified, never handed off",
                    "count": 63,
                    "url": "/reports/lists/qualified-not-handed-off/?from=2026-10-01&to=2026-11-23",
                }
            ],
        },
    ),
    DATE_ERROR,
]
REPORT_LIFETIME = [
    response(
        "Revenue after the first sale, by source",
        {
            "rows": [
                {
                    "source": "marketing",
                    "won": "42800.00",
                    "expansion": "2400.00",
                    "renewal": "9800.00",
                    "churn": "9800.00",
                    "net": "45200.00",
                },
                {
                    "source": "sales",
                    "won": "66800.00",
                    "expansion": "0.00",
                    "renewal": "0.00",
                    "churn": "0.00",
                    "net": "66800.00",
                },
            ]
        },
    ),
    DATE_ERROR,
]
