"""The dashboards: one page per role, each a set of sections with a chart and the tables
behind it, for a range of days picked on the page.

Managers see every report; marketers their campaigns, what came back from sales
and where people leak; sales reps their queue and their deals. The numbers come
from ``reports.metrics`` and ``reports.selectors`` (and the handoff app's
selectors for the queue and deals): the pages only arrange them.

Every table can be downloaded as CSV with the page's own query plus
``format=csv&table=KEY``; a section is computed only when its table is asked
for. Bad input (a date that is not one, ``to`` before ``from``, an unknown
table) renders the page with the field named and status 400.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, cast
from urllib.parse import urlencode

from django.contrib.auth.models import User
from django.db.models import Count, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from handoff import selectors as handoff_selectors
from handoff.models import DealSource, DealState, HandoffStatus, RejectReason
from leadrecord.roles import Role, user_has_role
from leadrecord.views_access import role_required

from . import metrics, selectors
from .charts import Chart, Series, bar_chart
from .forms import (
    GROUPING_LABELS,
    AttributionReportForm,
    DateRange,
    ReportRangeForm,
    quick_periods,
)
from .freshness import Freshness, freshness
from .models import AttributionModel
from .reconciliation import reconciliation

REPORT_ROLES = (Role.MARKETER, Role.SALES_REP, Role.MANAGER)
MANAGERS = (Role.MANAGER,)
MARKETING = (Role.MARKETER, Role.MANAGER)
SALES = (Role.SALES_REP, Role.MANAGER)
# Rows a table shows on the page; its CSV file has them all.
ROWS_SHOWN = 50
# The most recent returned handoffs and queue entries shown on a dashboard.
RECENT_SHOWN = 10

MODEL_LABELS = dict(AttributionModel.choices)
SOURCE_LABELS = dict(DealSource.choices)
STATE_LABELS = dict(DealState.choices)
REASON_LABELS = dict(RejectReason.choices)


# --- tables -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    label: str
    # text, money, count, share (a fraction), ratio (ROI, a fraction), days, credit
    kind: str = "text"


@dataclass(frozen=True)
class Link:
    text: object
    url: str


@dataclass(frozen=True)
class Cell:
    text: str  # what the page shows
    value: str  # what the CSV file holds (and the cell's data-value)
    url: str = ""
    numeric: bool = False


def _plain(value: object, kind: str) -> str:
    """A value as it goes into the CSV file: numbers without grouping, fractions as such."""
    if value is None:
        return ""
    if kind == "money":
        return f"{Decimal(str(value)).quantize(Decimal('0.01'))}"
    if kind == "credit":
        return f"{float(cast(float, value)):.2f}"
    if kind in {"share", "ratio"}:
        return f"{float(cast(float, value)):.4f}"
    if kind == "days":
        return f"{float(cast(float, value)):.1f}"
    if kind == "count":
        return str(int(cast(int, value)))
    return str(value)


def _shown(value: object, kind: str) -> str:
    if value is None:
        return "—"
    if kind in {"money", "credit"}:
        return f"{Decimal(str(value)):,.2f}"
    if kind in {"share", "ratio"}:
        return f"{float(cast(float, value)):.1%}"
    if kind == "days":
        return f"{float(cast(float, value)):.1f}"
    if kind == "count":
        return f"{int(cast(int, value)):,}"
    return str(value)


@dataclass
class Table:
    key: str  # the ``table=`` of its CSV export
    title: str
    columns: Sequence[Column]
    rows: Sequence[Sequence[object]]
    note: str = ""
    more_url: str = ""  # the full list, when the table shows only some of it
    more_label: str = ""
    export_url: str = ""
    # How many rows there are when ``rows`` holds only the first ones (on the page).
    total: int | None = None
    # An attribution table: it links to the method page.
    method: bool = False

    def cells(self) -> list[list[Cell]]:
        return [
            [self._cell(value, column) for value, column in zip(row, self.columns, strict=True)]
            for row in self.rows[:ROWS_SHOWN]
        ]

    @property
    def cut(self) -> bool:
        return self.row_count > ROWS_SHOWN

    @property
    def row_count(self) -> int:
        return len(self.rows) if self.total is None else self.total

    @staticmethod
    def _cell(value: object, column: Column) -> Cell:
        url = ""
        if isinstance(value, Link):
            url = value.url
            value = value.text
        return Cell(
            text=_shown(value, column.kind),
            value=_plain(value, column.kind),
            url=url,
            numeric=column.kind != "text",
        )

    def csv_rows(self) -> Iterable[list[str]]:
        yield [column.label for column in self.columns]
        for row in self.rows:
            yield [
                _csv_safe(_plain(value.text if isinstance(value, Link) else value, column.kind))
                if column.kind == "text"
                else _plain(value.text if isinstance(value, Link) else value, column.kind)
                for value, column in zip(row, self.columns, strict=True)
            ]


# Spreadsheets run a cell that starts with one of these as a formula. Only text cells
# can: a number cell is written by this module (a negative amount stays a number).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text


@dataclass
class Figure:
    title: str
    value: str
    detail: str = ""


@dataclass
class Section:
    key: str
    title: str
    intro: str = ""
    figures: list[Figure] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    # For attribution figures: the run they are as of, and the changes since it.
    freshness: Freshness | None = None
    can_recompute: bool = False  # shows a manager's "Recompute now"


@dataclass(frozen=True)
class Query:
    """What a section is computed for: the days, the model and grouping, and the user."""

    dates: DateRange
    model: str
    group_by: str
    user: User
    # False for the page, which shows the first rows of a long list; True for a CSV file.
    every_row: bool = False

    @property
    def handoffs_known(self) -> tuple[str, ...] | None:
        """The say-so audiences of the handoffs this user may know of (None: all)."""
        return handoff_selectors.handoff_audiences_known_to(self.user)

    @property
    def start(self) -> date:
        return self.dates.start

    @property
    def end(self) -> date:
        return self.dates.end


SectionBuilder = Callable[[Query], Section]


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


# --- the manager's sections ------------------------------------------------------------------


def _percent(value: Decimal | float | None) -> str:
    return "—" if value is None else f"{float(value):.1%}"


def contribution_section(query: Query) -> Section:
    numbers = metrics.contribution(query.start, query.end, query.handoffs_known)
    pipeline, revenue = numbers.pipeline, numbers.revenue
    target = numbers.target_share
    money = [Column("Marketing-sourced", "money"), Column("Sales-sourced", "money")]
    return Section(
        key="contribution",
        title="Contribution",
        intro=(
            "Long term: the pipeline created in these days (deals opened). Short term: the "
            "revenue closed in them (won, expansions and renewals less churn). Each is split by "
            "the deal's source, derived from the record."
        ),
        figures=[
            Figure(
                "Pipeline created (long term)",
                f"{pipeline.total:,.2f}",
                f"Marketing-sourced share {_percent(pipeline.marketing_share)}"
                + (f" against a target of {_percent(target)}" if target is not None else ""),
            ),
            Figure(
                "Closed revenue (short term)",
                f"{revenue.total:,.2f}",
                f"Marketing-sourced share {_percent(revenue.marketing_share)}",
            ),
            Figure(
                "Influenced by marketing",
                f"{numbers.influenced.pipeline:,.2f}",
                f"of pipeline; {numbers.influenced.revenue:,.2f} of revenue",
            ),
        ],
        charts=[
            bar_chart(
                title="Pipeline created and revenue closed, by source",
                labels=["Pipeline created (long term)", "Closed revenue (short term)"],
                series=[
                    Series(
                        "Marketing-sourced", [pipeline.marketing_sourced, revenue.marketing_sourced]
                    ),
                    Series("Sales-sourced", [pipeline.sales_sourced, revenue.sales_sourced]),
                ],
            )
        ],
        tables=[
            Table(
                "contribution",
                "Pipeline and revenue by source",
                [
                    Column("Measure"),
                    *money,
                    Column("Total", "money"),
                    Column("Marketing share", "share"),
                    Column("Target share", "share"),
                ],
                [
                    [
                        "Pipeline created (long term)",
                        pipeline.marketing_sourced,
                        pipeline.sales_sourced,
                        pipeline.total,
                        pipeline.marketing_share,
                        target,
                    ],
                    [
                        "Closed revenue (short term)",
                        revenue.marketing_sourced,
                        revenue.sales_sourced,
                        revenue.total,
                        revenue.marketing_share,
                        None,
                    ],
                ],
                note="The target is the agreed marketing share of pipeline for the quarter "
                "holding the last day.",
            ),
            Table(
                "influenced",
                "Influenced by marketing",
                [Column("Measure"), Column("Influenced", "money"), Column("Total", "money")],
                [
                    ["Pipeline", numbers.influenced.pipeline, pipeline.total],
                    ["Revenue", numbers.influenced.revenue, revenue.total],
                ],
                note="Deals with a marketing touch of their buying group before the sale.",
            ),
            Table(
                "people",
                "The people behind the numbers",
                [Column("Stage"), Column("People", "count")],
                [
                    ["Contacts (on record by the last day)", numbers.people.contacts],
                    ["Engaged (touched)", numbers.people.engaged],
                    ["Qualified", numbers.people.qualified],
                    ["Handed off", numbers.people.handed_off],
                    ["Accepted by sales", numbers.people.accepted],
                    ["Customers (bought)", numbers.people.customers],
                ],
                note="Distinct people, never lists of names.",
            ),
        ],
    )


def _leakage_table(leaks: Sequence[metrics.Leak]) -> Table:
    return Table(
        "leakage",
        "Leakage",
        [Column("Where people leak"), Column("Count", "count")],
        [[leak.label, Link(leak.count, leak.url)] for leak in leaks],
        note="Each number links to the people or deals behind it.",
    )


def funnel_section(query: Query) -> Section:
    numbers = metrics.funnel(query.start, query.end, query.handoffs_known)
    return Section(
        key="funnel",
        title="Funnel and leakage",
        intro=(
            "People at each stage in these days, the share who reached the next stage, and the "
            "median days people who left a stage had spent in it."
        ),
        charts=[
            bar_chart(
                title="People at each stage",
                labels=[stage.label for stage in numbers.stages],
                series=[Series("People", [stage.people for stage in numbers.stages])],
                value_format="count",
                horizontal=True,
            )
        ],
        tables=[
            Table(
                "funnel",
                "Funnel",
                [
                    Column("Stage"),
                    Column("People", "count"),
                    Column("Conversion to next", "share"),
                    Column("Median days in stage", "days"),
                ],
                [
                    [
                        stage.label,
                        stage.people,
                        stage.conversion_to_next,
                        stage.median_days_in_stage,
                    ]
                    for stage in numbers.stages
                ],
            ),
            _leakage_table(numbers.leakage),
        ],
    )


def leakage_section(query: Query) -> Section:
    return Section(
        key="leakage",
        title="Leakage",
        intro="People who stopped on the way, in these days.",
        tables=[_leakage_table(metrics.leakage(query.start, query.end, query.handoffs_known))],
    )


def attribution_section(query: Query) -> Section:
    """The chosen model's credit by the chosen grouping."""
    run = selectors.run_latest_complete()
    unavailable = selectors.model_unavailable_reason(run, query.model) if run else None
    rows = (
        selectors.attribution_rows(
            run, model=query.model, group_by=query.group_by, start=query.start, end=query.end
        )
        if run and not unavailable
        else []
    )
    grouping = GROUPING_LABELS[query.group_by]
    model = MODEL_LABELS[query.model]
    return Section(
        key="attribution",
        title=f"Attribution: {model}, by {grouping.lower()}",
        intro=(
            f"Revenue credited to each {grouping.lower()} for the sales in these days."
            + (f" Not shown: {unavailable}" if unavailable else "")
        ),
        freshness=freshness(),
        can_recompute=user_has_role(query.user, Role.MANAGER),
        charts=[
            bar_chart(
                title=f"Credit by {grouping.lower()} ({model})",
                labels=[row.key for row in rows],
                series=[Series("Credit", [row.credit for row in rows])],
                horizontal=True,
            )
        ],
        tables=[
            Table(
                "attribution",
                f"Credit by {grouping.lower()}, {model}",
                [Column(grouping), Column("Credit", "credit"), Column("Conversions", "days")],
                [[row.key, row.credit, row.conversions] for row in rows],
                note="Conversions are the sales' shares credited (a sale split over several "
                "counts in parts). Markov and Shapley are fitted over the whole run; a range "
                "sums their credits for its own sales.",
                method=True,
            )
        ],
    )


