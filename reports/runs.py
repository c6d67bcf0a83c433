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

import dataclasses
import logging
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from celery import chord
from django.conf import settings
from django.contrib.auth.models import User
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from contacts.models import Channel
from handoff.models import DEFAULT_LOOKBACK_DAYS
from handoff.selectors import ruleset_active
from leadrecord.bulk import rows_copy
from leadrecord.ledger import Actor, ledger_append, ledger_head_seq
from leadrecord.models import LedgerAction

from . import credit_store
from .attribution.engine import MARKOV, MODEL_NAMES
from .attribution_credits import (
    UNALLOCATED_CHANNEL_ID,
    UNALLOCATED_TEAM,
    CreditBlock,
    GlobalCounts,
    RunContext,
    credits_compute_part,
)
from .models import AttributionDaily, AttributionRun, AttributionRunPartition, RunStatus
from .run_input import (
    InputDigest,
    RunInput,
    analytics_withdrawn_ids,
    conversion_bounds,
    nonconverting_read,
    run_input_read,
)

logger = logging.getLogger(__name__)

# How often a run carried out as a chord looks whether its callback has finished it.
_CHORD_POLL_SECONDS = 0.2
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
    try:
        if _chord_enabled():
            plan = run_plan(run)
            credit_store.staging_create(run.pk)
            _chord_run(run, plan)
        else:
            with tempfile.TemporaryDirectory(prefix="attribution-run-") as spool:
                # In one process the partitions' input is read once: the global pass
                # keeps each on disk for its partition.
                plan = run_plan(run, spool=spool)
                credit_store.staging_create(run.pk)
                for index in range(len(plan.bounds)):
                    partition_load(run=run, plan=plan, index=index)
            run_finish(run=run, plan=plan)
    except Exception as error:
        logger.exception("attribution run %s failed", run.pk)
        _discard(run)
        _fail(run, f"{type(error).__name__}: {error}")
    run.refresh_from_db()
    return run


def _chord_enabled() -> bool:
    return bool(settings.ATTRIBUTION_CHORD and settings.CELERY_BROKER_URL)


def _chord_run(run: AttributionRun, plan: RunPlan) -> None:
    """The partitions as a Celery chord (any number of workers), the swap as its callback;
    this process keeps the run lock and waits for the run to finish."""
    from .tasks import attribution_finish_task, attribution_partition_task

    plan_json = plan.as_json()
    result = chord(
        attribution_partition_task.s(run.pk, plan_json, index) for index in range(len(plan.bounds))
    )(attribution_finish_task.si(run.pk, plan_json))
    deadline = time.monotonic() + settings.CELERY_TASK_TIME_LIMIT
    while True:
        status = AttributionRun.objects.values_list("status", flat=True).get(pk=run.pk)
        if status != RunStatus.RUNNING:
            return
        failed = [
            part for part in (result.parent.results if result.parent else []) if part.failed()
        ]
        if failed or result.failed():
            raise RuntimeError(f"a partition task failed: {(failed or [result])[0].result!r}")
        if time.monotonic() > deadline:
            raise TimeoutError("the run's partitions did not finish in the task time limit")
        time.sleep(_CHORD_POLL_SECONDS)


def partition_load(*, run: AttributionRun, plan: RunPlan, index: int) -> PartitionResult:
    """Carry out one partition of a running run; safe to call twice (its rows and its
    record, ``AttributionRunPartition``, are written in one transaction)."""
    done = AttributionRunPartition.objects.filter(run=run, index=index).first()
    if done is not None:
        return PartitionResult.from_json(done.result)
    with transaction.atomic():
        # A duplicate carried out at the same time waits here, then finds this one's.
        marker, created = AttributionRunPartition.objects.get_or_create(run=run, index=index)
        if not created:
            return PartitionResult.from_json(marker.result)
        result = partition_execute(run=run, plan=plan, index=index)
        marker.rows = result.rows
        marker.result = result.as_json()
        marker.save(update_fields=["rows", "result"])
    return result


def run_finish(*, run: AttributionRun, plan: RunPlan) -> None:
    """The swap once every partition is loaded (``run_complete``), then the run's time
    (after the commit) and the old runs' credits dropped. A run no longer running is
    left as it is."""
    if run.status != RunStatus.RUNNING:
        return
    markers = list(
        AttributionRunPartition.objects.filter(run=run)
        .order_by("index")
        .values_list("index", "result")
    )
    if [index for index, _ in markers] != list(range(len(plan.bounds))):
        raise RuntimeError(f"attribution run #{run.pk} is missing partitions")
    run_complete(run, plan, [PartitionResult.from_json(result) for _, result in markers])
    # After the commit: the run's time includes it.
    run.finished_at = timezone.now()
    AttributionRun.objects.filter(pk=run.pk).update(finished_at=run.finished_at)
    AttributionRunPartition.objects.filter(run=run).delete()
    try:
        credit_store.credits_retire(keep=settings.ATTRIBUTION_RUNS_KEPT)
    except DatabaseError:
        # The run is complete and served; old credits wait for the next run's retirement.
        logger.exception("attribution run %s: dropping old runs' credits failed", run.pk)


