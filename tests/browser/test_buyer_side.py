"""The buyer's side in real Chromium: forms (hosted with JavaScript off, and embedded) and
the portal, entered by a link that a real SMTP server received."""

from __future__ import annotations

import http.server
import threading
from typing import Any

import pytest
from playwright.sync_api import expect

from buyers import services as buyer_services
from buyers.models import FormSubmission
from contacts.models import Channel, Contact, Touch
from contacts.services import campaign_create
from leadrecord.ledger import Actor
from leadrecord.roles import Role

from ..buyers.conftest import CONSENTS, DISCLOSURES, smtp_server
from ..factories import TEST_PASSWORD

SYSTEM = Actor.system("browser test")
UTMS = "utm_source=google&utm_medium=cpc&utm_campaign=spring-2026&gclid=CLICK-9"


@pytest.fixture
def form_world(db: None, settings: Any) -> Any:
    # A person in a browser takes longer than a script; the timing check has its own tests.
    settings.BUYER_FORM_MIN_SECONDS = 0
    campaign = campaign_create(
        name="Spring search",
        channel=Channel.objects.get(key="paid_search"),
        utm_campaign="spring-2026",
        actor=SYSTEM,
    )
    form = buyer_services.buyer_form_create(
        slug="demo-request",
        title="Ask for a demo",
        consents=CONSENTS,
        disclosures=DISCLOSURES,
        actor=SYSTEM,
    )
    return form, campaign


def _fill(scope: Any, email: str) -> None:
    scope.get_by_label("Work email").fill(email)
    scope.get_by_label("First name").fill("Dana")
    scope.get_by_label("Budget", exact=True).fill("DANA-BUDGET-SALES")
    scope.get_by_role("group", name="Share “Budget” with").get_by_label("Sales only").check()
    scope.get_by_label("Timeline", exact=True).fill("DANA-TIMELINE-MKT")
    scope.get_by_label("Send me product news.").check()
    scope.get_by_role("button", name="Send").click()


def _on_record(email: str, campaign: Any) -> Contact:
    dana = Contact.objects.get(email_key=email)
    shared = {d.key: (d.value, d.audience, d.source) for d in dana.disclosures.all()}
    assert shared == {
        "budget": ("DANA-BUDGET-SALES", "sales", "form"),
        "timeline": ("DANA-TIMELINE-MKT", "marketing", "form"),
    }
    assert dana.consents.get().notice_version == "2026-03"
    touch = Touch.objects.get(contact=dana)
    assert (touch.kind, touch.campaign) == ("form", campaign)
    return dana


def test_a_hosted_form_with_javascript_off_and_utms_lands_on_the_record(
    browser, live_server, form_world, users
):
    form, campaign = form_world
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    page.goto(f"/f/{form.slug}/?{UTMS}")
    expect(page.get_by_role("heading", name="Ask for a demo")).to_be_visible()

    _fill(page, "dana@acme.example")

    expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
    dana = _on_record("dana@acme.example", campaign)
    submission = FormSubmission.objects.get(contact=dana)
    assert submission.utm["utm_campaign"] == "spring-2026"
    assert submission.click_ids == {"gclid": "CLICK-9"}
    # The marketer sees what was shared with marketing, not what went to sales alone.
    staff = browser.new_context(base_url=live_server.url)
    staff_page = staff.new_page()
    staff_page.goto("/login/")
    staff_page.get_by_label("Username").fill(users[Role.MARKETER].username)
    staff_page.get_by_label("Password").fill(TEST_PASSWORD)
    staff_page.get_by_role("button", name="Log in").click()
    staff_page.goto(f"/contacts/{dana.pk}/")
    expect(staff_page.get_by_text("DANA-TIMELINE-MKT").first).to_be_visible()
    expect(staff_page.get_by_text("DANA-BUDGET-SALES")).to_have_count(0)
    context.close()
    staff.close()


def test_an_embedded_form_in_another_sites_page_lands_on_the_record(
    browser, live_server, form_world
):
    form, campaign = form_world
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    # Another site's page with the iframe snippet, from a server of its own on
    # 127.0.0.1 (another site than localhost; a loopback address, as Chromium's
    # local network access checks want for a frame of a loopback server).
    host_page = (
        f'<h1>Acme</h1><iframe title="Ask for a demo" style="width:100%;height:60rem" '
        f'src="{live_server.url}/f/{form.slug}/embed/?{UTMS}"></iframe>'
    ).encode()

    class Site(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(host_page)

        def log_message(self, *args: Any) -> None:
            pass

    site = http.server.HTTPServer(("127.0.0.1", 0), Site)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    page.goto(f"http://127.0.0.1:{site.server_port}/demo")
    frame = page.frame_locator("iframe")

    _fill(frame, "embed@acme.example")

    expect(frame.get_by_role("heading", name="Thank you")).to_be_visible()
    _on_record("embed@acme.example", campaign)
    context.close()
    site.shutdown()
    site.server_close()


def test_the_portal_by_a_mailed_link_withdraws_a_sales_disclosure(
    browser, live_server, form_world, settings, users, api_client_for
):
    form, _ = form_world
    with smtp_server() as (inbox, config):
        for name, value in config.items():
            setattr(settings, name, value)
        context = browser.new_context(base_url=live_server.url)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(f"/f/{form.slug}/")
        _fill(page, "dana@acme.example")
        dana = Contact.objects.get(email_key="dana@acme.example")
        sales = api_client_for(users[Role.SALES_REP])
        assert b"DANA-BUDGET-SALES" in sales.get(f"/api/v1/contacts/{dana.pk}/").content

        page.goto("/me/")
        page.get_by_label("Your email address").fill("dana@acme.example")
        page.get_by_role("button", name="Send me a link").click()
        expect(page.get_by_role("heading", name="Check your mail")).to_be_visible()
        page.goto(inbox.link())
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Your data")).to_be_visible()
        expect(page.get_by_role("cell", name="Sales only")).to_be_visible()

        page.get_by_role("button", name="Withdraw budget").click()

        expect(page.get_by_text("DANA-BUDGET-SALES")).to_have_count(0)
        assert b"DANA-BUDGET-SALES" not in sales.get(f"/api/v1/contacts/{dana.pk}/").content
        context.close()
