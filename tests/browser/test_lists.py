"""In Chromium: a manager sorts and filters the contact list, downloads its CSV, opens an
organization from the home page's menu, and moves a person; a marketer maps an export's
columns on the import page."""

import csv
import io
import re
from pathlib import Path

from playwright.sync_api import expect

from contacts.models import Contact
from contacts.services import OrganizationInput, contact_create
from leadrecord.ledger import Actor
from leadrecord.models import LedgerEntry
from leadrecord.roles import Role

from ..factories import TEST_PASSWORD, UserFactory

SYSTEM = Actor.system("test")


def _log_in(page, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Log in").click()


def _people() -> None:
    contact_create(
        email="ada@granite-biotech.example",
        first_name="Ada",
        last_name="Lovelace",
        organization=OrganizationInput(name="Granite Biotech", domain="granite-biotech.example"),
        actor=SYSTEM,
    )
    # Joins Granite Biotech by the domain of her email.
    contact_create(
        email="zoe@granite-biotech.example", first_name="Zoe", last_name="Adams", actor=SYSTEM
    )
    contact_create(email="bob@gmail.com", first_name="Bob", last_name="Byron", actor=SYSTEM)


def test_a_manager_sorts_filters_downloads_and_moves_a_person(page):
    UserFactory(username="morgan", role=Role.MANAGER)
    _people()
    _log_in(page, "morgan")

    page.locator("header nav").get_by_role("link", name="Contacts", exact=True).click()
    table = page.get_by_role("table", name="Contacts")
    expect(page.get_by_text("Rows 1 to 3 of 3.")).to_be_visible()
    table.get_by_role("link", name="Email").click()
    expect(table.locator("tbody tr").first).to_contain_text("ada@granite-biotech.example")
    table.get_by_role("link", name="Email ↑").click()
    expect(table.locator("tbody tr").first).to_contain_text("zoe@granite-biotech.example")

    page.get_by_label("Search", exact=True).fill("granite")
    page.get_by_role("button", name="Filter").click()
    # A loaded machine may take a while to answer the filtered page.
    page.wait_for_url(re.compile(r"search=granite"))
    expect(page.get_by_text("Rows 1 to 2 of 2.")).to_be_visible(timeout=15_000)
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download CSV").click()
    text = Path(download_info.value.path()).read_text()
    rows = list(csv.reader(io.StringIO(text)))
    assert sorted(row[1] for row in rows[1:]) == [
        "ada@granite-biotech.example",
        "zoe@granite-biotech.example",
    ]

    page.locator("header nav").get_by_role("link", name="Organizations", exact=True).click()
    page.get_by_role("link", name="Granite Biotech").click()
    expect(page.get_by_role("heading", name="Granite Biotech", level=1)).to_be_visible()
    people = page.get_by_role("table", name="People at Granite Biotech", exact=True)
    expect(people).to_contain_text("Zoe Adams")
    people.get_by_role("row", name="Zoe Adams").get_by_role("link", name="Move").click()
    page.get_by_label("Move to").select_option(label="No organization")
    page.get_by_label("Reason").fill("Left the company")
    page.get_by_role("button", name="Move").click()
    expect(page.get_by_role("status")).to_contain_text("moved to no organization")
    assert Contact.objects.get(email_key="zoe@granite-biotech.example").organization is None
    assert LedgerEntry.objects.filter(action="contact.organization_move").count() == 1


def test_a_marketer_maps_an_exports_columns_and_sees_the_preview(page, tmp_path):
    UserFactory(username="maria", role=Role.MARKETER)
    _log_in(page, "maria")
    export = tmp_path / "export.csv"
    export.write_text(
        "Who,Where,What,When\nada@example.com,Webinar,Webinar attended,2026-05-01 09:30\n"
    )
    page.goto("/touches/import/")
    page.get_by_label("CSV file", exact=True).set_input_files(str(export))
    page.get_by_label("Column for email").fill("Who")
    page.get_by_label("Column for channel").fill("Where")
    page.get_by_label("Column for kind").fill("What")
    page.get_by_label("Column for occurred_at").fill("When")
    page.get_by_label("Time zone of times without an offset").select_option("Europe/Berlin")
    page.get_by_role("button", name="Upload and preview").click()
    expect(page.get_by_text("1 ready to import")).to_be_visible()
    page.goto("/touches/import/")
    expect(page.get_by_label("Column for email")).to_have_value("who")