def partition_task_body(*, run_id: int, plan: dict[str, Any], index: int) -> int:
    """A partition task: the rows it loaded (none for a run no longer running)."""
    run = AttributionRun.objects.get(pk=run_id)
    if run.status != RunStatus.RUNNING:
        return 0
    return partition_load(run=run, plan=RunPlan.from_json(plan), index=index).rows


def finish_task_body(*, run_id: int, plan: dict[str, Any]) -> str:
    """The chord's callback: the swap; a failure fails the run and drops its rows."""
    run = AttributionRun.objects.get(pk=run_id)
    try:
        run_finish(run=run, plan=RunPlan.from_json(plan))
    except Exception as error:
        logger.exception("attribution run %s failed", run.pk)
        _discard(run)
        _fail(run, f"{type(error).__name__}: {error}")
    run.refresh_from_db()
    return str(run.status)


def _discard(run: AttributionRun) -> None:
    """Whatever a failed run loaded, dropped (it never became visible)."""
    try:
        AttributionRunPartition.objects.filter(run=run).delete()
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


@dataclass
class RunPlan:
    """A run cut into partitions, with what every partition needs from all of them."""

    bounds: list[tuple[int, int]]  # per partition, its sale event ids (from, up to)
    context: RunContext
    conversions: int
    touches: int
    input_digest: str
    # A folder holding each partition's input as read by the global pass (one process).
    spool: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "bounds": [list(bound) for bound in self.bounds],
            "context": self.context.as_json(),
            "conversions": self.conversions,
            "touches": self.touches,
            "input_digest": self.input_digest,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunPlan:
        return cls(
            bounds=[(int(lo), int(hi)) for lo, hi in data["bounds"]],
            context=RunContext.from_json(data["context"]),
            conversions=int(data["conversions"]),
            touches=int(data["touches"]),
            input_digest=str(data["input_digest"]),
        )


@dataclass
class PartitionResult:
    """What a partition wrote: its daily sums (for the swap) and the models it could not
    compute, with why."""

    rows: int
    daily_keys: list[list[int]]  # (model index, day, channel, campaign) columns
    daily_credit: list[float]
    daily_share: list[float]
    unavailable: dict[str, str]

    def as_json(self) -> dict[str, Any]:
        # Shallow: dataclasses.asdict copies each of the daily sums' lists item by item.
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PartitionResult:
        return cls(**data)


def _as_of(run: AttributionRun) -> datetime:
    if run.started_at is None:
        raise ValueError(f"attribution run #{run.pk} has not started")
    return run.started_at


def run_plan(run: AttributionRun, *, spool: str = "") -> RunPlan:
    """The pass over the whole record before any partition: the partitions' bounds, the
    data-driven models' global figures (``GlobalCounts``), the input's size and digest.

    It holds a partition's input at a time and a few numbers per conversion. With
    ``spool`` (a folder), each partition's input is kept there for ``partition_execute``.
    """
    lookback_days = int(run.lookback_days or DEFAULT_LOOKBACK_DAYS)
    withdrawn = analytics_withdrawn_ids()
    bounds = conversion_bounds(settings.ATTRIBUTION_PARTITION_CONVERSIONS)
    channels = list(Channel.objects.values_list("id", "team"))
    counts = GlobalCounts(np.array([channel_id for channel_id, _ in channels], dtype=np.int64))
    digest = InputDigest(lookback_days)
    touches = 0
    for index, bound in enumerate(bounds):
        part = run_input_read(
            lookback_days=lookback_days,
            now=_as_of(run),
            sales=bound,
            nonconverting=False,
            withdrawn=withdrawn,
        )
        counts.add_converting(part)
        digest.add_converting(part)
        touches += part.touches
        if spool:
            part.save(Path(spool) / f"{index}.npz")
        del part
    for channel, starts in nonconverting_read(
        now=_as_of(run), lookback_days=lookback_days, withdrawn=withdrawn
    ):
        counts.add_nonconverting(channel, starts)
        digest.add_nonconverting(channel, starts)
        touches += int(channel.size)
    return RunPlan(
        bounds=bounds,
        context=counts.reduce(),
        conversions=digest.conversions,
        touches=touches,
        input_digest=digest.hexdigest(dict(channels)),
        spool=spool,
    )


