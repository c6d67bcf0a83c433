from playwright.sync_api import expect

from contacts import services
from contacts.models import Consent, Contact, Disclosure
from leadrecord.ledger import Actor
from leadrecord.roles import Role

from ..factories import TEST_PASSWORD, UserFactory


def _log_in(page, username: str, password: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_a_marketer_adds_a_contact_records_a_consent_and_a_disclosure(page):
    UserFactory(username="maria", role=Role.MARKETER)
    _log_in(page, "maria", TEST_PASSWORD)

    page.locator("header nav").get_by_role("link", name="Contacts", exact=True).click()
    expect(page.get_by_role("heading", name="Contacts", exact=True)).to_be_visible()
    page.get_by_role("button", name="Add contact").click()

    page.get_by_label("Email", exact=True).fill("grace@navy.test")
    page.get_by_label("First name", exact=True).fill("Grace")
    page.get_by_label("Last name", exact=True).fill("Hopper")
    page.get_by_label("Title", exact=True).fill("Rear Admiral")
    page.get_by_label("Organization name", exact=True).fill("US Navy")
    page.get_by_label("Organization domain", exact=True).fill("navy.test")
    page.get_by_role("button", name="Add contact").click()

    expect(page.get_by_role("heading", name="Grace Hopper", level=1)).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("Contact added.")
    contact = Contact.objects.get(email_key="grace@navy.test")

    page.get_by_role("link", name="Record a consent").click()
    page.get_by_label("Purpose", exact=True).select_option("marketing_email")
    page.get_by_label("Granted", exact=True).check()
    page.get_by_label("Source", exact=True).fill("newsletter signup form")
    page.get_by_label("Notice version", exact=True).fill("v2")
    page.get_by_role("button", name="Record consent").click()

    expect(page.get_by_role("status")).to_have_text("Consent recorded.")
    consents = page.locator("section", has=page.get_by_role("heading", name="Consents"))
    expect(consents.get_by_role("row", name="Marketing email")).to_contain_text("Granted")

    page.get_by_role("link", name="Record a disclosure").click()
    page.get_by_label("What", exact=True).fill("use_case")
    page.get_by_label("Value", exact=True).fill("Compiling COBOL at scale")
    page.get_by_label("Marketing", exact=True).check()
    page.get_by_label("Purpose", exact=True).select_option("personalization")
    page.get_by_label("Source", exact=True).select_option("conversation")
    page.get_by_role("button", name="Record disclosure").click()

    expect(page.get_by_role("status")).to_have_text("Disclosure recorded.")
    disclosures = page.locator("section", has=page.get_by_role("heading", name="Disclosures"))
    expect(disclosures.get_by_role("row", name="use_case")).to_contain_text("Marketing")
    timeline = page.locator("#timeline")
    expect(timeline.get_by_text("Contact created: Grace Hopper <grace@navy.test>")).to_be_visible()
    expect(
        timeline.get_by_text(
            "Consent to marketing email granted (source: newsletter signup form, notice v2)"
        )
    ).to_be_visible()
    expect(
        timeline.get_by_text("Disclosed use_case to marketing: Compiling COBOL at scale")
    ).to_be_visible()

    assert Consent.objects.get(contact=contact).granted is True
    assert Disclosure.objects.get(contact=contact).audience == "marketing"


def test_a_disclosure_without_a_chosen_audience_is_not_recorded(page):
    UserFactory(username="sam", role=Role.SALES_REP)
    contact, _ = services.contact_create(
        email="ada@example.test", first_name="Ada", actor=Actor.system("test")
    )
    _log_in(page, "sam", TEST_PASSWORD)
    page.goto(f"/contacts/{contact.pk}/disclosures/new/")
    page.get_by_label("What", exact=True).fill("budget")
    page.get_by_label("Value", exact=True).fill("50k")
    page.get_by_label("Purpose", exact=True).select_option("qualification")
    page.get_by_label("Source", exact=True).select_option("form")
    page.get_by_role("button", name="Record disclosure").click()

    # The browser itself refuses: the audience radios are required.
    expect(page.get_by_role("heading", name="Record a disclosure")).to_be_visible()
    assert Disclosure.objects.filter(contact=contact).count() == 0
