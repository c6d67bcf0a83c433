"""A form sent is one set-based write: its statements do not grow with its answers."""

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from contacts.models import Consent, Disclosure

from .conftest import send

FEW = {"email": "few@buyers.example", "budget": "50k", "budget__audience": "sales"}
MANY = {
    "email": "many@buyers.example",
    "budget": "50k",
    "budget__audience": "sales",
    "timeline": "Q3",
    "timeline__audience": "marketing",
    "journey_stage": "comparing",
    "journey_stage__audience": "all",
    "consent_marketing_email": "on",
    "consent_sales_contact": "on",
}


def _statements(form_slug: str, data: dict[str, str]) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = send(Client(), form_slug, data)
    assert b"Thank you" in response.content
    return len(queries.captured_queries)


def test_more_answers_take_no_more_statements(buyer_form):
    _statements(buyer_form.slug, {"email": "warm@buyers.example"})  # caches warmed
    few = _statements(buyer_form.slug, FEW)
    many = _statements(buyer_form.slug, MANY)
    assert Disclosure.objects.filter(contact__email="many@buyers.example").count() == 3
    assert Consent.objects.filter(contact__email="many@buyers.example").count() == 2
    # Consents are one insert more than none, and a journey stage one look whether it
    # opens a handoff; nothing grows per answer (one by one, this was 69 against 35).
    assert many <= few + 2
