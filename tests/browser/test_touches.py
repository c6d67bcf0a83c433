from playwright.sync_api import expect

from contacts import services
from contacts.models import Channel, Contact, ImportJob, Touch
from leadrecord.ledger import Actor
from leadrecord.roles import Role

from ..factories import TEST_PASSWORD, UserFactory

CSV = (
    "email,channel,campaign,kind,occurred_at,external_id\n"
    "grace@navy.test,webinar,Spring Launch,webinar_attended,2026-01-15T09:30:00+01:00,\n"
    "alan@bletchley.test,email,,email_click,2026-01-16T10:00:00+00:00,\n"
    "not-an-email,web,,visit,2026-01-16T10:00:00+00:00,\n"
)


def _log_in(page, username: str, password: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_a_marketer_logs_a_touch_and_imports_a_csv_file(page):
    UserFactory(username="maria", role=Role.MARKETER)
    system = Actor.system("test")
    services.contact_create(
        email="grace@navy.test", first_name="Grace", last_name="Hopper", actor=system
    )
    webinar = Channel.objects.get(key="webinar")
    services.campaign_create(name="Spring Launch", channel=webinar, actor=system)
    _log_in(page, "maria", TEST_PASSWORD)

    # The form: find the person, pick them, and log a webinar attendance.
    page.locator("header nav").get_by_role("link", name="Touches", exact=True).click()
    expect(page.get_by_role("heading", name="Log a touch", level=1)).to_be_visible()
    page.get_by_label("Find a contact").fill("hopper")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Use Grace Hopper").click()
    expect(page.get_by_label("Contact email")).to_have_value("grace@navy.test")
    page.get_by_label("Channel", exact=True).select_option("webinar")
    page.get_by_label("Campaign", exact=True).select_option(label="Spring Launch")
    page.get_by_label("Kind", exact=True).select_option("webinar_attended")
    page.get_by_label("When", exact=True).fill("2026-01-15T09:30")
    page.get_by_role("button", name="Log touch").click()

    expect(page.get_by_role("status")).to_have_text("Touch recorded for Grace Hopper.")
    latest = page.locator("section", has=page.get_by_role("heading", name="Latest touches"))
    row = latest.get_by_role("row", name="Grace Hopper")
    expect(row).to_contain_text("2026-01-15 09:30")
    expect(row).to_contain_text("Spring Launch")
    expect(row).to_contain_text("Webinar attended")
    expect(row).to_contain_text("maria")
    assert Touch.objects.count() == 1

    # The CSV file: upload, preview with its faulty row, import the valid rows.
    page.get_by_role("link", name="Import a CSV file").click()
    page.get_by_label("CSV file", exact=True).set_input_files(
        files=[{"name": "january.csv", "mimeType": "text/csv", "buffer": CSV.encode()}]
    )
    page.get_by_role("button", name="Upload and preview").click()

    expect(page.get_by_role("heading", name="Preview of january.csv")).to_be_visible()
    expect(page.locator("#summary")).to_contain_text("3 rows: 2 ready to import, 1 with errors.")
    preview = page.locator("#preview-rows")
    expect(preview.get_by_role("row", name="alan@bletchley.test")).to_contain_text("OK")
    expect(preview.get_by_role("row", name="not-an-email")).to_contain_text(
        "email: Enter a valid email address."
    )
    page.get_by_label("Import the valid rows").check()
    page.get_by_role("button", name="Import", exact=True).click()

    expect(page.get_by_role("heading", name="Import of january.csv")).to_be_visible()
    expect(page.locator("#job-status")).to_have_text("Done")
    expect(page.locator("#job-created")).to_have_text("2")
    expect(page.locator("#job-rejected")).to_have_text("1")
    expect(page.locator("#job-progress")).to_have_attribute("value", "3")
    imported = page.locator("#row-report tr").filter(
        has=page.get_by_role("cell", name="Imported", exact=True)
    )
    expect(imported).to_contain_text("2\u20133")
    expect(page.locator("#row-errors").get_by_role("row", name="email")).to_contain_text("4")

    job = ImportJob.objects.get()
    assert (job.status, job.created, job.rejected) == ("done", 2, 1)
    assert Touch.objects.count() == 3
    assert Contact.objects.filter(email_key="alan@bletchley.test").exists()
