"""A new state of the aggregates carries the live answers kept for the state before over
(``reports.since_state``) when only touches and people were added between the two, and
reads the new state whole after a merge or an erasure: either way the figures equal a
whole read's."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from contacts.models import Contact
from contacts.services import touch_record
from reports import metrics
from reports.aggregates import people_aggregates_refresh, people_aggregates_update
from reports.since_state import since_state_forget

from .conftest import DAY, FROZEN, SYSTEM
from .test_aggregates import RandomRecord, report_figures

pytestmark = [pytest.mark.postgres, pytest.mark.django_db, FROZEN]


@pytest.fixture(autouse=True)
def _computed_afresh(settings: Any) -> None:
    settings.REPORT_CACHE_SECONDS = 0


def _carried_over(queries: CaptureQueriesContext) -> bool:
    """Whether a kept answer was asked again under the new state (its recheck ran)."""
    return any("FROM unnest(" in query["sql"] for query in queries.captured_queries)


def _touch_today(person: Contact, record: RandomRecord) -> None:
    touch_record(
        contact=person,
        channel=record.channels[0],
        occurred_at=timezone.now() - timedelta(minutes=5),
        actor=SYSTEM,
    )


def test_carried_over_answers_equal_a_whole_read_after_inserts_merges_and_erasures() -> None:
    record = RandomRecord(11)
    for _ in range(8):
        record.person()
    for _ in range(20):
        record.touch()
    people_aggregates_refresh()
    today = timezone.localdate()
    report_figures(today)
    carried = whole = 0
    for step in range(18):
        changes = [record.touch, record.touch, record.touch, record.person]
        if step % 6 == 5:
            changes = [record.merge, record.touch]
        elif step % 6 == 2:
            changes = [record.erase, record.touch]
        for change in changes:
            change()
        # Someone new touched today: the live answers under the current state hold them.
        record.person()
        _touch_today(record.people[-1], record)
        report_figures(today)
        people_aggregates_update()
        # Touches after the new state, so that there is something to read live on top.
        record.touch()
        with CaptureQueriesContext(connection) as queries:
            kept = report_figures(today)
        moved = step % 6 in (2, 5)
        assert _carried_over(queries) is not moved, f"step {step}"
        carried += not moved
        whole += moved
        since_state_forget()
        assert report_figures(today) == kept, f"step {step}"
    assert carried and whole


def test_a_back_dated_touch_between_states_moves_the_first_touch_median() -> None:
    """A touch earlier than a person's first, recorded between two states: the new state
    knows it, and the kept answer asked again under it leaves that person out."""
    record = RandomRecord(4)
    for _ in range(4):
        record.person()
    for _ in range(8):
        record.touch()
    people_aggregates_refresh()
    today = timezone.localdate()
    start = today - 400 * DAY
    metrics.median_days_in_stage(start, today)
    touch_record(
        contact=record.living()[0],
        channel=record.channels[0],
        occurred_at=timezone.now() - 300 * DAY,
        actor=SYSTEM,
    )
    metrics.median_days_in_stage(start, today)
    people_aggregates_update()
    record.touch()
    with CaptureQueriesContext(connection) as queries:
        kept = metrics.median_days_in_stage(start, today), metrics.people(start, today)
    assert _carried_over(queries)
    since_state_forget()
    assert (metrics.median_days_in_stage(start, today), metrics.people(start, today)) == kept
