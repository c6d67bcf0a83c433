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
from django.db import connection, transaction
from django.utils import timezone

from handoff.models import DEFAULT_LOOKBACK_DAYS
from handoff.selectors import ruleset_active
from leadrecord.bulk import copy_lines, rows_copy, rows_insert
from leadrecord.ledger import Actor, ledger_append, ledger_head_seq
from leadrecord.models import LedgerAction

from .attribution_credits import (
    UNALLOCATED_CHANNEL_ID,
    UNALLOCATED_TEAM,
    CreditBlock,
    credits_compute,
)
from .models import AttributionCredit, AttributionDaily, AttributionRun, RunStatus
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
        with transaction.atomic():
            _credits_write(run, data, blocks)
            run.status = RunStatus.COMPLETE
            run.finished_at = timezone.now()
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
        _fail(run, f"{type(error).__name__}: {error}")
    return run


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


_CREDIT_COLUMNS = (
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


def _credits_write(run: AttributionRun, data: RunInput, blocks: list[CreditBlock]) -> None:
    """Credits per (model, conversion, channel, campaign), and their sums per day.

    Built column-wise: a run at scale writes about a million credit rows, so
    the per-conversion and per-channel text is made once and each row only
    joins ready-made pieces.
    """
    blocks = [block for block in blocks if block.rows]
    if not blocks:
        return
    model_index = np.repeat(np.arange(len(blocks)), [block.rows for block in blocks])
    conversion = np.concatenate([block.conversion for block in blocks])
    channel = np.concatenate([block.channel for block in blocks])
    campaign = np.concatenate([block.campaign for block in blocks])
    credit = np.concatenate([block.credit for block in blocks])
    share = np.concatenate([block.share for block in blocks])
    models = [block.model for block in blocks]
    team = {**data.channel_team, UNALLOCATED_CHANNEL_ID: UNALLOCATED_TEAM}
    moments = [datetime.fromtimestamp(float(moment), tz=UTC) for moment in data.converted_at]
    # (model index, conversion, channel, campaign, credit, share), one per credit row.
    credit_rows = zip(
        model_index.tolist(),
        conversion.tolist(),
        channel.tolist(),
        campaign.tolist(),
        credit.tolist(),
        share.tolist(),
        strict=True,
    )

    # PostgreSQL: the credit rows go in by COPY, which bench/attribution.py's full run
    # needs; elsewhere (the embedded SQLite default) the same rows by bulk insert.
    if connection.vendor == "postgresql":
        prefix = [f"{run.pk}\t{model}\t" for model in models]
        conversion_text = [
            f"{sale}\t{deal}\t"
            for sale, deal in zip(data.sale_event_id.tolist(), data.deal_id.tolist(), strict=True)
        ]
        moment_text = [moment.isoformat() for moment in moments]
        channel_text = {key: f"{key}\t" for key in np.unique(channel).tolist()}
        team_text = {key: f"{team.get(key, '')}\t" for key in channel_text}
        null = "\\N"
        campaign_text = {
            key: f"{key}\t" if key else f"{null}\t" for key in np.unique(campaign).tolist()
        }
        lines = [
            f"{prefix[m]}{conversion_text[c]}{channel_text[ch]}"
            f"{campaign_text[cp]}{team_text[ch]}{cr!r}\t{sh!r}\t{moment_text[c]}\n"
            for m, c, ch, cp, cr, sh in credit_rows
        ]
        copy_lines(AttributionCredit, _CREDIT_COLUMNS, lines)
        del lines
    else:
        sale_ids, deal_ids = data.sale_event_id.tolist(), data.deal_id.tolist()
        rows_insert(
            AttributionCredit,
            _CREDIT_COLUMNS,
            [
                (
                    run.pk,
                    models[m],
                    sale_ids[c],
                    deal_ids[c],
                    ch,
                    cp or None,
                    team.get(ch, ""),
                    cr,
                    sh,
                    moments[c],
                )
                for m, c, ch, cp, cr, sh in credit_rows
            ],
        )

    # Daily sums: group the rows by (model, day, channel, campaign) in one sort.
    day = _day_numbers(data.converted_at)[conversion]
    order = np.lexsort((campaign, channel, day, model_index))
    keys = np.stack((model_index, day, channel, campaign))[:, order]
    starts = np.flatnonzero(np.concatenate(([True], np.any(keys[:, 1:] != keys[:, :-1], axis=0))))
    credit_sums = np.add.reduceat(credit[order], starts)
    share_sums = np.add.reduceat(share[order], starts)
    first = keys[:, starts]
    rows_copy(
        AttributionDaily,
        _DAILY_COLUMNS,
        [
            (
                run.pk,
                models[m],
                date.fromordinal(d),
                ch,
                cp or None,
                team.get(ch, ""),
                cr,
                sh,
            )
            for m, d, ch, cp, cr, sh in zip(
                first[0].tolist(),
                first[1].tolist(),
                first[2].tolist(),
                first[3].tolist(),
                credit_sums.tolist(),
                share_sums.tolist(),
                strict=True,
            )
        ],
    )
