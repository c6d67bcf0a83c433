"""Attribution runs: read the record, compute every model, write the credits, swap atomically.

One run at a time: the run holds a lock (a PostgreSQL advisory lock on its
session, released if the process dies; a process-wide lock in the embedded
mode). The credits and the flip to ``complete`` are one transaction, so a
reader (``selectors.run_latest_complete``) sees either the previous run or the
whole new one. A run interrupted midway (worker killed) is found ``running``
with nobody holding the lock by the next attempt, marked ``failed``, and a
fresh run takes its place.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from handoff.models import DEFAULT_LOOKBACK_DAYS
from handoff.scoring import ruleset_active
from leadrecord.bulk import rows_copy
from leadrecord.ledger import Actor, ledger_append, ledger_head_seq
from leadrecord.models import LedgerAction

from . import credit_store
from .aggregates import people_aggregates_refresh
from .attribution_credits import (
    UNALLOCATED_CHANNEL_ID,
    UNALLOCATED_TEAM,
    CreditBlock,
    credits_compute,
)
from .models import AttributionDaily, AttributionRun, RunStatus
from .run_input import RunInput, run_input_read

logger = logging.getLogger(__name__)

# Any fixed 64-bit number names the advisory lock; this one spells "ATTRIB".
RUN_LOCK_KEY = 0x415454524942
_process_lock = threading.Lock()


@contextmanager
def _run_lock() -> Iterator[bool]:
    """Try to take the run lock; yields whether it was taken."""
    # A PostgreSQL feature, not a speed-up: the advisory lock holds across the web and
    # worker processes; the embedded SQLite default runs in one process, where a
    # thread lock is enough.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [RUN_LOCK_KEY])
            taken = bool(cursor.fetchone()[0])
        try:
            yield taken
        finally:
            if taken:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [RUN_LOCK_KEY])
        return
    taken = _process_lock.acquire(blocking=False)
    try:
        yield taken
    finally:
        if taken:
            _process_lock.release()


def run_request(*, user: User | None = None, trigger: str = "api") -> tuple[AttributionRun, bool]:
    """A queued run, or the one already queued or running (and False: nothing new)."""
    with transaction.atomic():
        in_flight = (
            AttributionRun.objects.select_for_update()
            .filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
            .order_by("id")
            .first()
        )
        if in_flight is not None:
            return in_flight, False
        run = AttributionRun.objects.create(
            status=RunStatus.QUEUED,
            requested_by=user,
            trigger=trigger,
            created_at=timezone.now(),
        )
    return run, True


def _fail(run: AttributionRun, error: str) -> None:
    AttributionRun.objects.filter(pk=run.pk).update(
        status=RunStatus.FAILED, error=error[:4000], finished_at=timezone.now()
    )
    run.refresh_from_db()


def run_execute(*, run_id: int) -> AttributionRun:
    """Carry out a queued run. Safe to call twice: a finished run is left as it is."""
    run = AttributionRun.objects.get(pk=run_id)
    if run.status in (RunStatus.COMPLETE, RunStatus.FAILED):
        return run
    with _run_lock() as taken:
        if not taken:
            # The lock holder is carrying out the one run in flight (run_request never
            # queues a second): this call, a duplicate delivery, leaves it to them.
            run.refresh_from_db()
            return run
        # Under the lock, a run still marked running was interrupted.
        interrupted = list(AttributionRun.objects.filter(status=RunStatus.RUNNING))
        for stale in interrupted:
            _fail(stale, "Interrupted: the process running it stopped before it finished.")
            _discard(stale)
        run.refresh_from_db()
        if run.status == RunStatus.FAILED:
            # This very run was the interrupted one: a fresh run takes its place.
            run = AttributionRun.objects.create(
                status=RunStatus.QUEUED,
                requested_by=run.requested_by,
                trigger="retry",
                created_at=timezone.now(),
            )
        return _run_locked(run)


def _run_locked(run: AttributionRun) -> AttributionRun:
    ruleset = ruleset_active()
    run.status = RunStatus.RUNNING
    run.started_at = timezone.now()
    run.ruleset_version = ruleset.version if ruleset else None
    run.lookback_days = ruleset.lookback_days if ruleset else DEFAULT_LOOKBACK_DAYS
    # Read before the record: whatever the ledger holds after it counts as a change since.
    run.ledger_mark = ledger_head_seq()
    run.save(
        update_fields=["status", "started_at", "ruleset_version", "lookback_days", "ledger_mark"]
    )
    actor = Actor.of(run.requested_by) if run.requested_by_id else Actor.system("attribution")
    try:
        # As of the moment the run started (recorded): the same run reads the same paths.
        data = run_input_read(lookback_days=run.lookback_days, now=run.started_at)
        blocks = credits_compute(data)
        credit_store.staging_create(run.pk)
        daily = _credits_write(run, data, blocks)
        credit_store.staging_index(run.pk)
        with transaction.atomic():
            # The credits become the run's partition and the run complete together:
            # readers see the previous run until this transaction commits.
            credit_store.staging_attach(run.pk)
            _daily_write(run, daily)
            # The people counts' aggregates, rebuilt with the credits: both become
            # visible together when this transaction commits.
            people_aggregates_refresh()
            run.status = RunStatus.COMPLETE
            run.conversions = data.conversions
            run.touches = data.touches
            run.model_names = [block.model for block in blocks if not block.unavailable]
            # A model that could not be computed is named with its reason: readers
            # answer it with that reason, never with an empty report.
            run.models_unavailable = {
                block.model: block.unavailable for block in blocks if block.unavailable
            }
            run.unallocated = {
                block.model: {str(channel): amount for channel, amount in block.unallocated.items()}
                for block in blocks
                if block.unallocated
            }
            run.input_digest = data.digest()
            run.save()
            ledger_append(
                actor=actor,
                action=LedgerAction.ATTRIBUTION_RUN,
                subject_type="attribution_run",
                subject_id=run.pk,
                after={
                    "conversions": run.conversions,
                    "touches": run.touches,
                    "models": run.model_names,
                    "models_unavailable": run.models_unavailable,
                    "ruleset_version": run.ruleset_version,
                    "lookback_days": run.lookback_days,
                    "input_digest": run.input_digest,
                },
            )
    except Exception as error:
        logger.exception("attribution run %s failed", run.pk)
        _discard(run)
        _fail(run, f"{type(error).__name__}: {error}")
        return run
    # After the commit: the run's time includes it.
    run.finished_at = timezone.now()
    AttributionRun.objects.filter(pk=run.pk).update(finished_at=run.finished_at)
    try:
        credit_store.credits_retire(keep=settings.ATTRIBUTION_RUNS_KEPT)
    except DatabaseError:
        # The run is complete and served; old credits wait for the next run's retirement.
        logger.exception("attribution run %s: dropping old runs' credits failed", run.pk)
    return run


def _discard(run: AttributionRun) -> None:
    """Whatever a failed run loaded, dropped (it never became visible)."""
    try:
        credit_store.staging_drop(run.pk)
    except DatabaseError:
        logger.exception("attribution run %s: dropping its credits failed", run.pk)


def _day_numbers(converted_at: np.ndarray) -> np.ndarray:
    """Each conversion's day in the reporting time zone, as a proleptic ordinal."""
    zone = ZoneInfo(settings.TIME_ZONE)
    return np.array(
        [
            datetime.fromtimestamp(float(moment), tz=UTC).astimezone(zone).toordinal()
            for moment in converted_at.tolist()
        ],
        dtype=np.int64,
    )


