"""The dashboards: who may open which, what each shows for a small record, that every table's
CSV file holds the numbers the page shows, and that bad input is a 400 naming the field."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from contacts.models import Campaign, Channel, Contact
from contacts.services import campaign_create, consent_record, touch_record
from handoff import services as handoff_services
from handoff.models import Deal
from leadrecord.ledger import Actor
from leadrecord.roles import Role
from reports import metrics
from reports.aggregates import people_aggregates_update
from reports.dashboard_tables import csv_safe
from reports.forms import DEFAULT_PERIOD, period_range
from reports.runs import run_execute, run_request
from tests.factories import UserFactory

from .conftest import FROZEN, touch

pytestmark = [pytest.mark.django_db, FROZEN]

SYSTEM = Actor.system("test")
DAY = timedelta(days=1)
HOSTILE = "<script>alert(1)</script>"

DASHBOARDS = {
    "/reports/manager/": {Role.MANAGER},
    "/reports/marketing/": {Role.MARKETER, Role.MANAGER},
    "/reports/sales/": {Role.SALES_REP, Role.MANAGER},
}
TABLES = {
    "/reports/manager/": [
        "contribution",
        "influenced",
        "people",
        "funnel",
        "leakage",
        "attribution",
        "reconciliation",
        "models",
        "campaigns",
        "lifetime",
    ],
    "/reports/marketing/": ["campaigns", "attribution", "returned-reasons", "returned", "leakage"],
    "/reports/sales/": ["queue", "deals"],
}


def html(response: Any) -> str:
    return response.content.decode()


def as_user(client: Client, users: dict[str, Any], role: str) -> Client:
    client.force_login(users[role])
    return client


def run_attribution() -> None:
    run, _ = run_request(trigger="command")
    run_execute(run_id=run.pk)


class TableReader(HTMLParser):
    """Each ``<table data-table=KEY>``'s header and its cells' ``data-value``s."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.current: str | None = None
        self.header: list[str] = []
        self.in_th = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        key = values.get("data-table")
        if tag == "table" and key:
            self.current = key
            self.tables[key] = []
            self.header = []
        elif self.current and tag == "tr":
            self.tables[self.current].append([])
        elif self.current and tag in {"td", "th"}:
            if "data-value" in values:
                self.tables[self.current][-1].append(values["data-value"] or "")
            elif tag == "th":
                self.in_th = True

    def handle_data(self, data: str) -> None:
        if self.current and self.in_th:
            self.header.append(data.strip())

    def handle_endtag(self, tag: str) -> None:
        if tag == "th":
            self.in_th = False
        if tag == "table" and self.current:
            rows = [row for row in self.tables[self.current] if row]
            self.tables[self.current] = [self.header, *rows]
            self.current = None


def page_tables(response: Any) -> dict[str, list[list[str]]]:
    reader = TableReader()
    reader.feed(html(response))
    return reader.tables


def csv_rows(response: Any) -> list[list[str]]:
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment;")
    return list(csv.reader(io.StringIO(response.content.decode())))


def campaign_on_winning_path(record: dict[str, Contact], *, name: str, cost: str) -> Campaign:
    """A webinar campaign touching Ada 25 days ago (on the winning path), then a run."""
    campaign = campaign_create(
        name=name, channel=Channel.objects.get(key="webinar"), cost=Decimal(cost), actor=SYSTEM
    )
    touch_record(
        contact=record["ada"],
        channel=campaign.channel,
        campaign=campaign,
        occurred_at=timezone.now() - 25 * DAY,
        actor=SYSTEM,
    )
    run_attribution()
    return campaign


@pytest.fixture
def campaign_record(record: dict[str, Contact]) -> dict[str, Any]:
    """The shared record, plus a campaign with a cost whose touch is on the winning path."""
    campaign = campaign_on_winning_path(record, name="Spring webinar", cost="400.00")
    return {**record, "campaign": campaign}


