"""Each dashboard in a real browser, as its role: open it from the navigation, change the date
range, and download a table as CSV."""

import csv
import io
import os
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from contacts.models import Channel
from contacts.services import campaign_create, touch_record
from handoff import services
from leadrecord.ledger import Actor
from leadrecord.roles import Role
from reports.runs import run_execute, run_request

from ..factories import TEST_PASSWORD, UserFactory, contact_make

SYSTEM = Actor.system("test")
DAY = timedelta(days=1)
SCREENSHOTS = os.environ.get("LEADRECORD_TEST_SCREENSHOTS", "")


def _log_in(page, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Log in").click()


def _record(rep) -> None:
    """A campaign touch and a sales call before a won deal the rep owns, and an attribution run."""
    now = timezone.now()
    ada = contact_make(email="ada@acme.example", first_name="Ada", organization="acme.example")
    campaign = campaign_create(
        name="Spring webinar",
        channel=Channel.objects.get(key="webinar"),
        cost=Decimal("400.00"),
        actor=SYSTEM,
    )
    touch_record(
        contact=ada,
        channel=campaign.channel,
        campaign=campaign,
        occurred_at=now - 20 * DAY,
        actor=SYSTEM,
    )
    touch_record(
        contact=ada,
        channel=Channel.objects.get(key="sales_call"),
        occurred_at=now - 12 * DAY,
        actor=SYSTEM,
    )
    assert ada.organization is not None
    deal, _ = services.deal_create(
        name="Acme platform",
        organization=ada.organization,
        members=[services.Member(ada, "champion")],
        amount=Decimal("1200.00"),
        owner=rep,
        actor=SYSTEM,
        occurred_at=now - 10 * DAY,
    )
    services.sale_event_record(
        deal=deal, kind="won", amount=Decimal("1200.00"), actor=SYSTEM, occurred_at=now - 5 * DAY
    )
    run, _ = run_request(trigger="command")
    run_execute(run_id=run.pk)


@pytest.mark.parametrize(
    ("role", "heading", "table"),
    [
        (Role.MANAGER, "Management dashboard", "campaigns"),
        (Role.MARKETER, "Marketing dashboard", "campaigns"),
        (Role.SALES_REP, "Sales dashboard", "deals"),
    ],
)
def test_a_dashboard_changes_its_range_and_downloads_a_table(page, role, heading, table, tmp_path):
    rep = UserFactory(username="sam", role=Role.SALES_REP)
    username = "sam" if role == Role.SALES_REP else f"the-{role}"
    UserFactory(username=username, role=role)
    _record(rep)
    _log_in(page, username)
    page.get_by_role("link", name="Reports", exact=True).click()
    expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
    # Every chart is an image with its numbers said in words.
    charts = page.locator("svg[role=img]")
    assert charts.count() >= 1
    assert "1,200.00" in (
        page.locator("svg[role=img]").first.get_attribute("aria-label") or ""
    ) or (role == Role.MARKETER)

    # A range that leaves the sale out: from 30 days ago to 8 days ago.
    today = timezone.localdate()
    start, end = today - 30 * DAY, today - 8 * DAY
    page.get_by_label("From", exact=True).fill(start.isoformat())
    page.get_by_label("To", exact=True).fill(end.isoformat())
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    expect(page.locator("hgroup p")).to_contain_text(f"Showing {start} to {end}")
    assert f"from={start}" in page.url

    # Back to this year, by the quick pick, and download the table.
    page.get_by_role("link", name="Year to date").click()
    expect(page.locator("hgroup p")).to_contain_text(f"Showing {today.year}-01-01 to {today}")
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, f"dashboard-{role}.png"), full_page=True)
    section = page.locator(f"#table-{table}")
    with page.expect_download() as download_info:
        section.get_by_text("Download CSV").click()
    download = download_info.value
    assert (
        download.suggested_filename.startswith("leadrecord-")
        and table in download.suggested_filename
    )
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    shown = section.locator("tbody tr").count()
    assert len(rows) == 1 + shown
    if table == "campaigns":
        assert rows[0] == ["Campaign", "Channel", "Cost", "Attributed revenue", "ROI"]
        assert rows[1][:3] == ["Spring webinar", "webinar", "400.00"]
    else:
        assert rows[0][:3] == ["Deal", "Organization", "Amount"]
        assert rows[1][:3] == ["Acme platform", "Acme", "1200.00"]
