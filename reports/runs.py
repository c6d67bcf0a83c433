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
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.utils import timezone

from handoff.models import DEFAULT_LOOKBACK_DAYS
from handoff.scoring import ruleset_active
from leadrecord.bulk import rows_copy
from leadrecord.ledger import Actor, ledger_append

from .attribution_credits import CreditBlock, credits_compute
from .models import AttributionCredit, AttributionDaily, AttributionRun, RunStatus
from .run_input import RunInput, run_input_read

logger = logging.getLogger(__name__)

# Any fixed 64-bit number names the advisory lock; this one spells "ATTRIB".
RUN_LOCK_KEY = 0x415454524942
_process_lock = threading.Lock()


@contextmanager
def _run_lock() -> Iterator[bool]:
    """Try to take the run lock; yields whether it was taken."""
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
            _fail(run, "Another attribution run was in progress; this one did not start.")
            return run
        # Under the lock, a run still marked running was interrupted.
        interrupted = list(AttributionRun.objects.filter(status=RunStatus.RUNNING))
        for stale in interrupted:
            _fail(stale, "Interrupted: the process running it stopped before it finished.")
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
    run.save(update_fields=["status", "started_at", "ruleset_version", "lookback_days"])
    actor = Actor.of(run.requested_by) if run.requested_by_id else Actor.system("attribution")
    try:
        data = run_input_read(lookback_days=run.lookback_days)
        blocks = credits_compute(data)
        with transaction.atomic():
            _credits_write(run, data, blocks)
            run.status = RunStatus.COMPLETE
            run.finished_at = timezone.now()
            run.conversions = data.conversions
            run.touches = data.touches
            run.model_names = [block.model for block in blocks]
            run.input_digest = data.digest()
            run.save()
            ledger_append(
                actor=actor,
                action="attribution.run",
                subject_type="attribution_run",
                subject_id=run.pk,
                after={
                    "conversions": run.conversions,
                    "touches": run.touches,
                    "models": run.model_names,
                    "ruleset_version": run.ruleset_version,
                    "lookback_days": run.lookback_days,
                    "input_digest": run.input_digest,
                },
            )
    except Exception as error:
        logger.exception("attribution run %s failed", run.pk)
        _fail(run, f"{type(error).__name__}: {error}")
    return run


def _days(converted_at: np.ndarray) -> list[datetime]:
    """Each conversion's day in the reporting time zone."""
    zone = ZoneInfo(settings.TIME_ZONE)
    return [
        datetime.fromtimestamp(float(moment), tz=UTC).astimezone(zone).date()  # type: ignore[misc]
        for moment in converted_at
    ]


def _credits_write(run: AttributionRun, data: RunInput, blocks: list[CreditBlock]) -> None:
    """Credits per (model, conversion, channel, campaign), and their sums per day."""
    moments = [datetime.fromtimestamp(float(moment), tz=UTC) for moment in data.converted_at]
    days = _days(data.converted_at)
    sale_ids = data.sale_event_id.tolist()
    deal_ids = data.deal_id.tolist()
    team = data.channel_team
    credit_rows = []
    daily: dict[tuple[str, object, int, int], list[float]] = {}
    for block in blocks:
        for conversion, channel, campaign, credit, share in zip(
            block.conversion.tolist(),
            block.channel.tolist(),
            block.campaign.tolist(),
            block.credit.tolist(),
            block.share.tolist(),
            strict=True,
        ):
            credit_rows.append(
                (
                    run.pk,
                    block.model,
                    sale_ids[conversion],
                    deal_ids[conversion],
                    channel,
                    campaign or None,
                    team.get(channel, ""),
                    credit,
                    share,
                    moments[conversion],
                )
            )
            sums = daily.setdefault((block.model, days[conversion], channel, campaign), [0.0, 0.0])
            sums[0] += credit
            sums[1] += share
    rows_copy(
        AttributionCredit,
        (
            "run_id",
            "model",
            "sale_event_id",
            "deal_id",
            "channel_id",
            "campaign_id",
            "team",
            "credit",
            "conversion_share",
            "converted_at",
        ),
        credit_rows,
    )
    rows_copy(
        AttributionDaily,
        ("run_id", "model", "day", "channel_id", "campaign_id", "team", "credit", "conversions"),
        [
            (run.pk, model, day, channel, campaign or None, team.get(channel, ""), *sums)
            for (model, day, channel, campaign), sums in daily.items()
        ],
    )