# --- who may open what ---------------------------------------------------------------------


@pytest.mark.parametrize("url", list(DASHBOARDS))
@pytest.mark.parametrize("role", Role.values)
def test_each_dashboard_opens_for_its_roles_only(url, role, users, client):
    response = as_user(client, users, role).get(url)
    assert response.status_code == (200 if role in DASHBOARDS[url] else 403)


@pytest.mark.parametrize("url", ["/reports/", *DASHBOARDS])
def test_anonymous_people_are_sent_to_log_in(url, client):
    response = client.get(url + "?from=2026-01-01")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/reports/")


@pytest.mark.parametrize(
    ("role", "target"),
    [
        (Role.MANAGER, "/reports/manager/"),
        (Role.MARKETER, "/reports/marketing/"),
        (Role.SALES_REP, "/reports/sales/"),
    ],
)
def test_reports_leads_each_role_to_its_dashboard_with_the_same_query(role, target, users, client):
    response = as_user(client, users, role).get("/reports/?period=last_quarter")
    assert response.status_code == 302
    assert response["Location"] == target + "?period=last_quarter"


@pytest.mark.parametrize("role", [Role.PRIVACY_OFFICER, Role.INTEGRATION])
def test_reports_are_closed_to_the_privacy_officer_and_integrations(role, users, client):
    assert as_user(client, users, role).get("/reports/").status_code == 403
    assert (
        as_user(client, users, role).get("/reports/manager/?format=csv&table=people").status_code
        == 403
    )


def test_the_navigation_offers_reports_to_the_roles_that_read_them(users, client):
    for role in Role.values:
        if role == Role.INTEGRATION:
            continue
        page = html(as_user(client, users, role).get("/"))
        assert ('href="/reports/"' in page) == (
            role in {Role.MANAGER, Role.MARKETER, Role.SALES_REP}
        )


def test_only_get_is_answered(users, client):
    response = as_user(client, users, Role.MANAGER).post("/reports/manager/")
    assert response.status_code == 405


# --- what the pages show ------------------------------------------------------------------------


def test_the_manager_sees_every_report_with_charts_that_need_no_script(
    campaign_record, users, client
):
    response = as_user(client, users, Role.MANAGER).get("/reports/manager/")
    assert response.status_code == 200
    page = html(response)
    for heading in (
        "Contribution",
        "Funnel and leakage",
        "Attribution: Linear, by channel",
        "All eight models side by side",
        "Campaign cost and attributed revenue",
        "Lifetime revenue by source",
    ):
        assert heading in page
    # Short and long term side by side.
    assert "Pipeline created (long term)" in page
    assert "Closed revenue (short term)" in page
    assert "<script" not in page
    # Nothing is loaded from elsewhere (the SVG namespaces are names, not addresses).
    assert re.findall(r"https?://(?!www\.w3\.org/)", page) == []
    charts = re.findall(r"<svg [^>]*>", page)
    assert len(charts) >= 6
    for chart in charts:
        assert 'role="img"' in chart
        assert 'aria-label="' in chart
    assert page.count("<figcaption>") == len(charts)
    assert set(page_tables(response)) == set(TABLES["/reports/manager/"])


def test_the_contribution_table_and_its_chart_say_the_metrics_numbers(
    campaign_record, users, client
):
    dates = period_range(DEFAULT_PERIOD, timezone.localdate())
    numbers = metrics.contribution(dates.start, dates.end)
    response = as_user(client, users, Role.MANAGER).get("/reports/manager/")
    table = page_tables(response)["contribution"]
    assert table[2][:4] == [
        "Closed revenue (short term)",
        str(numbers.revenue.marketing_sourced),
        str(numbers.revenue.sales_sourced),
        str(numbers.revenue.total),
    ]
    assert table[1][3] == str(numbers.pipeline.total)
    # The chart's text alternative carries the same numbers.
    assert f"Marketing-sourced {numbers.pipeline.marketing_sourced:,.2f}" in html(response)


