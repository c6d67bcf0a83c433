"""The dashboards: one page per role, each a set of sections with a chart and the tables
behind it, for a range of days picked on the page.

Managers see every report; marketers their campaigns, what came back from sales
and where people leak; sales reps their queue and their deals. The sections are
built in ``reports.dashboard_sections``, ``dashboard_attribution`` and
``dashboard_sales`` from the metrics and selectors: the pages only arrange them.

Every table can be downloaded as CSV with the page's own query plus
``format=csv&table=KEY``; a section is computed only when its table is asked
for. Bad input (a date that is not one, ``to`` before ``from``, an unknown
table) renders the page with the field named and status 400.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlencode

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from leadrecord.roles import Role, user_has_role
from leadrecord.views_access import role_required

from .dashboard_attribution import (
    attribution_section,
    campaigns_section,
    models_section,
    reconciliation_section,
)
from .dashboard_sales import deals_section, queue_section, returned_section
from .dashboard_sections import (
    Query,
    SectionBuilder,
    contribution_section,
    funnel_section,
    leakage_section,
    lifetime_section,
)
from .dashboard_tables import Section, Table
from .forms import (
    AttributionReportForm,
    DateRange,
    ReportRangeForm,
    quick_periods,
)
from .models import AttributionModel
from .report_cache import computed_once_per_page
from .snapshot import consistent_read

REPORT_ROLES = (Role.MARKETER, Role.SALES_REP, Role.MANAGER)
MANAGERS = (Role.MANAGER,)
MARKETING = (Role.MARKETER, Role.MANAGER)
SALES = (Role.SALES_REP, Role.MANAGER)


@dataclass(frozen=True)
class Dashboard:
    key: str
    title: str
    intro: str
    roles: tuple[str, ...]
    url_name: str
    form_class: type[ReportRangeForm]
    # Each section with the keys of the tables it makes (so one CSV computes one section).
    sections: tuple[tuple[SectionBuilder, tuple[str, ...]], ...]

    def section_for(self, table: str) -> SectionBuilder | None:
        for builder, tables in self.sections:
            if table in tables:
                return builder
        return None


# --- the dashboards ----------------------------------------------------------------------------

MANAGER_DASHBOARD = Dashboard(
    key="manager",
    title="Management dashboard",
    intro="Who contributed what: pipeline and revenue by source, the funnel, attribution, "
    "campaign returns and revenue after the first sale.",
    roles=MANAGERS,
    url_name="dashboard-manager",
    form_class=AttributionReportForm,
    sections=(
        (contribution_section, ("contribution", "influenced", "people")),
        (funnel_section, ("funnel", "leakage")),
        (attribution_section, ("attribution",)),
        (reconciliation_section, ("reconciliation",)),
        (models_section, ("models",)),
        (campaigns_section, ("campaigns",)),
        (lifetime_section, ("lifetime",)),
    ),
)
MARKETING_DASHBOARD = Dashboard(
    key="marketing",
    title="Marketing dashboard",
    intro="Your campaigns' returns, what sales sent back, and where people leak.",
    roles=MARKETING,
    url_name="dashboard-marketing",
    form_class=AttributionReportForm,
    sections=(
        (campaigns_section, ("campaigns",)),
        (attribution_section, ("attribution",)),
        (returned_section, ("returned-reasons", "returned")),
        (leakage_section, ("leakage",)),
    ),
)
SALES_DASHBOARD = Dashboard(
    key="sales",
    title="Sales dashboard",
    intro="Who is waiting for you, and your deals.",
    roles=SALES,
    url_name="dashboard-sales",
    form_class=ReportRangeForm,
    sections=(
        (queue_section, ("queue",)),
        (deals_section, ("deals",)),
    ),
)
DASHBOARDS = (MANAGER_DASHBOARD, MARKETING_DASHBOARD, SALES_DASHBOARD)


def dashboards_for(user: Any) -> list[Dashboard]:
    return [board for board in DASHBOARDS if user_has_role(user, *board.roles)]


@role_required(*REPORT_ROLES)
@require_GET
def reports_home(request: HttpRequest) -> HttpResponse:
    """The role's own dashboard (a manager's is the management one), with the same query."""
    own = {
        Role.MANAGER: MANAGER_DASHBOARD,
        Role.MARKETER: MARKETING_DASHBOARD,
        Role.SALES_REP: SALES_DASHBOARD,
    }
    board = next(board for role, board in own.items() if user_has_role(request.user, role))
    target = reverse(board.url_name)
    query = request.GET.urlencode()
    return redirect(f"{target}?{query}" if query else target)


def _render(request: HttpRequest, board: Dashboard) -> HttpResponse:
    # Always bound: an empty query is valid and means the default period.
    form = board.form_class(request.GET)
    valid = form.is_valid()
    wanted = form.cleaned_data.get("table", "") if valid else ""
    csv_wanted = valid and form.cleaned_data.get("format") == "csv"
    if csv_wanted and board.section_for(wanted) is None:
        form.add_error(
            "table",
            "Name one of the tables on this page: " + ", ".join(_table_keys(board)) + ".",
        )
        valid = False
    if not valid:
        return _page(request, board, form, sections=[], status=400)
    query = Query(
        dates=cast(DateRange, form.date_range),
        model=form.cleaned_data.get("model") or AttributionModel.LINEAR,
        group_by=form.cleaned_data.get("group_by") or "channel",
        user=cast(User, request.user),
        every_row=csv_wanted,
    )
    base = form.field_values()
    if csv_wanted:
        builder = cast(SectionBuilder, board.section_for(wanted))
        with computed_once_per_page(), consistent_read():
            built = builder(query)
        table = next(table for table in built.tables if table.key == wanted)
        return _csv(table, board, query.dates)
    # Sections share reports (the people counts are in contribution and the funnel), and
    # read one snapshot: the page's figures agree with each other.
    with computed_once_per_page(), consistent_read():
        sections = [builder(query) for builder, _ in board.sections]
    for section in sections:
        for table in section.tables:
            table.export_url = "?" + urlencode({**base, "format": "csv", "table": table.key})
    return _page(request, board, form, sections=sections, status=200)


def _table_keys(board: Dashboard) -> list[str]:
    return [key for _, tables in board.sections for key in tables]


def _page(
    request: HttpRequest,
    board: Dashboard,
    form: ReportRangeForm,
    *,
    sections: list[Section],
    status: int,
) -> HttpResponse:
    # Quick periods keep the chosen model and grouping.
    cleaned = getattr(form, "cleaned_data", {})
    extra = {key: cleaned[key] for key in ("model", "group_by") if cleaned.get(key)}
    periods = [
        {
            "label": period.label,
            "current": period.current,
            "url": "?" + urlencode({"period": period.key, **extra}),
        }
        for period in quick_periods(form.today, form.date_range)
    ]
    return render(
        request,
        "reports/dashboard.html",
        {
            "board": board,
            "boards": dashboards_for(request.user),
            "form": form,
            "dates": form.date_range,
            "periods": periods,
            "sections": sections,
            "shows_models": isinstance(form, AttributionReportForm),
            "errors": [
                (form.fields[name].label if name in form.fields else "", name, error)
                if name != "__all__"
                else ("", "", error)
                for name, errors in form.errors.items()
                for error in errors
            ],
            "time_zone": timezone.get_current_timezone_name(),
        },
        status=status,
    )


def _csv(table: Table, board: Dashboard, dates: DateRange) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"leadrecord-{board.key}-{table.key}-{dates.start}-{dates.end}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    writer.writerows(table.csv_rows())
    return response


@role_required(*MANAGERS)
@require_GET
def dashboard_manager(request: HttpRequest) -> HttpResponse:
    return _render(request, MANAGER_DASHBOARD)


@role_required(*MARKETING)
@require_GET
def dashboard_marketing(request: HttpRequest) -> HttpResponse:
    return _render(request, MARKETING_DASHBOARD)


@role_required(*SALES)
@require_GET
def dashboard_sales(request: HttpRequest) -> HttpResponse:
    return _render(request, SALES_DASHBOARD)
