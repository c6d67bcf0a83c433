"""The marketer's and the sales rep's own sections: what sales returned, the queue waiting
for sales, and a rep's deals (from ``reports.selectors_sales``)."""

from __future__ import annotations

from django.urls import reverse

from handoff import selectors as handoff_selectors

from . import dashboard_tables, selectors_sales
from .charts import Series, bar_chart
from .dashboard_sections import SOURCE_LABELS, STATE_LABELS, Query
from .dashboard_tables import Column, Link, Section, Table

# The most recent returned handoffs and queue entries shown on a dashboard.
RECENT_SHOWN = 10


def returned_section(query: Query) -> Section:
    returned = selectors_sales.returned_in(query.user, query.start, query.end, recent=RECENT_SHOWN)
    ordered = returned.reasons
    return Section(
        key="returned",
        title="Returned to marketing",
        intro=(
            f"{returned.total:,} handoffs came back from sales in these days, "
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
                    for handoff in returned.recent
                ],
                more_url=reverse("handoffs-returned"),
                more_label="Every returned handoff",
            ),
        ],
    )


def queue_section(query: Query) -> Section:
    queue = selectors_sales.queue_summary(query.user, shown=RECENT_SHOWN)
    states = queue.states
    return Section(
        key="queue",
        title="My queue",
        intro=(
            f"{queue.total:,} people are waiting for an answer from sales: "
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
                    for handoff in queue.waiting
                ],
                more_url=reverse("handoff-queue"),
                more_label="Open the queue to accept or reject",
            )
        ],
    )


def deals_section(query: Query) -> Section:
    # The page shows the first rows (the table's own limit, read when the page is built).
    own = selectors_sales.deals_owned(
        query.user,
        query.start,
        query.end,
        limit=None if query.every_row else dashboard_tables.ROWS_SHOWN,
    )
    rows = [
        [
            Link(deal.name, reverse("deal", args=[deal.pk])),
            deal.organization.name,
            deal.amount,
            STATE_LABELS.get(deal.state, deal.state),
            SOURCE_LABELS.get(deal.source, deal.source),
            f"{deal.occurred_at:%Y-%m-%d}",
        ]
        for deal in own.deals
    ]
    return Section(
        key="deals",
        title="My deals",
        intro=f"{own.total:,} deals you own were created in these days.",
        charts=[
            bar_chart(
                title="My deals' amounts by state and source",
                labels=[STATE_LABELS[sums.state] for sums in own.states],
                series=[
                    Series("Marketing-sourced", [sums.marketing for sums in own.states]),
                    Series("Sales-sourced", [sums.sales for sums in own.states]),
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
                total=own.total,
            )
        ],
    )