def test_attribution_follows_the_chosen_model_and_grouping(campaign_record, users, client):
    client = as_user(client, users, Role.MANAGER)
    by_campaign = page_tables(client.get("/reports/manager/?model=linear&group_by=campaign"))
    # Four touches on the path, a quarter of the 1,000 each; one touch had the campaign.
    credits = {row[0]: float(row[1]) for row in by_campaign["attribution"][1:]}
    assert credits == {"(none)": pytest.approx(750.0), "Spring webinar": pytest.approx(250.0)}
    assert by_campaign["models"][0][0] == "Campaign"
    assert len(by_campaign["models"][0]) == 9  # the grouping and eight models
    by_team = page_tables(client.get("/reports/manager/?model=last_touch&group_by=team"))
    teams = {row[0]: float(row[1]) for row in by_team["attribution"][1:]}
    assert sum(teams.values()) == pytest.approx(1000.0)
    assert set(teams) <= {"marketing", "sales", "partner"}


def test_the_marketer_sees_campaign_returns_returned_handoffs_and_leakage(
    campaign_record, users, client
):
    UserFactory(username="rep", role=Role.SALES_REP)
    ruleset = handoff_services.ruleset_create(
        name="Rules", points={}, mql_threshold=50, sla_hours=48, actor=SYSTEM
    )
    handoff_services.ruleset_activate(ruleset=ruleset, actor=SYSTEM)
    cy = campaign_record["cy"]
    consent_record(contact=cy, purpose="sales_contact", granted=True, source="form", actor=SYSTEM)
    handoff = handoff_services.handoff_create(contact=cy, actor=SYSTEM)
    handoff_services.handoff_reject(
        handoff=handoff, user=users[Role.SALES_REP], reason="no_budget", note="later"
    )
    response = as_user(client, users, Role.MARKETER).get("/reports/marketing/")
    assert response.status_code == 200
    page = html(response)
    assert 'href="/handoffs/returned/"' in page
    tables = page_tables(response)
    assert tables["returned-reasons"][1:] == [["No budget", "1"]]
    assert tables["returned"][1][1:3] == ["Rejected", "No budget"]
    campaigns = {row[0]: row for row in tables["campaigns"][1:]}
    assert campaigns["Spring webinar"][2] == "400.00"
    leaks = {row[0]: row[1] for row in tables["leakage"][1:]}
    assert leaks["Rejected, not re-engaged"] == "1"
    assert "/reports/lists/rejected-not-reengaged/?" in page


def test_a_sales_rep_sees_their_queue_and_only_their_own_deals(record, users, client):
    rep = users[Role.SALES_REP]
    other: Any = UserFactory(username="other-rep", role=Role.SALES_REP)
    organization = record["ada"].organization
    for owner, name in ((rep, "Mine"), (other, "Theirs")):
        handoff_services.deal_create(
            name=name,
            organization=organization,
            members=[handoff_services.Member(record["ada"], "champion")],
            amount=Decimal("250.00"),
            owner=owner,
            actor=SYSTEM,
        )
    ruleset = handoff_services.ruleset_create(
        name="Rules", points={}, mql_threshold=50, sla_hours=48, actor=SYSTEM
    )
    handoff_services.ruleset_activate(ruleset=ruleset, actor=SYSTEM)
    consent_record(
        contact=record["cy"], purpose="sales_contact", granted=True, source="form", actor=SYSTEM
    )
    handoff_services.handoff_create(contact=record["cy"], actor=SYSTEM)
    response = as_user(client, users, Role.SALES_REP).get("/reports/sales/")
    assert response.status_code == 200
    tables = page_tables(response)
    assert [row[0] for row in tables["deals"][1:]] == ["Mine"]
    assert tables["deals"][1][2] == "250.00"
    assert [row[0] for row in tables["queue"][1:]] == [record["cy"].display_name]
    assert 'href="/handoffs/"' in html(response)


