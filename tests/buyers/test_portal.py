"""The person's portal: a sign-in link by real SMTP, then their own record to see and change."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from email.message import Message

import pytest
import time_machine
from django.test import Client, override_settings
from django.utils import timezone

from buyers import portal
from buyers.models import ErasureRequest, PortalLink, Visitor
from contacts.models import Consent, Contact, Disclosure
from contacts.services import consent_record, disclosure_record
from handoff import services as handoff_services
from handoff.models import Handoff
from leadrecord.models import LedgerEntry
from leadrecord.roles import Role

from ..factories import contact_make
from .conftest import SYSTEM, Inbox, smtp_server

pytestmark = pytest.mark.django_db(transaction=True)

LINK = re.compile(r"http://testserver/me/enter/[^/\s\"<]+/")


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    """A real SMTP server, and the settings EMAIL_URL gives for it."""
    with smtp_server() as (handler, config), override_settings(**config):
        yield handler


@pytest.fixture
def dana() -> Contact:
    contact = contact_make(email="Dana.Buyer@acme.example", first_name="Dana")
    for audience, value in (("sales", "DANA-SALES-ONLY"), ("marketing", "DANA-MARKETING")):
        disclosure_record(
            contact=contact,
            key="budget" if audience == "sales" else "timeline",
            value=value,
            audience=audience,
            purpose="qualification",
            source="form",
            actor=SYSTEM,
        )
    return contact


def _text(message: Message) -> tuple[str, str]:
    parts = {part.get_content_type(): part for part in message.walk()}
    plain = parts["text/plain"].get_payload(decode=True)
    html = parts["text/html"].get_payload(decode=True)
    assert isinstance(plain, bytes) and isinstance(html, bytes)
    return plain.decode(), html.decode()


def _link(client: Client, inbox: Inbox, address: str) -> str:
    before = len(inbox.messages)
    assert client.post("/me/", {"email": address}).status_code == 200
    assert len(inbox.messages) == before + 1
    plain, _ = _text(inbox.messages[-1])
    match = LINK.search(plain)
    assert match, plain
    return match.group(0)


def _signed_in(inbox: Inbox, address: str = "dana.buyer@acme.example") -> Client:
    client = Client()
    link = _link(client, inbox, address)
    response = client.post(link)
    assert response.status_code == 302 and response["Location"] == "/me/"
    return client


# --- entry ----------------------------------------------------------------------------


def test_a_known_email_gets_a_link_by_smtp_and_an_unknown_one_the_same_answer(inbox, dana):
    known = Client().post("/me/", {"email": " DANA.buyer@acme.example "})
    unknown = Client().post("/me/", {"email": "nobody@acme.example"})

    assert known.status_code == unknown.status_code == 200
    assert known.content == unknown.content
    assert len(inbox.messages) == 1
    message = inbox.messages[0]
    assert message["To"] == "Dana.Buyer@acme.example"
    plain, html = _text(message)
    assert LINK.search(plain) and LINK.search(html)
    assert "<img" not in html, "no tracking pixel"
    assert "30 minutes" in plain


def test_the_link_opens_a_button_and_only_the_button_signs_in_once(inbox, dana):
    client = Client()
    link = _link(client, inbox, "dana.buyer@acme.example")

    for _ in range(3):  # a mail scanner following the link uses nothing up
        page = client.get(link)
        assert page.status_code == 200 and b"Sign in" in page.content
    assert not PortalLink.objects.filter(used_at__isnull=False).exists()
    assert client.get("/me/").content.count(b"DANA-SALES-ONLY") == 0

    assert client.post(link).status_code == 302
    page = client.get("/me/")
    assert b"DANA-SALES-ONLY" in page.content and b"Sales only" in page.content
    entry = LedgerEntry.objects.get(action="portal.enter")
    assert (entry.actor_kind, entry.contact_id) == ("person", dana.pk)

    again = Client().post(link)
    assert again.status_code == 409
    assert b"cannot be used any more" in again.content
    assert Client().get(link).status_code == 409


def test_an_expired_or_forged_link_is_refused(inbox, dana):
    link = _link(Client(), inbox, "dana.buyer@acme.example")
    with time_machine.travel(timezone.now() + timedelta(minutes=31), tick=False):
        assert Client().post(link).status_code == 409
    forged = link.replace("/enter/", "/enter/x")
    assert Client().post(forged).status_code == 409
    assert Client().post("/me/enter/not-a-token/").status_code == 409
    assert not LedgerEntry.objects.filter(action="portal.enter").exists()


@override_settings(PORTAL_LINK_RATE_LIMIT="2/hour")
def test_asking_for_links_is_rate_limited_per_address_known_or_not(inbox, dana):
    client = Client()
    for address in ("dana.buyer@acme.example", "nobody@acme.example"):
        assert client.post("/me/", {"email": address}).status_code == 200
    refused = client.post("/me/", {"email": "dana.buyer@acme.example"})
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert len(inbox.messages) == 1


@pytest.mark.parametrize("value", ["", "not-an-email", "a" * 250 + "@x.example"])
def test_a_wrong_email_names_the_field(inbox, value):
    response = Client().post("/me/", {"email": value})
    assert response.status_code == 400
    assert b'id="id_email_error"' in response.content
    assert not inbox.messages


def test_a_staff_session_is_not_a_portal_session(inbox, dana, users):
    staff = Client()
    staff.force_login(users[Role.MANAGER])
    page = staff.get("/me/")
    assert b"Send me a link" in page.content and b"DANA" not in page.content


def test_portal_changes_need_the_csrf_token(inbox, dana):
    client = _signed_in(inbox)
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = client.cookies
    disclosure = Disclosure.objects.get(value="DANA-SALES-ONLY")
    response = strict.post(f"/me/disclosures/{disclosure.pk}/withdraw/")
    assert response.status_code == 403
    disclosure.refresh_from_db()
    assert disclosure.withdrawn_at is None


# --- what the person changes ----------------------------------------------------------


def test_withdrawing_a_sales_disclosure_hides_it_from_sales(inbox, dana, users, api_client_for):
    client = _signed_in(inbox)
    sales = api_client_for(users[Role.SALES_REP])
    assert b"DANA-SALES-ONLY" in sales.get(f"/api/v1/contacts/{dana.pk}/").content
    disclosure = Disclosure.objects.get(value="DANA-SALES-ONLY")

    response = client.post(f"/me/disclosures/{disclosure.pk}/withdraw/")

    assert response.status_code == 302
    assert b"DANA-SALES-ONLY" not in sales.get(f"/api/v1/contacts/{dana.pk}/").content
    entry = LedgerEntry.objects.filter(action="disclosure.withdraw").get()
    assert entry.actor_kind == "person" and entry.actor_label == f"contact #{dana.pk} via portal"


def test_widening_an_audience_lets_marketing_see_it(inbox, dana, users, api_client_for):
    client = _signed_in(inbox)
    marketer = api_client_for(users[Role.MARKETER])
    disclosure = Disclosure.objects.get(value="DANA-SALES-ONLY")
    assert b"DANA-SALES-ONLY" not in marketer.get(f"/api/v1/contacts/{dana.pk}/").content

    client.post(f"/me/disclosures/{disclosure.pk}/audience/", {"audience": "all"})

    assert b"DANA-SALES-ONLY" in marketer.get(f"/api/v1/contacts/{dana.pk}/").content
    current = Disclosure.objects.get(value="DANA-SALES-ONLY", withdrawn_at__isnull=True)
    assert (current.audience, current.source) == ("all", "self")
    bad = client.post(f"/me/disclosures/{current.pk}/audience/", {"audience": "everyone"})
    assert bad.status_code == 400


def test_another_persons_disclosure_cannot_be_touched(inbox, dana):
    other = contact_make(email="other@acme.example")
    theirs = disclosure_record(
        contact=other,
        key="budget",
        value="OTHER-SECRET",
        audience="all",
        purpose="qualification",
        source="form",
        actor=SYSTEM,
    )
    client = _signed_in(inbox)
    for path in ("withdraw", "audience"):
        response = client.post(f"/me/disclosures/{theirs.pk}/{path}/", {"audience": "sales"})
        assert response.status_code == 404
        assert b"OTHER-SECRET" not in response.content
    theirs.refresh_from_db()
    assert theirs.withdrawn_at is None and theirs.audience == "all"
    assert b"OTHER-SECRET" not in client.get("/me/").content


def test_without_signing_in_nothing_can_be_changed(dana):
    disclosure = Disclosure.objects.get(value="DANA-SALES-ONLY")
    for path in (
        f"/me/disclosures/{disclosure.pk}/withdraw/",
        "/me/consents/",
        "/me/stage/",
        "/me/erase/",
        "/me/export/",
    ):
        response = Client().post(path, {"purpose": "analytics", "granted": "1"})
        assert response.status_code == 302 and response["Location"] == "/me/", path
    assert not Consent.objects.exists()
    assert not ErasureRequest.objects.exists()


def test_withdrawing_analytics_drops_the_visitor_id(inbox, dana, buyer_form):
    from .conftest import send

    browser = Client()
    send(browser, buyer_form.slug, {"email": "dana.buyer@acme.example", "consent_analytics": "on"})
    assert Visitor.objects.filter(contact=dana).exists()
    client = _signed_in(inbox)

    client.post("/me/consents/", {"purpose": "analytics", "granted": "0"})

    assert not Visitor.objects.exists()
    latest = Consent.objects.filter(contact=dana, purpose="analytics").last()
    assert latest is not None and (latest.granted, latest.source) == (False, "portal")
    bad = client.post("/me/consents/", {"purpose": "telepathy", "granted": "1"})
    assert bad.status_code == 400


def test_ready_to_talk_told_to_sales_opens_a_handoff(inbox, dana):
    ruleset = handoff_services.ruleset_create(
        name="r", points={"channel:web": 1}, mql_threshold=50, sla_hours=24, actor=SYSTEM
    )
    handoff_services.ruleset_activate(ruleset=ruleset, actor=SYSTEM)
    client = _signed_in(inbox)

    client.post("/me/stage/", {"stage": "ready_to_talk", "audience": "sales"})

    handoff = Handoff.objects.get(contact=dana)
    assert handoff.say_so_audience == "sales"
    assert b"Pending" in client.get("/me/").content
    assert client.post("/me/stage/", {"stage": "buying", "audience": "sales"}).status_code == 400


def test_export_and_erasure_request(inbox, dana, users):
    consent_record(
        contact=dana, purpose="marketing_email", granted=True, source="form", actor=SYSTEM
    )
    client = _signed_in(inbox)

    export = client.post("/me/export/")
    assert export.status_code == 200
    assert "attachment" in export["Content-Disposition"]
    assert b"DANA-SALES-ONLY" in export.content
    assert LedgerEntry.objects.get(action="contact.export").actor_kind == "person"

    client.post("/me/erase/")
    client.post("/me/erase/")
    assert ErasureRequest.objects.filter(contact=dana).count() == 1
    assert LedgerEntry.objects.filter(action="erasure.request").count() == 1
    officer = Client()
    officer.force_login(users[Role.PRIVACY_OFFICER])
    queue = officer.get("/erasure-requests/")
    assert queue.status_code == 200 and b"Dana" in queue.content
    marketer = Client()
    marketer.force_login(users[Role.MARKETER])
    assert marketer.get("/erasure-requests/").status_code == 403

    from contacts.services import contact_erase

    contact_erase(contact=dana, actor=SYSTEM)
    assert not ErasureRequest.objects.exists()
    assert b"Send me a link" in client.get("/me/").content, "an erased person is signed out"


def test_portal_services_refuse_other_peoples_ids_directly(dana):
    from leadrecord.errors import NotFound

    other = contact_make(email="other2@acme.example")
    with pytest.raises(NotFound):
        portal.portal_disclosure_withdraw(
            contact=other, disclosure_id=Disclosure.objects.get(value="DANA-MARKETING").pk
        )


def test_analytics_granted_in_the_portal_gives_this_browser_a_visitor_id_at_once(inbox, dana):
    client = _signed_in(inbox)
    assert "lr_vid" not in client.cookies

    client.post("/me/consents/", {"purpose": "analytics", "granted": "1"})

    assert client.cookies["lr_vid"].value
    assert Visitor.objects.get().contact == dana
    client.post("/c/", {"u": "https://www.acme.example/"})
    assert Visitor.objects.get().visits.count() == 1
    client.post("/me/consents/", {"purpose": "analytics", "granted": "0"})
    assert not Visitor.objects.exists()
    assert not client.cookies["lr_vid"].value


def test_each_change_has_a_receipt_for_the_person_alone(inbox, dana):
    import json

    client = _signed_in(inbox)
    disclosure = Disclosure.objects.get(value="DANA-SALES-ONLY")
    client.post(f"/me/disclosures/{disclosure.pk}/withdraw/")
    entry = LedgerEntry.objects.get(action="disclosure.withdraw")
    page = client.get("/me/").content.decode()
    assert f"/me/receipts/{entry.seq}/" in page and "Disclosure withdrawn" in page

    receipt = client.get(f"/me/receipts/{entry.seq}/")

    assert receipt.status_code == 200
    assert "attachment" in receipt["Content-Disposition"]
    body = json.loads(receipt.content)
    assert body["what"] == "Disclosure withdrawn"
    assert (body["entry"]["seq"], body["entry"]["hash"]) == (entry.seq, entry.hash)
    assert body["entry"]["after"]["key"] == "budget"
    assert body["checkpoint"] is None  # none signed in this test
    # Not a receipt: a change someone else made, or another person's entry.
    staff_entry = LedgerEntry.objects.filter(contact_id=dana.pk, actor_kind="system").first()
    assert staff_entry is not None
    assert client.get(f"/me/receipts/{staff_entry.seq}/").status_code == 404
    other = contact_make(email="other3@acme.example")
    portal.portal_erasure_request(contact=other)
    theirs = LedgerEntry.objects.get(action="erasure.request")
    assert client.get(f"/me/receipts/{theirs.seq}/").status_code == 404
    assert Client().get(f"/me/receipts/{entry.seq}/").status_code == 302