def reconciliation_section(query: Query) -> Section:
    """Gross attributed revenue against net revenue for the same days, and what lies between."""
    numbers = reconciliation(query.start, query.end)
    outside = numbers.outside_attribution
    later = numbers.not_yet_attributed
    return Section(
        key="reconciliation",
        title="Attribution and contribution reconciled",
        intro=(
            "Attribution credits each sale in full (gross); contribution's revenue is net of "
            "churn. Between them: sales attribution cannot credit (no touch in the lookback, "
            "or only touches of people who withdrew analytics consent) and sales recorded "
            "after the run. Net revenue = gross attributed + outside attribution + not yet "
            "attributed - churn."
        ),
        freshness=freshness(),
        tables=[
            Table(
                "reconciliation",
                "From attributed revenue to net revenue",
                [
                    Column("Gross attributed", "money"),
                    Column("Outside (sales)", "count"),
                    Column("Outside attribution", "money"),
                    Column("Not yet (sales)", "count"),
                    Column("Not yet attributed", "money"),
                    Column("Churn", "money"),
                    Column("Net revenue", "money"),
                ],
                [
                    [
                        numbers.gross_attributed,
                        outside.count,
                        outside.amount,
                        later.count,
                        later.amount,
                        numbers.churn,
                        numbers.net_revenue,
                    ]
                ],
                note=(
                    f"Outside attribution: {outside.no_touches.count} sale"
                    f"{'' if outside.no_touches.count == 1 else 's'} "
                    f"({outside.no_touches.amount:,.2f}) with no touch in the lookback, "
                    f"{outside.consent_withdrawn.count} "
                    f"({outside.consent_withdrawn.amount:,.2f}) with analytics consent "
                    "withdrawn. Net revenue is the closed revenue of the contribution section."
                ),
            )
        ],
    )


