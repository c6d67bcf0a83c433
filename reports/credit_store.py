"""Where a run's credit rows go: a table per run on PostgreSQL, attached whole at the swap.

On PostgreSQL ``reports_attributioncredit`` is partitioned by ``run_id``
(migration 0013). A run creates its own table (``staging_create``), loads it
in bounded chunks by binary COPY straight from the NumPy columns
(``credits_load``: no Python object per row, no index or foreign key to
maintain; the table keeps no index at all, see migration 0016), analyzes it
(``staging_analyze``), and attaches it as
its partition (``staging_attach``) in the transaction that marks the run
complete: until then no reader sees it. A run that fails drops its table
(``staging_drop``); ``credits_retire`` drops old runs' tables whole.

The embedded SQLite default has a plain table: the same calls insert rows
and delete them by run.
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction

from leadrecord.bulk import rows_insert

from .models import AttributionCredit, AttributionDaily, AttributionRun, RunStatus

PARENT = "reports_attributioncredit"
_STAGING = re.compile(rf"^{PARENT}_run_(\d+)$")
# Rows per COPY: bounds the load's buffer (about 140 bytes a row) whatever the run's size.
LOAD_CHUNK_ROWS = 250_000
# A row's id: its run in the high bits, then its partition, then its place there (unique
# while a partition has fewer than 2**24 rows; no sequence to draw from).
_RUN_SHIFT = 40
_PARTITION_SHIFT = 24
# Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
_PG_EPOCH_MICROSECONDS = 946_684_800 * 1_000_000
_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_TRAILER = struct.pack(">h", -1)
_COLUMNS = (
    "id",
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


@dataclass(frozen=True)
class CreditColumns:
    """Credit rows as columns (one entry per row); ``campaign`` 0 stands for none,
    ``converted_at`` is in epoch seconds and ``team`` one string per distinct channel."""

    model: str
    sale_event_id: np.ndarray
    deal_id: np.ndarray
    channel: np.ndarray
    campaign: np.ndarray
    credit: np.ndarray
    share: np.ndarray
    converted_at: np.ndarray
    team_of_channel: dict[int, str]

    @property
    def rows(self) -> int:
        return int(self.sale_event_id.size)


def staging_table(run_id: int) -> str:
    return f"{PARENT}_run_{int(run_id)}"


def partitioned() -> bool:
    """Whether credits live in per-run tables (PostgreSQL) or one plain table."""
    return connection.vendor == "postgresql"


def staging_create(run_id: int) -> None:
    """The run's own table, empty, shaped like the credits table.

    The CHECK constraint is the partition's own bound: PostgreSQL trusts it at the
    attach instead of scanning every row again.
    """
    if not partitioned():
        return
    # With the owner's rights (migration 0015): the application's role creates no table.
    with connection.cursor() as cursor:
        cursor.execute("SELECT reports_credit_run_table_create(%s)", [int(run_id)])


def _binary_rows(first_id: int, run_id: int, block: CreditColumns, rows: np.ndarray) -> bytes:
    """The binary COPY tuples of ``rows`` (indexes into ``block``) of one model."""
    parts: list[bytes] = []
    model = block.model.encode()
    channel = block.channel[rows]
    campaign = block.campaign[rows]
    ids = first_id + np.arange(rows.size, dtype=np.int64)
    microseconds = np.rint(block.converted_at[rows] * 1e6).astype(np.int64) - _PG_EPOCH_MICROSECONDS
    channels = np.unique(channel)
    team_index = np.searchsorted(channels, channel)
    for team_code, channel_id in enumerate(channels.tolist()):
        team = block.team_of_channel.get(int(channel_id), "").encode()
        for has_campaign in (True, False):
            chosen = np.flatnonzero((team_index == team_code) & ((campaign != 0) == has_campaign))
            if chosen.size:
                parts.append(
                    _records(
                        [
                            ("id", ">i8", ids[chosen]),
                            ("run_id", ">i8", run_id),
                            ("model", model, None),
                            ("sale", ">i8", block.sale_event_id[rows][chosen]),
                            ("deal", ">i8", block.deal_id[rows][chosen]),
                            ("channel", ">i8", channel[chosen]),
                            ("campaign", ">i8", campaign[chosen] if has_campaign else None),
                            ("team", team, None),
                            ("credit", ">f8", block.credit[rows][chosen]),
                            ("share", ">f8", block.share[rows][chosen]),
                            ("at", ">i8", microseconds[chosen]),
                        ],
                        chosen.size,
                    )
                )
    return b"".join(parts)


def _records(columns: list[tuple[str, str | bytes, object]], count: int) -> bytes:
    """``count`` binary COPY tuples of one fixed layout, filled column by column.

    A column is (name, NumPy type, values), or (name, bytes, None) for a constant text,
    or (name, type, None) for NULL.
    """
    fields: list[tuple[str, str]] = [("fields", ">i2")]
    values: dict[str, object] = {"fields": len(columns)}
    for name, kind, data in columns:
        fields.append((f"{name}_size", ">i4"))
        if isinstance(kind, bytes):
            values[f"{name}_size"] = len(kind)
            if kind:  # an empty text is its size alone
                fields.append((name, f"S{len(kind)}"))
                values[name] = kind
        elif data is None:
            values[f"{name}_size"] = -1  # NULL: a size of -1, no bytes
        else:
            values[f"{name}_size"] = np.dtype(kind).itemsize
            fields.append((name, kind))
            values[name] = data
    records = np.empty(count, dtype=np.dtype(fields))
    for name, value in values.items():
        records[name] = value
    return records.tobytes()


def credits_load(
    run_id: int, blocks: Iterable[CreditColumns], *, first_row: int = 0, partition: int = 0
) -> int:
    """Load credit rows of one partition of the run into the run's table (PostgreSQL) or
    the plain table; returns the row number after the last one loaded (the next call's
    ``first_row``)."""
    row = first_row
    if not partitioned():
        for block in blocks:
            _rows_insert(run_id, block)
            row += block.rows
        return row
    table = staging_table(run_id)
    columns = ", ".join(_COLUMNS)
    with connection.cursor() as cursor:
        for block in blocks:
            for start in range(0, block.rows, LOAD_CHUNK_ROWS):
                rows = np.arange(start, min(start + LOAD_CHUNK_ROWS, block.rows))
                first_id = (run_id << _RUN_SHIFT) + (partition << _PARTITION_SHIFT) + row
                payload = _HEADER + _binary_rows(first_id, run_id, block, rows) + _TRAILER
                cursor.cursor.copy_expert(
                    f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT binary)",
                    io.BytesIO(payload),
                )
                del payload
                row += rows.size
    return row


def _rows_insert(run_id: int, block: CreditColumns) -> None:
    from datetime import UTC, datetime

    moments: dict[float, datetime] = {}
    rows = []
    for sale, deal, channel, campaign, credit, share, at in zip(
        block.sale_event_id.tolist(),
        block.deal_id.tolist(),
        block.channel.tolist(),
        block.campaign.tolist(),
        block.credit.tolist(),
        block.share.tolist(),
        block.converted_at.tolist(),
        strict=True,
    ):
        moment = moments.get(at)
        if moment is None:
            moment = moments[at] = datetime.fromtimestamp(at, tz=UTC)
        rows.append(
            (
                run_id,
                block.model,
                sale,
                deal,
                channel,
                campaign or None,
                block.team_of_channel.get(channel, ""),
                credit,
                share,
                moment,
            )
        )
    rows_insert(
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
        rows,
    )


def credits_discard_model(run_id: int, model: str) -> None:
    """Remove a model's rows from a run not yet complete (it failed in some partition)."""
    if partitioned():
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {staging_table(run_id)} WHERE model = %s",  # noqa: S608
                [model],
            )
    else:
        AttributionCredit.objects.filter(run_id=run_id, model=model).delete()


