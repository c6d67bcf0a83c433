"""The report endpoints: shapes per docs/api.md, who may read them, and bad queries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any, cast

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from contacts.models import Campaign, Channel, Contact
from handoff import services
from leadrecord.ledger import Actor
from leadrecord.roles import Role
from reports import metrics
from reports.aggregates import people_aggregates_update
from reports.models import AttributionModel, PeopleRefresh, TouchDay
from reports.runs import run_execute, run_request

from .conftest import FROZEN, touch

pytestmark = [pytest.mark.django_db, FROZEN]
SYSTEM = Actor.system("test")
DAY = timedelta(days=1)
REPORTS = [
    "/api/v1/reports/contribution/",
    "/api/v1/reports/funnel/",
    "/api/v1/reports/attribution/models/",
    "/api/v1/reports/campaigns/",
    "/api/v1/reports/lifetime/",
]


@pytest.fixture
def api(users: dict[str, Any], api_client_for: Any) -> Callable[[str], APIClient]:
    return lambda role: cast(APIClient, api_client_for(cast(User, users[role])))


def run_now() -> None:
    run, _ = run_request(trigger="command")
    run_execute(run_id=run.pk)


def last_year() -> dict[str, str]:
    today = timezone.localdate()
    return {"from": str(today - 365 * DAY), "to": str(today)}


def test_contribution_has_the_shape_of_api_md(record: dict[str, Contact], api: Any) -> None:
    services.target_set(
        period=metrics.quarter_of(timezone.localdate()), share=Decimal("0.35"), actor=SYSTEM
    )
    run_now()
    response = api(Role.MARKETER).get("/api/v1/reports/contribution/", last_year())
    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) == {"pipeline", "revenue", "target_share", "influenced", "people"}
    # Ada and Bo's deal: 1,000 created and won in the range, sales-sourced (no handoff).
    for part in ("pipeline", "revenue"):
        assert body[part] == {
            "marketing_sourced": "0.00",
            "sales_sourced": "1000.00",
            "total": "1000.00",
            "marketing_share": "0.0000",
        }
    assert body["target_share"] == "0.3500"
    assert body["influenced"] == {"pipeline": "1000.00", "revenue": "1000.00"}
    assert body["people"] == {
        "contacts": 3,
        "engaged": 3,
        "qualified": 0,
        "handed_off": 0,
        "accepted": 0,
        "customers": 2,
    }


def test_funnel_stages_and_leaks(record: dict[str, Contact], api: Any) -> None:
    response = api(Role.SALES_REP).get("/api/v1/reports/funnel/", last_year())
    assert response.status_code == 200, response.json()
    body = response.json()
    assert [stage["key"] for stage in body["stages"]] == [
        "contacts",
        "engaged",
        "qualified",
        "handed_off",
        "accepted",
        "customers",
    ]
    assert set(body["stages"][0]) == {
        "key",
        "label",
        "people",
        "conversion_to_next",
        "median_days_in_stage",
    }
    assert body["stages"][0]["conversion_to_next"] == 1.0  # 3 contacts, 3 engaged
    assert body["stages"][1]["conversion_to_next"] == 0.0
    assert body["stages"][-1]["conversion_to_next"] is None
    assert [leak["key"] for leak in body["leakage"]] == [
        "qualified_not_handed_off",
        "handoffs_expired",
        "rejected_not_reengaged",
        "deals_stalled",
    ]
    for leak in body["leakage"]:
        assert leak["count"] == 0
        assert leak["url"].startswith("/reports/lists/")
        assert f"from={last_year()['from']}" in leak["url"]


def test_all_models_side_by_side_and_campaign_roi(record: dict[str, Contact], api: Any) -> None:
    Campaign.objects.create(
        name="Spring webinar",
        channel=Channel.objects.get(key="webinar"),
        cost=Decimal("200.00"),
        created_at=timezone.now(),
    )
    run_now()
    reader = api(Role.MANAGER)
    models = reader.get(
        "/api/v1/reports/attribution/models/", {**last_year(), "group_by": "team"}
    ).json()
    assert models["group_by"] == "team"
    assert models["models"] == list(AttributionModel.values)
    rows = {row["key"]: row["credits"] for row in models["rows"]}
    assert set(rows) == {"marketing", "sales"}
    for model in AttributionModel.values:
        assert rows["marketing"][model] + rows["sales"][model] == pytest.approx(1000.0, abs=0.02)
    assert rows["marketing"]["first_touch"] == 1000.0  # Ada's web visit came first

    campaigns = reader.get("/api/v1/reports/campaigns/", {**last_year(), "model": "linear"})
    assert campaigns.status_code == 200
    assert campaigns.json()["model"] == "linear"
    assert campaigns.json()["rows"] == [
        {
            "campaign_id": Campaign.objects.get().pk,
            "name": "Spring webinar",
            "channel": "webinar",
            "cost": "200.00",
            "attributed_revenue": 0.0,
            "roi": -1.0,
        }
    ]


def test_lifetime_rows_by_source(record: dict[str, Contact], api: Any) -> None:
    response = api(Role.MARKETER).get("/api/v1/reports/lifetime/", last_year())
    assert response.status_code == 200
    assert response.json() == {
        "rows": [
            {
                "source": "marketing",
                "won": "0.00",
                "expansion": "0.00",
                "renewal": "0.00",
                "churn": "0.00",
                "net": "0.00",
            },
            {
                "source": "sales",
                "won": "1000.00",
                "expansion": "0.00",
                "renewal": "0.00",
                "churn": "0.00",
                "net": "1000.00",
            },
        ]
    }


def test_dates_default_to_this_quarter(record: dict[str, Contact], api: Any) -> None:
    response = api(Role.MANAGER).get("/api/v1/reports/funnel/")
    assert response.status_code == 200
    today = timezone.localdate()
    quarter = metrics.quarter_first_day(today)
    assert f"from={quarter}&to={today}" in response.json()["leakage"][0]["url"]


def test_the_people_aggregates_follow_the_record_outside_the_run(
    record: dict[str, Contact],
) -> None:
    run_now()
    assert PeopleRefresh.objects.count() == 0  # the run no longer rebuilds them
    people_aggregates_update()
    assert PeopleRefresh.objects.count() == 1
    assert TouchDay.objects.count() == 5  # five touches, each on its own day


@pytest.mark.parametrize("path", REPORTS)
@pytest.mark.parametrize("role", [Role.PRIVACY_OFFICER, Role.INTEGRATION])
def test_reports_are_not_for_privacy_officers_or_integrations(
    api: Any, path: str, role: str
) -> None:
    assert api(role).get(path).status_code == 403


@pytest.mark.parametrize("path", REPORTS)
def test_anonymous_callers_are_refused(path: str) -> None:
    assert APIClient().get(path).status_code in (401, 403)


@pytest.mark.parametrize("path", REPORTS)
@pytest.mark.parametrize("role", [Role.MARKETER, Role.SALES_REP, Role.MANAGER])
def test_readers_may_read(api: Any, path: str, role: str) -> None:
    assert api(role).get(path).status_code == 200


@pytest.mark.parametrize("path", REPORTS)
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "last tuesday"}, "from"),
        ({"from": "2026-10-10", "to": "2026-10-01"}, "to"),
        ({"to": "2026-02-30"}, "to"),
        ({"from": "0001-01-01"}, "from"),
        ({"to": "9999-12-31"}, "to"),
        ({"from": "2026-01-01T00:00:00+00:00"}, "from"),
        ({"from": "x" * 5000}, "from"),
        ({"from": "'; DROP TABLE reports_touchday; --"}, "from"),
        ({"from": "2999-01-01"}, "from"),  # after today, the default "to"
    ],
)
def test_bad_dates_are_400s_naming_the_field(
    api: Any, path: str, query: dict[str, str], field: str
) -> None:
    response = api(Role.MANAGER).get(path, query)
    assert response.status_code == 400, response.json()
    assert response.json()["type"] == "validation_error"
    assert field in {error["attr"] for error in response.json()["errors"]}


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("/api/v1/reports/attribution/models/", {"group_by": "star_sign"}, "group_by"),
        ("/api/v1/reports/campaigns/", {"model": "astrology"}, "model"),
        ("/api/v1/reports/campaigns/", {"model": "LINEAR"}, "model"),
    ],
)
def test_unknown_choices_are_400s_naming_the_field(
    api: Any, path: str, query: dict[str, str], field: str
) -> None:
    response = api(Role.MANAGER).get(path, query)
    assert response.status_code == 400
    assert field in {error["attr"] for error in response.json()["errors"]}


def test_empty_parameters_take_their_defaults(api: Any) -> None:
    # As in a form left blank: ``?model=&from=`` is the default model and range.
    response = api(Role.MANAGER).get("/api/v1/reports/campaigns/", {"model": "", "from": ""})
    assert response.status_code == 200
    assert response.json()["model"] == "linear"


def test_writes_are_not_allowed(api: Any) -> None:
    for path in REPORTS:
        assert api(Role.MANAGER).post(path, {}).status_code in (403, 405)


def test_the_schema_documents_the_reports(api: Any) -> None:
    schema = api(Role.MANAGER).get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in REPORTS:
        assert path in paths
    described = paths["/api/v1/reports/contribution/"]["get"]["description"]
    assert "reporting time zone" in described and "both included" in described


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_funnel_reads_one_snapshot_and_its_starting_rows_once(
    record: dict[str, Contact], api: Any, django_assert_max_num_queries: Any, settings: Any
) -> None:
    """The funnel's counts, medians and leaks come from one snapshot, which reads the
    aggregates' state, the ledger head and the touches since the state once, and asks its
    counts together (it opened two snapshots)."""
    settings.REPORT_CACHE_SECONDS = 0  # what every request costs while events stream in
    people_aggregates_update()
    touch(record["cy"], "web", DAY)
    client = api(Role.MANAGER)
    assert client.get("/api/v1/reports/funnel/", last_year()).status_code == 200
    with (
        django_assert_max_num_queries(FUNNEL_QUERIES),
        CaptureQueriesContext(connection) as queries,
    ):
        response = client.get("/api/v1/reports/funnel/", last_year())
    assert response.status_code == 200
    statements = [query["sql"] for query in queries.captured_queries]
    assert sum("REPEATABLE READ" in sql for sql in statements) == 1
    assert sum('FROM "reports_peoplerefresh"' in sql for sql in statements) == 1
    assert sum("ORDER BY seq DESC LIMIT 1" in sql for sql in statements) == 1


# What the funnel asks now (30 or more before, 20 before the snapshot's first query
# carried the heads and the merges, and its counts and stage entries were asked together):
# a new query should be a deliberate choice.
FUNNEL_QUERIES = 12