def models_section(query: Query) -> Section:
    """All eight models side by side."""
    rows = metrics.attribution_by_model(query.start, query.end, query.group_by)
    grouping = GROUPING_LABELS[query.group_by]
    models = list(AttributionModel.values)
    # The chart compares models for the largest few groups; the table has them all.
    shown = rows[:6]
    return Section(
        key="models",
        title=f"All eight models side by side, by {grouping.lower()}",
        intro="The same sales credited by each model: where they agree, the answer is robust.",
        freshness=freshness(),
        charts=[
            bar_chart(
                title=f"Credit by model and {grouping.lower()}",
                labels=[MODEL_LABELS[model] for model in models],
                series=[
                    Series(row.key, [row.credits.get(model, 0.0) for model in models])
                    for row in shown
                ],
            )
        ],
        tables=[
            Table(
                "models",
                f"Credit by {grouping.lower()} under each model",
                [Column(grouping), *(Column(MODEL_LABELS[model], "credit") for model in models)],
                [[row.key, *(row.credits.get(model, 0.0) for model in models)] for row in rows],
                method=True,
            )
        ],
    )


def campaigns_section(query: Query) -> Section:
    rows = metrics.campaign_roi(query.start, query.end, query.model)
    model = MODEL_LABELS[query.model]
    chart_rows = [row for row in rows if row.attributed_revenue or row.cost]
    return Section(
        key="campaigns",
        title=f"Campaign cost and attributed revenue ({model})",
        intro=(
            "Each campaign's recorded cost against the revenue the chosen model credits it "
            "with for sales in these days. ROI = (revenue - cost) / cost."
        ),
        freshness=freshness(),
        charts=[
            bar_chart(
                title=f"Cost and attributed revenue by campaign ({model})",
                labels=[row.name for row in chart_rows],
                series=[
                    Series("Cost", [row.cost for row in chart_rows]),
                    Series("Attributed revenue", [row.attributed_revenue for row in chart_rows]),
                ],
                horizontal=True,
            )
        ],
        tables=[
            Table(
                "campaigns",
                "Campaign ROI",
                [
                    Column("Campaign"),
                    Column("Channel"),
                    Column("Cost", "money"),
                    Column("Attributed revenue", "credit"),
                    Column("ROI", "ratio"),
                ],
                [
                    [row.name, row.channel, row.cost, row.attributed_revenue, row.roi]
                    for row in rows
                ],
                method=True,
            )
        ],
    )


