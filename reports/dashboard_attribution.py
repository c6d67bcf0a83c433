"""The dashboards' attribution sections: one model's credit by a grouping, attribution
reconciled with contribution, all models side by side, and campaign ROI."""

from __future__ import annotations

from leadrecord.roles import Role, user_has_role

from . import metrics, selectors
from .charts import Series, bar_chart
from .dashboard_sections import MODEL_LABELS, Query
from .dashboard_tables import Column, Section, Table
from .forms import GROUPING_LABELS
from .models import AttributionModel
from .reconciliation import reconciliation


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
        freshness=query.attribution_freshness,
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
        freshness=query.attribution_freshness,
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
        freshness=query.attribution_freshness,
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
        freshness=query.attribution_freshness,
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
