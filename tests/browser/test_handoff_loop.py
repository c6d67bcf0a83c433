"""The handoff loop in a real browser: marketing hands off, sales accepts, makes a deal and wins
it; a rejected handoff comes back to marketing with its reason."""

import os

from playwright.sync_api import expect

from contacts.models import Contact
from contacts.services import consent_record
from handoff import services
from handoff.models import Deal, Handoff, HandoffStatus
from leadrecord.ledger import Actor
from leadrecord.roles import Role

from ..factories import TEST_PASSWORD, UserFactory, contact_make

SYSTEM = Actor.system("test")
# Set to a folder to keep a screenshot of each page the test walks through.
SCREENSHOTS = os.environ.get("LEADRECORD_TEST_SCREENSHOTS", "")


def _log_in(page, username: str, password: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def _log_out(page) -> None:
    page.get_by_role("button", name="Log out").click()


def _shot(page, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"), full_page=True)


def _consenting(email: str, first_name: str) -> Contact:
    contact = contact_make(email=email, first_name=first_name, organization="acme.example")
    consent_record(
        contact=contact,
        purpose="sales_contact",
        granted=True,
        source="demo request form",
        actor=SYSTEM,
    )
    return contact


def _hand_off(page, contact: Contact, note: str) -> None:
    page.goto(f"/contacts/{contact.pk}/")
    page.get_by_role("button", name="Hand off to sales").click()
    page.get_by_label("Note for sales", exact=True).fill(note)
    # Nobody here has touches to qualify on: the form asks to confirm.
    page.get_by_label("Hand them off although they are not qualified").check()
    _shot(page, "handoff-form")
    page.get_by_role("button", name="Hand off", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("was handed off to sales")
    expect(page.locator("#handoffs")).to_contain_text("Waiting for sales")


def test_marketing_hands_off_sales_accepts_and_wins_and_a_rejection_comes_back(page):
    UserFactory(username="maria", role=Role.MARKETER)
    UserFactory(username="sam", role=Role.SALES_REP)
    ruleset = services.ruleset_create(
        name="Spring rules",
        points={"channel:webinar": 10},
        mql_threshold=50,
        sla_hours=48,
        actor=SYSTEM,
    )
    services.ruleset_activate(ruleset=ruleset, actor=SYSTEM)
    ada = _consenting("ada@acme.example", "Ada")
    bob = _consenting("bob@acme.example", "Bob")

    # Marketing hands both people to sales from their contact pages.
    _log_in(page, "maria", TEST_PASSWORD)
    _hand_off(page, ada, "Asked for a demo of the platform")
    _hand_off(page, bob, "Downloaded the pricing guide")
    _log_out(page)

    # A rep takes Ada from the queue.
    _log_in(page, "sam", TEST_PASSWORD)
    page.locator("header nav").get_by_role("link", name="Handoffs", exact=True).click()
    expect(page.get_by_role("heading", name="Handoff queue", level=1)).to_be_visible()
    queue = page.get_by_role("table").first
    expect(queue.get_by_role("row", name="Ada Example")).to_contain_text(
        "Asked for a demo of the platform"
    )
    expect(queue.get_by_role("row", name="Ada Example")).to_contain_text("on time")
    expect(queue.get_by_role("row", name="Ada Example")).to_contain_text("maria")
    _shot(page, "queue")
    page.get_by_role("button", name="Accept Ada Example").click()
    expect(page.get_by_role("status")).to_contain_text("You accepted Ada Example")
    assert Handoff.objects.get(contact=ada).status == HandoffStatus.ACCEPTED

    # ...makes a deal from the accepted handoff: the buying group starts with her.
    page.get_by_role("link", name="Create a deal for Ada Example").click()
    expect(page.get_by_role("heading", name="New deal")).to_be_visible()
    expect(page.get_by_label("Member 1 email")).to_have_value("ada@acme.example")
    expect(page.get_by_label("Organization", exact=True)).to_have_value("acme.example")
    page.get_by_label("Deal name", exact=True).fill("Acme platform rollout")
    page.get_by_label("Amount", exact=True).fill("25000")
    _shot(page, "deal-form")
    page.get_by_role("button", name="Create deal").click()
    expect(page.get_by_role("heading", name="Acme platform rollout", level=1)).to_be_visible()
    expect(page.locator("#deal-source")).to_have_text("Marketing-sourced")

    # ...and records the win.
    page.get_by_label("What happened", exact=True).select_option("won")
    page.get_by_label("Amount", exact=True).fill("25000")
    page.get_by_role("button", name="Record sale event").click()
    expect(page.get_by_role("status")).to_have_text("Recorded: Won.")
    expect(page.locator("#deal-state")).to_have_text("Won")
    expect(page.locator("#sale-events").get_by_role("row", name="Won")).to_contain_text("25000")
    _shot(page, "deal")
    deal = Deal.objects.get()
    assert (deal.state, deal.source) == ("won", "marketing")

    # Bob is rejected with a reason.
    page.locator("header nav").get_by_role("link", name="Handoffs", exact=True).click()
    page.get_by_role("button", name="Reject Bob Example").click()
    page.get_by_label("Reason", exact=True).select_option("no_budget")
    page.get_by_label("Note", exact=True).fill("Budget opens next fiscal year")
    page.get_by_role("button", name="Reject", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("went back to marketing")
    expect(page.get_by_text("Nobody is waiting for sales right now.")).to_be_visible()
    _log_out(page)

    # Marketing sees Bob back, with the reason.
    _log_in(page, "maria", TEST_PASSWORD)
    page.locator("header nav").get_by_role("link", name="Handoffs", exact=True).click()
    expect(page.get_by_role("heading", name="Returned to marketing", level=1)).to_be_visible()
    returned = page.get_by_role("row", name="Bob Example")
    expect(returned).to_contain_text("Rejected")
    expect(returned).to_contain_text("No budget")
    expect(returned).to_contain_text("Budget opens next fiscal year")
    expect(returned).to_contain_text("sam")
    expect(page.get_by_role("row", name="Ada Example")).to_have_count(0)
    _shot(page, "returned")
    assert Handoff.objects.get(contact=bob).reason == "no_budget"