@override_settings(TIME_ZONE="America/New_York")
def test_the_last_day_is_included_whole_in_the_reporting_time_zone(record, users, client):
    # 23:30 in New York on 2026-03-31 is already April in UTC.
    late = datetime(2026, 4, 1, 3, 30, tzinfo=UTC)
    handoff_services.deal_create(
        name="Late on the last day",
        organization=record["ada"].organization,
        members=[handoff_services.Member(record["ada"], "champion")],
        amount=Decimal("10.00"),
        owner=users[Role.SALES_REP],
        actor=SYSTEM,
        occurred_at=late,
    )
    client = as_user(client, users, Role.SALES_REP)
    march = page_tables(client.get("/reports/sales/?from=2026-03-01&to=2026-03-31"))
    april = page_tables(client.get("/reports/sales/?from=2026-04-01&to=2026-04-30"))
    assert [row[0] for row in march["deals"][1:]] == ["Late on the last day"]
    assert april["deals"][1:] == [["Nothing in these days."]] or len(april["deals"]) == 1


def test_an_empty_record_renders_every_dashboard(users, client):
    for url, roles in DASHBOARDS.items():
        response = as_user(client, users, sorted(roles)[0]).get(url)
        assert response.status_code == 200
        assert "Nothing in these days." in html(response) or url == "/reports/manager/"


def test_hostile_names_are_escaped_in_tables_and_charts(record, users, client):
    campaign_on_winning_path(record, name=HOSTILE, cost="1")
    page = html(as_user(client, users, Role.MANAGER).get("/reports/manager/?group_by=campaign"))
    assert HOSTILE not in page
    assert "&lt;script&gt;" in page


# --- dates and quick periods --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "today", "start", "end"),
    [
        ("this_quarter", date(2026, 5, 17), date(2026, 4, 1), date(2026, 5, 17)),
        ("last_quarter", date(2026, 5, 17), date(2026, 1, 1), date(2026, 3, 31)),
        ("last_quarter", date(2026, 2, 3), date(2025, 10, 1), date(2025, 12, 31)),
        ("year_to_date", date(2026, 11, 23), date(2026, 1, 1), date(2026, 11, 23)),
        ("this_quarter", date(2026, 1, 1), date(2026, 1, 1), date(2026, 1, 1)),
    ],
)
def test_quick_periods_are_whole_days_seen_from_today(period, today, start, end):
    days = period_range(period, today)
    assert (days.start, days.end) == (start, end)


def test_a_quick_period_link_shows_its_dates_in_the_picker(users, client):
    today = timezone.localdate()
    days = period_range("last_quarter", today)
    page = html(as_user(client, users, Role.MANAGER).get("/reports/manager/?period=last_quarter"))
    assert f'name="from" value="{days.start.isoformat()}"' in page
    assert f'name="to" value="{days.end.isoformat()}"' in page
    assert (
        'href="?period=last_quarter&amp;model=linear&amp;group_by=channel" aria-current="true"'
        in page
    )


def test_one_end_of_the_range_is_enough(users, client):
    client = as_user(client, users, Role.SALES_REP)
    page = html(client.get("/reports/sales/?to=2025-06-30"))
    assert 'name="from" value="2025-01-01"' in page
    page = html(client.get("/reports/sales/?from=2025-06-01"))
    assert f'name="to" value="{timezone.localdate().isoformat()}"' in page


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("from=2026-13-01", "from", "Enter a valid date."),
        ("to=yesterday", "to", "Enter a valid date."),
        ("from=" + "9" * 5000, "from", "Enter a valid date."),
        ("from=2026-03-01&to=2026-02-01", "to", "comes before"),
        ("from=2000-01-01&to=2026-01-01", "from", "at most 3660 days"),
        ("period=fortnight", "period", "Select a valid choice."),
        ("period=last_quarter&from=2026-01-01", "period", "not both"),
        ("model=gut_feeling", "model", "Select a valid choice."),
        ("group_by=region", "group_by", "Select a valid choice."),
        ("format=xlsx", "format", "Select a valid choice."),
        ("format=csv", "table", "Name one of the tables on this page"),
        ("format=csv&table=nope", "table", "Name one of the tables on this page"),
        ("format=csv&table=" + "x" * 200, "table", "at most"),
        ("format=csv&table=<script>", "table", "Enter a valid"),
    ],
)
def test_bad_parameters_are_a_400_page_naming_the_field(query, field, message, users, client):
    response = as_user(client, users, Role.MANAGER).get("/reports/manager/?" + query)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    page = html(response)
    assert f"(<code>{field}</code>)" in page
    assert message in page
    assert "<table" not in page  # no report for bad input


