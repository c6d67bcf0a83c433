"""What a report reads from a state of the aggregates or a complete run is read once per
process (``reports.per_state``), and a new state or run is read afresh: the figures a
process keeps equal a fresh read's after inserts, merges, erasures and wins."""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from contacts.models import Contact
from contacts.services import contact_erase, contact_merge
from reports import metrics
from reports.aggregates import people_aggregates_update
from reports.metrics_attribution import attribution_by_model, campaign_roi
from reports.models import PeopleRefresh, UncreditedMark
from reports.per_state import KEPT_ANSWERS, per_state_forget, state_read
from reports.reconciliation import reconciliation
from reports.runs import run_execute, run_request
from reports.selectors import attribution_rows, run_latest_complete
from reports.snapshot import consistent_read
from tests.factories import contact_make

from .conftest import DAY, FROZEN, SYSTEM, touch, won_deal

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True), FROZEN]

KEPT_TABLES = (
    "reports_firsttouchhour",
    "reports_touchdaycount",
    "reports_customerdaycount",
    "reports_createddaycount",
    "reports_salesdaily",
    "reports_attributiondaily",
)


def _year() -> tuple[Any, Any]:
    today = timezone.localdate()
    return today - 364 * DAY, today


def _figures() -> dict[str, object]:
    """Every report that reads a state's or a run's tables, in one snapshot."""
    start, end = _year()
    with consistent_read():
        return {
            "funnel": metrics.funnel(start, end),
            "contribution": metrics.contribution(start, end),
            "lifetime": metrics.lifetime(start, end),
            "reconciliation": reconciliation(start, end),
            "models": attribution_by_model(start, end, "channel"),
            "campaigns": campaign_roi(start, end, "linear"),
            "attribution": _credit_rows(start, end),
        }


def _credit_rows(start: Any, end: Any) -> object:
    run = run_latest_complete()
    if run is None:
        return None
    return attribution_rows(run, model="linear", group_by="channel", start=start, end=end)


def _fresh() -> dict[str, object]:
    per_state_forget()
    return _figures()


def _kept_tables_read(queries: CaptureQueriesContext) -> list[str]:
    return [
        table
        for table in KEPT_TABLES
        if any(f'"{table}"' in query["sql"] for query in queries.captured_queries)
    ]


@pytest.fixture
def cache_off(settings: Any) -> None:
    settings.REPORT_CACHE_SECONDS = 0  # what every request costs while events stream in


def _run() -> None:
    run_execute(run_id=run_request(trigger="manual")[0].pk)


def test_a_state_and_a_run_are_read_once_per_process(
    record: dict[str, Contact], cache_off: None
) -> None:
    people_aggregates_update()
    _run()
    first = _fresh()
    with CaptureQueriesContext(connection) as queries:
        again = _figures()
    assert again == first
    assert _kept_tables_read(queries) == []


def test_kept_figures_equal_a_fresh_read_after_every_kind_of_change(
    record: dict[str, Contact], cache_off: None
) -> None:
    """After touches, a new person, a merge, an erasure and a win (each followed by an
    update, so a new state, and a run), the figures read through what the process kept
    equal those read afresh, and they moved."""
    people_aggregates_update()
    _run()
    before = _figures()
    changes = [
        lambda: touch(record["cy"], "email", 2 * DAY),
        lambda: touch(record["bo"], "web", 400 * DAY),  # an earlier first touch
        lambda: contact_merge(keep=record["ada"], merge=record["bo"], actor=SYSTEM),
        lambda: contact_erase(contact=record["cy"], actor=SYSTEM),
        lambda: won_deal([record["ada"]], amount="250.00", opened=5 * DAY, won=DAY, name="More"),
    ]
    for change in changes:
        change()
        people_aggregates_update()
        _run()
        kept = _figures()
        assert kept == _fresh()
    assert kept != before


def test_between_states_the_live_parts_still_move_the_figures(
    record: dict[str, Contact], cache_off: None
) -> None:
    """A touch after the state is counted live on top of the kept part, at once."""
    people_aggregates_update()
    start, end = _year()
    engaged = metrics.people(start, end).engaged
    newcomer = contact_make(organization="initech.example")
    touch(newcomer, "web", timedelta(hours=1))
    assert metrics.people(start, end).engaged == engaged + 1
    assert _figures() == _fresh()


def test_a_runs_note_of_uncredited_sales_is_kept_once_written(
    record: dict[str, Contact], cache_off: None
) -> None:
    """Before the report update notes the run's uncredited sales, reconciliation searches
    for them (and keeps nothing); once noted, the note is read once per process."""
    people_aggregates_update()
    _run()
    run = run_latest_complete()
    assert run is not None and not UncreditedMark.objects.filter(run_id=run.pk).exists()
    before = _fresh()
    again = _figures()
    people_aggregates_update()  # notes the run's uncredited sales
    assert UncreditedMark.objects.filter(run_id=run.pk).exists()
    noted = _figures()
    with CaptureQueriesContext(connection) as queries:
        kept = _figures()
    assert before == again
    assert kept == noted == _fresh()
    assert kept["reconciliation"] == before["reconciliation"]
    assert not any("reports_uncredited" in query["sql"] for query in queries.captured_queries)


def test_the_process_keeps_a_bounded_number_of_answers(
    record: dict[str, Contact], cache_off: None
) -> None:
    state = people_aggregates_update()
    assert isinstance(state, PeopleRefresh)
    for key in range(KEPT_ANSWERS + 10):
        assert state_read(state, key, functools.partial(int, key)) == key
    assert state_read(state, KEPT_ANSWERS + 9, lambda: -1) == KEPT_ANSWERS + 9  # kept
    assert state_read(state, 0, lambda: -1) == -1  # the oldest went


def test_a_newer_state_drops_the_answers_kept_for_the_older_ones(
    record: dict[str, Contact], cache_off: None
) -> None:
    older = people_aggregates_update()
    assert isinstance(older, PeopleRefresh)
    assert state_read(older, "figure", lambda: 1) == 1
    assert state_read(older, "figure", lambda: 2) == 1  # kept
    touch(record["cy"], "web", DAY)
    newer = people_aggregates_update()
    assert isinstance(newer, PeopleRefresh) and newer.pk > older.pk
    assert state_read(newer, "figure", lambda: 3) == 3
    assert state_read(older, "figure", lambda: 4) == 4  # read again: it went
