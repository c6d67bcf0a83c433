"""The dashboards' sections: each builds one part of a page from ``reports.metrics``,
``reports.selectors`` and ``reports.selectors_sales`` for a ``Query`` (the days, the model
and grouping, and the user), and only arranges what they return."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cached_property

from django.contrib.auth.models import User

from handoff import selectors as handoff_selectors
from handoff.models import DealSource, DealState

from . import metrics
from .charts import Series, bar_chart
from .dashboard_tables import Column, Figure, Link, Section, Table
from .forms import DateRange
from .freshness import Freshness, freshness
from .models import AttributionModel

MODEL_LABELS = dict(AttributionModel.choices)
SOURCE_LABELS = dict(DealSource.choices)
STATE_LABELS = dict(DealState.choices)


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

    @cached_property
    def attribution_freshness(self) -> Freshness:
        """Which run the page's attribution figures are as of, read once for all its sections."""
        return freshness()

    @property
    def start(self) -> date:
        return self.dates.start

    @property
    def end(self) -> date:
        return self.dates.end


SectionBuilder = Callable[[Query], Section]


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
