"""A form sent is one set-based write: its statements do not grow with its answers."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from contacts.models import Consent, Contact, Disclosure
from handoff import services as handoff_services
from handoff.models import Qualification
from leadrecord.ledger import ledger_verify
from leadrecord.models import LedgerEntry

from .conftest import SYSTEM, send

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


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_form_sent_locks_once_and_reads_the_ruleset_and_key_once(buyer_form):
    """Each service of a form sent asks for the ledger lock, the active ruleset and the
    person's key: the transaction takes and reads each once, and rolls back no savepoint
    it did not need."""
    # Every touch qualifies: scores are followed after the answers and after the touch.
    ruleset = handoff_services.ruleset_create(
        name="r", points={"kind:form": 60}, mql_threshold=50, sla_hours=24, actor=SYSTEM
    )
    handoff_services.ruleset_activate(ruleset=ruleset, actor=SYSTEM)
    _statements(buyer_form.slug, {"email": "warm@buyers.example", "organization": "Acme"})
    with CaptureQueriesContext(connection) as queries:
        response = send(Client(), buyer_form.slug, {**MANY, "organization": "Acme"})
    assert b"Thank you" in response.content
    sql = [query["sql"] for query in queries.captured_queries]
    assert sum("pg_advisory_xact_lock" in text for text in sql) == 1
    assert sum("FROM handoff_ruleset WHERE status" in text for text in sql) == 1
    # The key is made with the person and never read back.
    assert not [text for text in sql if text.startswith("SELECT") and "contactkey" in text]
    # At most one savepoint: the person's, whose creation may meet a concurrent one (a
    # new person's post in a few statements, buyers.bulk, needs none: a clash undoes it).
    assert sum(text.startswith("SAVEPOINT") for text in sql) <= 1
    many = Contact.objects.get(email="many@buyers.example")
    assert Qualification.objects.filter(contact=many).exists()
    assert LedgerEntry.objects.filter(contact_id=many.pk).count() == 9
    assert ledger_verify().ok