def test_a_repeated_parameter_takes_the_last_value(users, client):
    page = html(
        as_user(client, users, Role.SALES_REP).get(
            "/reports/sales/?from=2026-01-01&from=2026-02-01&to=2026-03-01"
        )
    )
    assert 'name="from" value="2026-02-01"' in page


# --- CSV ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", list(TABLES))
def test_every_table_downloads_as_csv_with_the_numbers_on_the_page(
    url, campaign_record, users, client
):
    role = {"/reports/manager/": Role.MANAGER, "/reports/marketing/": Role.MARKETER}.get(
        url, Role.SALES_REP
    )
    client = as_user(client, users, role)
    query = "from=2020-01-01&to=" + timezone.localdate().isoformat()
    if url != "/reports/sales/":
        query += "&model=w_shaped&group_by=channel"
    response = client.get(f"{url}?{query}")
    tables = page_tables(response)
    assert list(tables) == TABLES[url]
    page = html(response)
    for key, shown in tables.items():
        assert f"format=csv&amp;table={key}" in page
        download = client.get(f"{url}?{query}&format=csv&table={key}")
        assert download.status_code == 200
        rows = csv_rows(download)
        assert rows[0] == shown[0], key
        if shown[1:] == [["Nothing in these days."]]:
            assert rows[1:] == []
        else:
            assert rows[1:] == shown[1:], key
        assert (
            f"leadrecord-{url.split('/')[2]}-{key}-2020-01-01-" in download["Content-Disposition"]
        )


def test_csv_cells_that_start_a_formula_are_escaped_and_numbers_are_not(record, users, client):
    campaign_on_winning_path(record, name='=HYPERLINK("http://evil.example","x")', cost="5000.00")
    rows = csv_rows(
        as_user(client, users, Role.MARKETER).get(
            "/reports/marketing/?from=2020-01-01&format=csv&table=campaigns"
        )
    )
    row = next(row for row in rows if "HYPERLINK" in row[0])
    assert row[0] == '\'=HYPERLINK("http://evil.example","x")'
    assert row[2] == "5000.00"
    assert float(row[4]) < 0  # a loss stays a number: ROI is (revenue - cost) / cost
    assert not row[4].startswith("'")


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("plain", "plain"),
        ("", ""),
    ],
)
def test_text_cells_are_made_safe_for_spreadsheets(text, safe):
    assert csv_safe(text) == safe


def test_a_deal_amount_downloads_exactly(record, users, client):
    handoff_services.deal_create(
        name="Exact",
        organization=record["ada"].organization,
        members=[handoff_services.Member(record["ada"], "champion")],
        amount=Decimal("1234567.89"),
        owner=users[Role.SALES_REP],
        actor=SYSTEM,
    )
    rows = csv_rows(
        as_user(client, users, Role.SALES_REP).get("/reports/sales/?format=csv&table=deals")
    )
    assert rows[1][:3] == ["Exact", record["ada"].organization.name, "1234567.89"]
    assert Deal.objects.get(name="Exact").amount == Decimal("1234567.89")