_DAILY_COLUMNS = (
    "run_id",
    "model",
    "day",
    "channel_id",
    "campaign_id",
    "team",
    "credit",
    "conversions",
)


def _credits_write(run: AttributionRun, data: RunInput, blocks: list[CreditBlock]) -> DailySums:
    """Load the credits per (model, conversion, channel, campaign) into the run's table;
    their sums per (model, day, channel, campaign), to be written at the swap.

    Column-wise from the arrays: a run at scale writes millions of credit rows, so no
    Python object is made per row (``credit_store`` loads them in bounded chunks).
    """
    team = {**data.channel_team, UNALLOCATED_CHANNEL_ID: UNALLOCATED_TEAM}
    days = _day_numbers(data.converted_at)
    loaded = 0
    daily = DailySums()
    for model_index, block in enumerate(blocks):
        if not block.rows:
            continue
        columns = credit_store.CreditColumns(
            model=block.model,
            sale_event_id=data.sale_event_id[block.conversion],
            deal_id=data.deal_id[block.conversion],
            channel=block.channel,
            campaign=block.campaign,
            credit=block.credit,
            share=block.share,
            converted_at=data.converted_at[block.conversion],
            team_of_channel=team,
        )
        loaded = credit_store.credits_load(run.pk, [columns], first_row=loaded)
        daily.add(model_index, block.model, days[block.conversion], block, team)
    return daily


class DailySums:
    """Credit rows summed per (model, day, channel, campaign), gathered block by block."""

    def __init__(self) -> None:
        self.keys: list[np.ndarray] = []
        self.credit: list[np.ndarray] = []
        self.share: list[np.ndarray] = []
        self.models: dict[int, str] = {}
        self.team: dict[int, str] = {}

    def add(
        self,
        model_index: int,
        model: str,
        day: np.ndarray,
        block: CreditBlock,
        team: dict[int, str],
    ) -> None:
        self.models[model_index] = model
        self.team.update(team)
        model_column = np.full(day.size, model_index, dtype=np.int64)
        keys, credit, share = _grouped(
            np.stack((model_column, day, block.channel, block.campaign)), block.credit, block.share
        )
        self.keys.append(keys)
        self.credit.append(credit)
        self.share.append(share)

    def rows(self, run_id: int) -> list[tuple[object, ...]]:
        if not self.keys:
            return []
        keys, credit, share = _grouped(
            np.concatenate(self.keys, axis=1),
            np.concatenate(self.credit),
            np.concatenate(self.share),
        )
        return [
            (
                run_id,
                self.models[m],
                date.fromordinal(d),
                ch,
                cp or None,
                self.team.get(ch, ""),
                cr,
                sh,
            )
            for m, d, ch, cp, cr, sh in zip(
                keys[0].tolist(),
                keys[1].tolist(),
                keys[2].tolist(),
                keys[3].tolist(),
                credit.tolist(),
                share.tolist(),
                strict=True,
            )
        ]


def _grouped(
    keys: np.ndarray, credit: np.ndarray, share: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct key columns (in order) and the sums of ``credit`` and ``share`` of each,
    in one sort."""
    if not credit.size:
        return keys, credit, share
    order = np.lexsort(keys[::-1])
    ordered = keys[:, order]
    starts = np.flatnonzero(
        np.concatenate(([True], np.any(ordered[:, 1:] != ordered[:, :-1], axis=0)))
    )
    return (
        ordered[:, starts],
        np.add.reduceat(credit[order], starts),
        np.add.reduceat(share[order], starts),
    )


def _daily_write(run: AttributionRun, daily: DailySums) -> None:
    rows_copy(AttributionDaily, _DAILY_COLUMNS, daily.rows(run.pk))
