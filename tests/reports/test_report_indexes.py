"""The funnel's live parts and the rep's deals read their rows through an index.

The stages, the leaks and a rep's deal list read deals, handoffs and qualifications live
on every request; at ten million touches a walk over every deal or handoff misses the
report's target. Each of their queries on those tables is planned here (PostgreSQL, with
sequential scans priced out, so the plan shows what the indexes allow) and must bound
every read of them by an index condition: none reads the whole table.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from reports import metrics, selectors_sales

from .conftest import FROZEN

pytestmark = [pytest.mark.django_db, pytest.mark.postgres, FROZEN]

LIVE_TABLES = {"handoff_deal", "handoff_handoff", "handoff_qualification"}


@pytest.fixture(autouse=True)
def _computed_afresh(settings: Any) -> None:
    settings.REPORT_CACHE_SECONDS = 0


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _plans(run: Callable[[], object]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each SELECT ``run`` makes, with each node of its plan."""
    with CaptureQueriesContext(connection) as captured:
        run()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for query in captured.captured_queries:
            sql = query["sql"]
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
            plan = cursor.fetchone()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            for node in _nodes(plan[0]["Plan"]):
                yield sql, node


def unbounded_reads(run: Callable[[], object]) -> list[str]:
    """The reads of deals, handoffs and qualifications, among the queries ``run`` makes,
    that no index condition bounds (a sequential scan, or an index walked whole)."""
    return [
        f"{node['Node Type']} on {node['Relation Name']}: {sql}"
        for sql, node in _plans(run)
        if node.get("Relation Name") in LIVE_TABLES
        and "Index Cond" not in node
        and "Recheck Cond" not in node
    ]


STAGES_AND_LEAKS = {
    "stage medians": metrics.median_days_in_stage,
    "leaks": metrics.leakage,
    "people": metrics.people,
}


def indexes_used(run: Callable[[], object]) -> set[str]:
    return {node["Index Name"] for _, node in _plans(run) if "Index Name" in node}


# Each part of the funnel, and the indexes it must read through (besides bounding every
# read of the live tables).
FUNNEL_PARTS: dict[str, tuple[Callable[..., object], set[str]]] = {
    "stage medians": (
        metrics.median_days_in_stage,
        {"handoff_time", "handoff_decided_time", "qualification_time"},
    ),
    "leaks": (metrics.leakage, {"deal_state_time", "qualification_time", "handoff_decided_time"}),
    "people": (metrics.people, {"handoff_time", "handoff_decided_time", "qualification_time"}),
}


@pytest.mark.parametrize("name", FUNNEL_PARTS)
def test_the_funnel_and_its_leaks_read_deals_handoffs_and_qualifications_by_index(
    record: Any, name: str
) -> None:
    today = timezone.localdate()
    start = today - timedelta(days=364)
    part, indexes = FUNNEL_PARTS[name]
    assert unbounded_reads(lambda: part(start, today)) == []
    assert indexes <= indexes_used(lambda: part(start, today))


def test_a_reps_deals_are_read_by_owner_and_time(record: Any, users: Any) -> None:
    today = timezone.localdate()
    rep = users["sales_rep"]

    def deals() -> object:
        return selectors_sales.deals_owned(rep, today - timedelta(days=364), today, limit=10)

    assert unbounded_reads(deals) == []
    # Owner and time together: the rep's deals of the range, not every deal of theirs.
    assert "deal_owner_time" in indexes_used(deals)