def partition_execute(*, run: AttributionRun, plan: RunPlan, index: int) -> PartitionResult:
    """Read, compute and load one partition's credits into the run's table."""
    lookback_days = int(run.lookback_days or DEFAULT_LOOKBACK_DAYS)
    spooled = Path(plan.spool) / f"{index}.npz" if plan.spool else None
    if spooled is not None and spooled.exists():
        part = RunInput.load(spooled)
    else:
        part = run_input_read(
            lookback_days=lookback_days,
            now=_as_of(run),
            sales=plan.bounds[index],
            nonconverting=False,
        )
    blocks = credits_compute_part(part, plan.context)
    team = {**part.channel_team, UNALLOCATED_CHANNEL_ID: UNALLOCATED_TEAM}
    days = _day_numbers(part.converted_at)
    loaded = 0
    daily = DailySums()
    for model_index, block in enumerate(blocks):
        if not block.rows:
            continue
        columns = credit_store.CreditColumns(
            model=block.model,
            sale_event_id=part.sale_event_id[block.conversion],
            deal_id=part.deal_id[block.conversion],
            channel=block.channel,
            campaign=block.campaign,
            credit=block.credit,
            share=block.share,
            converted_at=part.converted_at[block.conversion],
            team_of_channel=team,
        )
        loaded = credit_store.credits_load(run.pk, [columns], first_row=loaded, partition=index)
        daily.add(model_index, days[block.conversion], block)
    keys, credit, share = daily.sums()
    return PartitionResult(
        rows=loaded,
        daily_keys=keys.tolist(),
        daily_credit=credit.tolist(),
        daily_share=share.tolist(),
        unavailable={block.model: block.unavailable for block in blocks if block.unavailable},
    )


def run_complete(run: AttributionRun, plan: RunPlan, results: list[PartitionResult]) -> None:
    """The swap: analyze the run's table, attach it, write the daily sums and mark the run
    complete, in one transaction (readers see the previous run until it commits)."""
    unavailable: dict[str, str] = {}
    if plan.context.markov_unavailable:
        unavailable[MARKOV] = plan.context.markov_unavailable
    for result in results:
        for model, reason in result.unavailable.items():
            unavailable.setdefault(model, reason)
    for model in unavailable:
        # A model that failed in one partition is not computed for the run at all.
        credit_store.credits_discard_model(run.pk, model)
    credit_store.staging_analyze(run.pk)
    daily = DailySums()
    for result in results:
        daily.add_sums(
            np.array(result.daily_keys, dtype=np.int64).reshape(4, -1),
            np.array(result.daily_credit, dtype=np.float64),
            np.array(result.daily_share, dtype=np.float64),
        )
    team = {
        **dict(Channel.objects.values_list("id", "team")),
        UNALLOCATED_CHANNEL_ID: UNALLOCATED_TEAM,
    }
    models = [model for model in MODEL_NAMES if model not in unavailable]
    actor = Actor.of(run.requested_by) if run.requested_by_id else Actor.system("attribution")
    with transaction.atomic():
        # The credits become the run's partition and the run complete together:
        # readers see the previous run until this transaction commits.
        credit_store.staging_attach(run.pk)
        rows_copy(
            AttributionDaily,
            _DAILY_COLUMNS,
            [row for row in daily.rows(run.pk, team) if row[1] not in unavailable],
        )
        run.status = RunStatus.COMPLETE
        run.conversions = plan.conversions
        run.touches = plan.touches
        run.model_names = models
        # A model that could not be computed is named with its reason: readers
        # answer it with that reason, never with an empty report.
        run.models_unavailable = {model: unavailable[model] for model in sorted(unavailable)}
        unallocated = plan.context.markov_unallocated
        run.unallocated = (
            {MARKOV: {str(channel): amount for channel, amount in unallocated.items()}}
            if unallocated and MARKOV not in unavailable
            else {}
        )
        run.input_digest = plan.input_digest
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


class DailySums:
    """Credit rows summed per (model index, day, channel, campaign), gathered block by
    block (and partition by partition)."""

    def __init__(self) -> None:
        self.keys: list[np.ndarray] = []
        self.credit: list[np.ndarray] = []
        self.share: list[np.ndarray] = []

    def add(self, model_index: int, day: np.ndarray, block: CreditBlock) -> None:
        model_column = np.full(day.size, model_index, dtype=np.int64)
        self.add_sums(
            np.stack((model_column, day, block.channel, block.campaign)), block.credit, block.share
        )

    def add_sums(self, keys: np.ndarray, credit: np.ndarray, share: np.ndarray) -> None:
        keys, credit, share = _grouped(keys, credit, share)
        self.keys.append(keys)
        self.credit.append(credit)
        self.share.append(share)

    def sums(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.keys:
            return np.zeros((4, 0), dtype=np.int64), np.zeros(0), np.zeros(0)
        return _grouped(
            np.concatenate(self.keys, axis=1),
            np.concatenate(self.credit),
            np.concatenate(self.share),
        )

    def rows(self, run_id: int, team: dict[int, str]) -> list[tuple[object, ...]]:
        keys, credit, share = self.sums()
        return [
            (
                run_id,
                MODEL_NAMES[m],
                date.fromordinal(d),
                ch,
                cp or None,
                team.get(ch, ""),
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