def staging_analyze(run_id: int) -> None:
    """The planner's statistics of the loaded rows (the table has no index: migration
    0016 says why)."""
    if not partitioned():
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT reports_credit_run_table_analyze(%s)", [int(run_id)])


def staging_attach(run_id: int) -> None:
    """The run's table becomes its partition of the credits (call in the swap's transaction)."""
    if not partitioned():
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT reports_credit_run_table_attach(%s)", [int(run_id)])


def staging_drop(run_id: int) -> None:
    """Whatever the run had loaded, gone (a failed run leaves nothing behind)."""
    if partitioned():
        with connection.cursor() as cursor:
            cursor.execute("SELECT reports_credit_run_table_drop(%s)", [int(run_id)])
    else:
        AttributionCredit.objects.filter(run_id=run_id).delete()


def _run_table_drop(run_id: int) -> None:
    """Drop a run's table, attached or not, with the owner's rights (migration 0015).

    Dropping an attached partition locks the credits table for the moment of the drop;
    a reader waits that moment rather than reading a run whose rows are going.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT reports_credit_run_table_drop(%s)", [int(run_id)])


def _run_tables() -> dict[int, str]:
    """Per run id, its table (attached or still staging)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relkind = 'r' AND relname LIKE %s "
            "AND relnamespace = 'public'::regnamespace",
            [f"{PARENT}_run_%"],
        )
        names = [row[0] for row in cursor.fetchall()]
    return {int(match[1]): name for name in names if (match := _STAGING.match(name))}


def runs_kept(keep: int) -> set[int]:
    """The runs whose credits stay: the last ``keep`` complete runs (at least the one
    readers see) and every run not finished yet (its table is still being loaded).

    Nothing else pins a run: every report reads the latest complete one
    (``selectors.run_latest_complete``); the ones kept before it serve a reader that
    chose its run just before a swap, and a look back.
    """
    complete = AttributionRun.objects.filter(status=RunStatus.COMPLETE).order_by("-id")
    kept = set(complete.values_list("id", flat=True)[: max(keep, 1)])
    kept |= set(
        AttributionRun.objects.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).values_list(
            "id", flat=True
        )
    )
    return kept


def credits_retire(*, keep: int) -> list[int]:
    """Drop the credits and daily sums of every run but ``runs_kept(keep)``; the runs
    whose credits went (their run rows stay, as the history of what ran)."""
    kept = runs_kept(keep)
    retired: set[int] = set()
    if partitioned():
        for run_id in _run_tables():
            if run_id not in kept:
                _run_table_drop(run_id)
                retired.add(run_id)
    # SQLite keeps every run's rows in one table; the daily sums are a plain table on both.
    loose_runs = set(
        AttributionDaily.objects.exclude(run_id__in=kept)
        .values_list("run_id", flat=True)
        .distinct()
    )
    if not partitioned():
        loose_runs |= set(
            AttributionCredit.objects.exclude(run_id__in=kept)
            .values_list("run_id", flat=True)
            .distinct()
        )
    if loose_runs:
        AttributionDaily.objects.filter(run_id__in=loose_runs).delete()
        if not partitioned():
            AttributionCredit.objects.filter(run_id__in=loose_runs).delete()
    others = loose_runs
    return sorted(retired | others)