def lifetime_section(query: Query) -> Section:
    rows = metrics.lifetime(query.start, query.end)
    labels = [SOURCE_LABELS.get(row.source, row.source) for row in rows]
    return Section(
        key="lifetime",
        title="Lifetime revenue by source",
        intro=(
            "The first sale and the relationship after it (expansions, renewals, churn) in these "
            "days, by the source of the deal."
        ),
        charts=[
            bar_chart(
                title="Revenue after the first sale, by source",
                labels=labels,
                series=[
                    Series("Won", [row.won for row in rows]),
                    Series("Expansion", [row.expansion for row in rows]),
                    Series("Renewal", [row.renewal for row in rows]),
                    Series("Churn", [row.churn for row in rows]),
                ],
            )
        ],
        tables=[
            Table(
                "lifetime",
                "Lifetime revenue by source",
                [
                    Column("Source"),
                    Column("Won", "money"),
                    Column("Expansion", "money"),
                    Column("Renewal", "money"),
                    Column("Churn", "money"),
                    Column("Net", "money"),
                ],
                [
                    [label, row.won, row.expansion, row.renewal, row.churn, row.net]
                    for label, row in zip(labels, rows, strict=True)
                ],
                note="Net = won + expansion + renewal - churn.",
            )
        ],
    )


