"""Report dates outside 1900-01-01..2200-12-31, in the report API and on the dashboards
and their lists: a 400 naming ``from`` or ``to``, never the 500 that date arithmetic
near year 1 or 9999 gave; the ends of the range still report."""

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from leadrecord.roles import Role

pytestmark = pytest.mark.django_db

MESSAGE = "Give a day between 1900-01-01 and 2200-12-31."
BAD_QUERIES = [
    ("from=9999-12-31", "from"),
    ("from=0001-01-01", "from"),
    ("to=9999-12-31", "to"),
    ("to=0001-01-01", "to"),
    ("from=1899-12-31&to=1900-01-31", "from"),
    ("from=2200-12-01&to=2201-01-01", "to"),
]
EDGE_QUERIES = ["from=1900-01-01&to=1900-03-31", "from=2200-10-01&to=2200-12-31"]
REPORT_APIS = [
    "/api/v1/reports/contribution/",
    "/api/v1/reports/funnel/",
    "/api/v1/reports/attribution/",
    "/api/v1/reports/attribution/models/",
    "/api/v1/reports/campaigns/",
    "/api/v1/reports/lifetime/",
]
PAGES = [
    ("dashboard-manager", None),
    ("dashboard-marketing", None),
    ("dashboard-sales", None),
    ("report-leak-list", "qualified-not-handed-off"),
    ("report-leak-list", "deals-stalled"),
]


@pytest.fixture
def manager_api(users, api_client_for) -> Any:
    return api_client_for(users[Role.MANAGER])


@pytest.fixture
def manager_page(users) -> Client:
    client = Client()
    client.force_login(users[Role.MANAGER])
    return client


@pytest.mark.parametrize(("query", "field"), BAD_QUERIES)
@pytest.mark.parametrize("path", REPORT_APIS)
def test_a_report_api_refuses_a_day_outside_the_range(path, query, field, manager_api):
    response = manager_api.get(f"{path}?{query}")
    assert response.status_code == 400, response.content
    assert response.json() == {
        "type": "validation_error",
        "errors": [{"code": "date_out_of_range", "detail": MESSAGE, "attr": field}],
    }


@pytest.mark.parametrize("query", EDGE_QUERIES)
@pytest.mark.parametrize("path", REPORT_APIS)
def test_a_report_api_reports_on_the_ends_of_the_range(path, query, manager_api):
    response = manager_api.get(f"{path}?{query}")
    assert response.status_code == 200, response.content


def page_path(name: str, slug: str | None) -> str:
    return reverse(name, args=[slug] if slug else [])


@pytest.mark.parametrize(("query", "field"), BAD_QUERIES)
@pytest.mark.parametrize(("name", "slug"), PAGES)
def test_a_report_page_refuses_a_day_outside_the_range(name, slug, query, field, manager_page):
    response = manager_page.get(f"{page_path(name, slug)}?{query}")
    assert response.status_code == 400
    page = response.content.decode()
    assert MESSAGE in page
    # The field itself is marked invalid.
    assert re.search(f'<input[^>]*name="{field}"[^>]*aria-invalid="true"', page), page


@pytest.mark.parametrize("query", EDGE_QUERIES)
@pytest.mark.parametrize(("name", "slug"), PAGES)
def test_a_report_page_reports_on_the_ends_of_the_range(name, slug, query, manager_page):
    assert manager_page.get(f"{page_path(name, slug)}?{query}").status_code == 200
