""" "K changes since" a run, from the report update's notes, equals the count of the ledger.

A seeded random record is written through the services with report updates and
attribution runs at random points; at each check every run's changes since must equal
the ledger entries after its mark that can move a credit, counted one by one.
"""

from __future__ import annotations

from typing import Any

import pytest

from leadrecord.models import LedgerEntry
from reports.aggregates import people_aggregates_update
from reports.change_counts import attribution_relevant, run_mark
from reports.freshness import changes_since
from reports.models import AttributionChangeCount, AttributionRun
from reports.runs import run_execute, run_request
from tests.factories import contact_make

from .conftest import FROZEN
from .test_aggregates import RandomRecord

pytestmark = [pytest.mark.django_db, FROZEN]


@pytest.fixture(autouse=True)
def _computed_afresh(settings: Any) -> None:
    settings.REPORT_CACHE_SECONDS = 0


def run_now() -> AttributionRun:
    run, _ = run_request(trigger="command")
    return run_execute(run_id=run.pk)


def counted(run: AttributionRun) -> int:
    """The changes since the run, one ledger entry at a time."""
    return sum(
        1
        for _ in LedgerEntry.objects.filter(seq__gt=run_mark(run))
        .filter(attribution_relevant())
        .values_list("seq", flat=True)
    )


@pytest.mark.parametrize("seed", range(4))
def test_changes_since_from_the_notes_equal_the_ledger_counted(seed: int) -> None:
    record = RandomRecord(seed)
    for _ in range(4):
        record.person()
    runs: list[AttributionRun] = []
    for _ in range(record.rng.randint(40, 60)):
        record.step()
        draw = record.rng.random()
        if draw < 0.2:
            people_aggregates_update()
        elif draw < 0.26:
            runs.append(run_now())
        if draw < 0.35:
            assert [changes_since(run) for run in runs] == [counted(run) for run in runs]
    people_aggregates_update()
    assert AttributionChangeCount.objects.exists()
    assert [changes_since(run) for run in runs] == [counted(run) for run in runs]


def test_the_first_note_counts_the_ledger_from_its_start() -> None:
    contact = contact_make()
    run = run_now()
    record = RandomRecord(7)
    record.people.append(contact)
    for _ in range(5):
        record.touch()
    people_aggregates_update()  # the first: a rebuild
    note = AttributionChangeCount.objects.get()
    assert note.changes == (
        LedgerEntry.objects.filter(seq__lte=note.ledger_mark).filter(attribution_relevant()).count()
    )
    assert changes_since(run) == counted(run) == 5


def test_notes_no_run_needs_go_and_the_latest_runs_note_stays() -> None:
    record = RandomRecord(3)
    for _ in range(3):
        record.person()
    people_aggregates_update()
    run = run_now()
    for _ in range(6):
        record.touch()
        people_aggregates_update()
    marks = list(AttributionChangeCount.objects.values_list("ledger_mark", flat=True))
    # The note at or before the run's mark, and those after it; none before.
    assert min(marks) <= run_mark(run)
    assert sum(1 for mark in marks if mark <= run_mark(run)) == 1
    later = run_now()
    record.touch()
    people_aggregates_update()
    assert AttributionChangeCount.objects.filter(ledger_mark__lte=run_mark(later)).count() == 1
    assert AttributionChangeCount.objects.count() <= 3
    assert changes_since(later) == counted(later) == 1
    # The older run's notes went: its count is walked, and still the same.
    assert changes_since(run) == counted(run)