# --- the marketer's and the sales rep's sections ------------------------------------------------


def returned_section(query: Query) -> Section:
    low, high = metrics.range_moments(query.start, query.end)
    returned = handoff_selectors.handoffs_returned(query.user).filter(
        decided_at__gte=low, decided_at__lt=high
    )
    reasons = Counter(
        REASON_LABELS.get(reason, "") or ("SLA expired" if status == HandoffStatus.EXPIRED else "—")
        for status, reason in returned.values_list("status", "reason")
    )
    ordered = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    recent = list(returned[:RECENT_SHOWN])
    return Section(
        key="returned",
        title="Returned to marketing",
        intro=(
            f"{sum(reasons.values()):,} handoffs came back from sales in these days, "
            "rejected or past the SLA."
        ),
        charts=[
            bar_chart(
                title="Returned handoffs by reason",
                labels=[label for label, _ in ordered],
                series=[Series("Handoffs", [number for _, number in ordered])],
                value_format="count",
                horizontal=True,
            )
        ],
        tables=[
            Table(
                "returned-reasons",
                "Returned handoffs by reason",
                [Column("Reason"), Column("Handoffs", "count")],
                [[label, number] for label, number in ordered],
            ),
            Table(
                "returned",
                "Most recently returned",
                [Column("Person"), Column("Outcome"), Column("Reason"), Column("When")],
                [
                    [
                        "(erased)"
                        if handoff.contact.erased_at
                        else Link(
                            handoff.contact.display_name,
                            reverse("contact", args=[handoff.contact_id]),
                        ),
                        handoff.get_status_display(),
                        handoff.get_reason_display() or "—",
                        f"{handoff.decided_at:%Y-%m-%d %H:%M}" if handoff.decided_at else "",
                    ]
                    for handoff in recent
                ],
                more_url=reverse("handoffs-returned"),
                more_label="Every returned handoff",
            ),
        ],
    )


