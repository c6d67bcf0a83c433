"""Request and response examples for the forms API (see ``leadrecord.api_examples``)."""

from __future__ import annotations

from leadrecord.api_examples import FORBIDDEN, invalid, request, response

FORM_BODY = {
    "slug": "demo-request",
    "title": "Ask for a demo",
    "intro": "Tell us where you are; choose who may see each answer.",
    "ask_names": True,
    "ask_organization": True,
    "consents": [
        {"purpose": "marketing_email", "notice": "Send me product news.", "version": "2026-03"},
        {"purpose": "analytics", "notice": "Remember my visits.", "version": "a1"},
    ],
    "disclosures": [
        {"key": "journey_stage", "label": "Where are you?"},
        {"key": "budget", "label": "Budget"},
    ],
    "purpose": "qualification",
    "campaign": 12,
    "published": True,
}
FORM = {**FORM_BODY, "id": 3, "created_at": "2026-03-02T09:15:00Z"}
SUBMISSION = {
    "id": 41,
    "contact": 201,
    "touch": 9120,
    "campaign": 12,
    "shared_device": False,
    "created_person": True,
    "submitted_at": "2026-03-04T10:02:11Z",
    "utm": {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring-2026"},
}

FORMS_LIST = [response("A page of forms", FORM)]
FORMS_CREATE = [
    request("A demo request form", FORM_BODY),
    response("Published", FORM, status=201),
    invalid("A slug in use", "unique", "A form with the slug 'demo-request' exists.", "slug"),
    FORBIDDEN,
]
FORM_DETAIL = [response("A form", FORM)]
FORM_SUBMISSIONS = [response("Who sent it", SUBMISSION)]