@pytest.mark.parametrize(
    ("role", "link"),
    [
        (Role.MANAGER, "/reports/manager/"),
        (Role.MARKETER, "/reports/marketing/"),
        (Role.SALES_REP, "/reports/sales/"),
    ],
)
def test_the_home_page_links_to_the_roles_dashboard(role, link, users, client):
    page = html(as_user(client, users, role).get("/"))
    assert f'href="{link}"' in page


def test_a_long_list_shows_its_first_rows_and_the_csv_has_them_all(
    record, users, client, monkeypatch
):
    monkeypatch.setattr("reports.dashboard_tables.ROWS_SHOWN", 2)
    for number in range(3):
        handoff_services.deal_create(
            name=f"Deal {number}",
            organization=record["ada"].organization,
            members=[handoff_services.Member(record["ada"], "champion")],
            amount=Decimal("100.00"),
            owner=users[Role.SALES_REP],
            actor=SYSTEM,
            occurred_at=timezone.now() - (number + 1) * DAY,
        )
    client = as_user(client, users, Role.SALES_REP)
    response = client.get("/reports/sales/")
    assert [row[0] for row in page_tables(response)["deals"][1:]] == ["Deal 0", "Deal 1"]
    assert "The first 2 of 3 rows are shown" in html(response)
    assert "3 deals you own were created" in html(response)
    rows = csv_rows(client.get("/reports/sales/?format=csv&table=deals"))
    assert [row[0] for row in rows[1:]] == ["Deal 0", "Deal 1", "Deal 2"]


def test_a_leak_number_links_to_a_list_that_opens(record, users, client):
    client = as_user(client, users, Role.MARKETER)
    page = html(client.get("/reports/marketing/"))
    links = re.findall(r'href="(/reports/lists/[^"]+)"', page)
    assert len(links) == 4
    for link in links:
        assert client.get(link.replace("&amp;", "&")).status_code == 200


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_dashboard_reads_one_snapshot_and_its_starting_rows_once(users, client):
    """Every report on a page reads the same snapshot (one REPEATABLE READ transaction),
    and the rows they all start from (the aggregates' state, the latest run) once."""
    people_aggregates_update()
    run_execute(run_id=run_request(trigger="manual")[0].pk)
    client.force_login(users[Role.MANAGER])
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/reports/manager/")
    assert response.status_code == 200
    statements = [query["sql"] for query in queries.captured_queries]
    assert sum("REPEATABLE READ" in sql for sql in statements) == 1
    assert sum('FROM "reports_peoplerefresh"' in sql for sql in statements) == 1
    assert (
        sum('FROM "reports_attributionrun"' in sql and "complete" in sql for sql in statements) == 1
    )
    assert not any(sql.startswith("SAVEPOINT") for sql in statements)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_manager_page_asks_the_database_a_bounded_number_of_queries(
    record, users, client, django_assert_max_num_queries, settings
):
    """Each query waits its turn for the database while events stream in on the same
    cores: the page's reports share what they read (one snapshot, one read of the same
    rows) and ask related counts together. Measured with a state of the aggregates, a run
    (noted by the update) and a touch since the state (so the live parts read)."""
    settings.REPORT_CACHE_SECONDS = 0  # what every request costs while events stream in
    people_aggregates_update()
    run_execute(run_id=run_request(trigger="manual")[0].pk)
    people_aggregates_update()  # as the periodic update does after a run: notes its sales
    touch(record["cy"], "web", DAY)
    client.force_login(users[Role.MANAGER])
    client.get("/reports/manager/")
    with django_assert_max_num_queries(MANAGER_PAGE_QUERIES):
        response = client.get("/reports/manager/")
    assert response.status_code == 200


# What the page asks now (50 before its reports shared their reads and asked
# related counts together, 31 before a session's user came with their roles and the
# snapshot's first query with the heads and the merges): a new query should be a
# deliberate choice.
MANAGER_PAGE_QUERIES = 22