def queue_section(query: Query) -> Section:
    queue = handoff_selectors.handoff_queue(query.user)
    waiting = list(queue[:RECENT_SHOWN])
    states = Counter(handoff_selectors.sla_state(handoff) for handoff in queue)
    total = sum(states.values())
    return Section(
        key="queue",
        title="My queue",
        intro=(
            f"{total:,} people are waiting for an answer from sales: "
            f"{states['overdue']:,} overdue, {states['due_soon']:,} due soon."
        ),
        tables=[
            Table(
                "queue",
                "Waiting for sales, oldest due first",
                [Column("Person"), Column("Organization"), Column("Due"), Column("SLA")],
                [
                    [
                        Link(
                            handoff.contact.display_name,
                            reverse("contact", args=[handoff.contact_id]),
                        ),
                        handoff.contact.organization.name if handoff.contact.organization else "",
                        f"{handoff.due_at:%Y-%m-%d %H:%M}",
                        handoff_selectors.sla_state(handoff).replace("_", " "),
                    ]
                    for handoff in waiting
                ],
                more_url=reverse("handoff-queue"),
                more_label="Open the queue to accept or reject",
            )
        ],
    )


def deals_section(query: Query) -> Section:
    low, high = metrics.range_moments(query.start, query.end)
    # The list needs neither buying groups nor sale events: no prefetch.
    deals = (
        handoff_selectors.deals_all()
        .prefetch_related(None)
        .filter(owner_id=query.user.pk, occurred_at__gte=low, occurred_at__lt=high)
    )
    # The chart's sums, by state and by source (the override first, as everywhere).
    marketing = Q(source_override=DealSource.MARKETING) | Q(
        source_override="", derived_source=DealSource.MARKETING
    )
    sums = {
        row["state"]: row
        for row in deals.values("state")
        .annotate(
            marketing=Sum("amount", filter=marketing),
            sales=Sum("amount", filter=~marketing),
            deals=Count("id"),
        )
        .order_by()
    }
    states = [state for state in DealState.values if state in sums]
    total = sum(row["deals"] for row in sums.values())
    listed = deals.order_by("-occurred_at", "-id").select_related("organization")
    rows = [
        [
            Link(deal.name, reverse("deal", args=[deal.pk])),
            deal.organization.name,
            deal.amount,
            STATE_LABELS.get(deal.state, deal.state),
            SOURCE_LABELS.get(deal.source, deal.source),
            f"{deal.occurred_at:%Y-%m-%d}",
        ]
        for deal in (listed if query.every_row else listed[:ROWS_SHOWN])
    ]
    return Section(
        key="deals",
        title="My deals",
        intro=f"{total:,} deals you own were created in these days.",
        charts=[
            bar_chart(
                title="My deals' amounts by state and source",
                labels=[STATE_LABELS[state] for state in states],
                series=[
                    Series(
                        "Marketing-sourced", [sums[state]["marketing"] or 0 for state in states]
                    ),
                    Series("Sales-sourced", [sums[state]["sales"] or 0 for state in states]),
                ],
                stacked=True,
            )
        ],
        tables=[
            Table(
                "deals",
                "My deals, newest first",
                [
                    Column("Deal"),
                    Column("Organization"),
                    Column("Amount", "money"),
                    Column("State"),
                    Column("Source"),
                    Column("Created"),
                ],
                rows,
                more_url=reverse("deals"),
                more_label="Every deal",
                total=total,
            )
        ],
    )


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
        table = next(table for table in builder(query).tables if table.key == wanted)
        return _csv(table, board, query.dates)
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
