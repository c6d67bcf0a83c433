"""Reading the record into the attribution engine's input: columnar NumPy arrays.

A conversion is a sale event with an amount (``won``, ``expansion``,
``renewal``). Its path is every touch of every member of the deal's buying
group before the sale event and within the lookback window, ordered by time
(ties by touch id). People whose latest word on ``analytics`` consent is a
withdrawal are left out of every path.

Non-converting paths (Markov needs them) are built on the same unit and the
same window, so that converting and non-converting paths are comparable: a
buying group's touches in the lookback window before the moment its outcome
was known. That is a lost deal's buying group before the ``lost`` event; an
open deal's (no revenue, not lost) before the run's as-of moment; and people
in no deal yet, grouped by their organization (a buying group still
forming; a person without one is a group of one), before the as-of moment.

The handoff touch of a conversion is the last touch of its path at or before
the latest accepted handoff of a member; the deal-creation touch is the last
one at or before the deal was opened (``w_shaped`` uses both).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from django.db import connection
from django.utils import timezone

from contacts.models import Channel, Consent, ConsentPurpose
from handoff.models import REVENUE_KINDS, SaleKind

# A composite sort key (conversion index * span + seconds) stays exact in float64.
_KEY_SPAN = 1e10
_FETCH_CHUNK = 20_000
# Rows per chunk of a large read: bounds its memory (tens of bytes a row).
_READ_CHUNK = 500_000
# Non-converting touches sorted at once: more are spread over buckets on disk first.
BUCKET_ROWS = 500_000

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass
class RunInput:
    # One entry per conversion.
    sale_event_id: IntArray
    deal_id: IntArray
    value: FloatArray
    converted_at: FloatArray  # epoch seconds
    # One entry per touch on a converting path, grouped by conversion, in time order.
    touch_conversion: IntArray  # index into the conversion arrays
    touch_channel: IntArray  # channel id
    touch_campaign: IntArray  # campaign id, 0 for none
    touch_time: FloatArray
    touch_is_handoff: BoolArray
    touch_is_deal_creation: BoolArray
    # Non-converting paths: channel ids, cut into paths at ``nonconverting_starts``.
    nonconverting_channel: IntArray
    nonconverting_starts: IntArray
    channel_team: dict[int, str]
    channel_key: dict[int, str]
    lookback_days: int

    @property
    def conversions(self) -> int:
        return int(self.sale_event_id.size)

    @property
    def touches(self) -> int:
        return int(self.touch_conversion.size + self.nonconverting_channel.size)

    def save(self, path: Path) -> None:
        """The arrays in one uncompressed file (``load`` reads them back)."""
        arrays = {
            name: getattr(self, name)
            for name in (*_DIGESTED, "nonconverting_channel", "nonconverting_starts")
        }
        teams = json.dumps([self.channel_team, self.channel_key, self.lookback_days])
        np.savez(path, **arrays, meta=np.array(teams))

    @classmethod
    def load(cls, path: Path) -> RunInput:
        with np.load(path) as saved:
            team, key, lookback_days = json.loads(str(saved["meta"]))
            arrays = {name: saved[name] for name in saved.files if name != "meta"}
        return cls(
            **arrays,
            channel_team={int(k): v for k, v in team.items()},
            channel_key={int(k): v for k, v in key.items()},
            lookback_days=int(lookback_days),
        )

    def digest(self) -> str:
        """The same record gives the same digest (and the engine the same credits)."""
        digest = InputDigest(self.lookback_days)
        digest.add_converting(self)
        digest.add_nonconverting(self.nonconverting_channel, self.nonconverting_starts)
        return digest.hexdigest(self.channel_team)


# Channel ids below this: a (from, to) pair of them is one int64.
_CHANNEL_SPAN = 1 << 31
_DIGESTED = (
    "sale_event_id",
    "deal_id",
    "value",
    "converted_at",
    "touch_conversion",
    "touch_channel",
    "touch_campaign",
    "touch_time",
    "touch_is_handoff",
    "touch_is_deal_creation",
)


class InputDigest:
    """The digest of a run's input read in partitions: the same whichever way the record
    was cut (each array is hashed in conversion order, the touches' conversion indexes
    counted over the whole run)."""

    def __init__(self, lookback_days: int) -> None:
        self.lookback_days = lookback_days
        self.arrays = {name: hashlib.sha256() for name in _DIGESTED}
        # The non-converting paths count by their transitions (all Markov reads of them),
        # which do not depend on the order the paths were read in.
        self.transitions: Counter[int] = Counter()
        self.conversions = 0

    def add_converting(self, part: RunInput) -> None:
        for name, hasher in self.arrays.items():
            array = getattr(part, name)
            if name == "touch_conversion":
                array = array + self.conversions
            hasher.update(np.ascontiguousarray(array).tobytes())
        self.conversions += part.conversions

    def add_nonconverting(self, channel: IntArray, starts: IntArray) -> None:
        """Count the paths' transitions: from a channel id (0 for the start) to the next
        (0 for the end)."""
        channel = np.asarray(channel, dtype=np.int64)
        if not channel.size:
            return
        first = np.zeros(channel.size, dtype=np.bool_)
        first[np.asarray(starts, dtype=np.int64)] = True
        before = np.where(first, 0, np.concatenate(([0], channel[:-1])))
        last = np.concatenate((first[1:], [True]))
        keys = np.concatenate((before * _CHANNEL_SPAN + channel, channel[last] * _CHANNEL_SPAN))
        found, counts = np.unique(keys, return_counts=True)
        self.transitions.update(dict(zip(found.tolist(), counts.tolist(), strict=True)))

    def hexdigest(self, channel_team: dict[int, str]) -> str:
        digest = hashlib.sha256(str(self.lookback_days).encode())
        for hasher in self.arrays.values():
            digest.update(hasher.digest())
        digest.update(repr(sorted(self.transitions.items())).encode())
        digest.update(repr(sorted(channel_team.items())).encode())
        return digest.hexdigest()


def _epoch(column: str) -> str:
    # The run's input is read in one raw query (bench/attribution.py's full run reads a
    # million touches), so seconds since the epoch are spelled per database.
    if connection.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM {column})::float8"
    # SQLite keeps UTC times as text; julianday() reads them.
    return f"((julianday({column}) - 2440587.5) * 86400.0)"


def _moment(column: str) -> str:
    """A time column as ``_columns_read`` takes it (type ``t8``): on PostgreSQL the value
    itself, whose binary COPY form (microseconds since 2000) NumPy turns into seconds;
    converting each of millions of rows with EXTRACT in the server cost as much as the
    rest of the read."""
    if connection.vendor == "postgresql":
        return column
    return _epoch(column)


# PostgreSQL's epoch (2000-01-01) in microseconds since 1970-01-01.
_POSTGRES_EPOCH_MICROSECONDS = 946_684_800_000_000


def _fetch(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while chunk := cursor.fetchmany(_FETCH_CHUNK):
            rows.extend(chunk)
    return rows


class Columns(dict[str, np.ndarray]):
    """Columns of rows read from the database, by name."""

    @property
    def rows(self) -> int:
        return int(next(iter(self.values())).size) if self else 0


_BINARY_HEADER = 19  # PGCOPY signature, flags and header extension length


def _columns_read(sql: str, params: list[Any], types: dict[str, str]) -> Iterator[Columns]:
    """The rows of ``sql`` (its columns named and typed by ``types``: ``i8`` for bigint,
    as every id is, ``f8``, or ``t8`` for a time selected with ``_moment``, which comes
    back as ``f8`` seconds since the epoch; no NULLs) in chunks of at most ``_READ_CHUNK``
    rows, as columns.

    PostgreSQL: binary COPY of the query into a temporary file (written by the driver
    at C speed, so neither a Python object per row nor the result held in memory), read
    back a chunk at a time as a fixed-size record array. Elsewhere: fetched rows.
    """
    names = list(types)
    if connection.vendor != "postgresql":
        kinds = {name: "f8" if kind == "t8" else kind for name, kind in types.items()}
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            while rows := cursor.fetchmany(_READ_CHUNK):
                yield Columns(
                    (name, np.array([row[i] for row in rows], dtype=np.dtype(kinds[name])))
                    for i, name in enumerate(names)
                )
        return
    fields = [("fields", ">i2")]
    for name in names:
        wire = "i8" if types[name] == "t8" else types[name]
        fields += [(f"{name}_size", ">i4"), (name, f">{wire}")]
    record = np.dtype(fields)
    with tempfile.TemporaryFile() as spool, connection.cursor() as cursor:
        query = cursor.cursor.mogrify(sql, params).decode()
        cursor.cursor.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT binary)", spool)
        size = spool.tell()
        rows = max(size - _BINARY_HEADER - 2, 0) // record.itemsize
        spool.seek(_BINARY_HEADER)
        for start in range(0, rows, _READ_CHUNK):
            count = min(_READ_CHUNK, rows - start)
            chunk = np.frombuffer(spool.read(count * record.itemsize), dtype=record)
            yield Columns((name, _column_of(chunk[name], types[name])) for name in names)


def _column_of(wire: np.ndarray, kind: str) -> np.ndarray:
    if kind != "t8":
        return wire.astype(kind)
    # Whole microseconds since 1970 are exact in float64 until the year 2255, and one
    # division rounds once: the same value EXTRACT(EPOCH ...)::float8 gives.
    return (wire.astype(np.int64) + _POSTGRES_EPOCH_MICROSECONDS) / 1e6


def analytics_withdrawn_ids() -> set[int]:
    """People whose latest word on analytics consent is a withdrawal."""
    latest: dict[int, bool] = {}
    consents = (
        Consent.objects.filter(purpose=ConsentPurpose.ANALYTICS)
        .order_by("occurred_at", "id")
        .values_list("contact_id", "granted")
    )
    for contact_id, granted in consents.iterator(chunk_size=_FETCH_CHUNK):
        latest[contact_id] = granted
    return {contact_id for contact_id, granted in latest.items() if not granted}


def _last_at_or_before(
    keys: FloatArray, starts: IntArray, ends: IntArray, marker_keys: FloatArray
) -> IntArray:
    """Per conversion, the index of its last touch at or before its marker; -1 if none."""
    found = np.searchsorted(keys, marker_keys, side="right") - 1
    valid = (found >= starts) & (found < ends)
    return np.where(valid, found, -1).astype(np.int64)


def conversion_bounds(size: int) -> list[tuple[int, int]]:
    """The run's conversions cut into partitions of at most ``size``: per partition, the
    sale event ids it spans (from, up to but not including). Always at least one."""
    kinds = [str(kind) for kind in REVENUE_KINDS]
    kind_marks = ", ".join(["%s"] * len(kinds))
    ids = np.array(
        [
            row[0]
            for row in _fetch(
                f"SELECT s.id FROM handoff_saleevent s "  # noqa: S608
                f"WHERE s.kind IN ({kind_marks}) AND s.amount > 0 ORDER BY s.id",
                [*kinds],
            )
        ],
        dtype=np.int64,
    )
    if not ids.size:
        return [(0, 1)]
    firsts = ids[:: max(size, 1)].tolist()
    return list(zip(firsts, [*firsts[1:], int(ids[-1]) + 1], strict=True))


def run_input_read(
    *,
    lookback_days: int,
    now: datetime | None = None,
    sales: tuple[int, int] | None = None,
    nonconverting: bool = True,
    withdrawn: set[int] | None = None,
) -> RunInput:
    """Read conversions, their paths and the non-converting paths from the record.

    ``sales`` limits the conversions to sale event ids from its first up to (not
    including) its second, a partition of the run (``conversion_bounds``);
    ``nonconverting=False`` leaves the non-converting paths out (``nonconverting_read``
    streams them).
    """
    now = now or timezone.now()
    withdrawn = analytics_withdrawn_ids() if withdrawn is None else withdrawn
    kinds = [str(kind) for kind in REVENUE_KINDS]
    kind_marks = ", ".join(["%s"] * len(kinds))
    in_range, range_params = "", []
    if sales is not None:
        in_range, range_params = " AND s.id >= %s AND s.id < %s", [sales[0], sales[1]]
    conversions = _fetch(
        f"SELECT s.id, s.deal_id, CAST(s.amount AS float), {_epoch('s.occurred_at')}, "  # noqa: S608
        f"{_epoch('d.occurred_at')} "
        f"FROM handoff_saleevent s JOIN handoff_deal d ON d.id = s.deal_id "
        f"WHERE s.kind IN ({kind_marks}) AND s.amount > 0{in_range} ORDER BY s.id",
        [*kinds, *range_params],
    )
    sale_ids = np.array([row[0] for row in conversions], dtype=np.int64)
    deal_ids = np.array([row[1] for row in conversions], dtype=np.int64)
    values = np.array([row[2] for row in conversions], dtype=np.float64)
    converted_at = np.array([row[3] for row in conversions], dtype=np.float64)
    deal_opened_at = np.array([row[4] for row in conversions], dtype=np.float64)
    lookback_seconds = lookback_days * 86400.0
    index_of_sale = {int(sale_id): index for index, sale_id in enumerate(sale_ids)}

    earliest = now - timedelta(days=lookback_days)
    if conversions:
        earliest = min(
            earliest,
            datetime.fromtimestamp(float(converted_at.min()) - lookback_seconds, tz=now.tzinfo),
        )
    touches = _converting_touches(
        f"SELECT s.id AS sale, m.contact_id AS contact, "  # noqa: S608
        f"t.channel_id AS channel, COALESCE(t.campaign_id, 0) AS campaign, "
        f"{_moment('t.occurred_at')} AS moment, t.id AS touch "
        f"FROM handoff_saleevent s "
        f"JOIN handoff_dealcontact m ON m.deal_id = s.deal_id "
        f"JOIN contacts_touch t ON t.contact_id = m.contact_id "
        f"AND t.occurred_at < s.occurred_at AND t.occurred_at >= %s "
        f"WHERE s.kind IN ({kind_marks}) AND s.amount > 0{in_range}",
        [earliest, *kinds, *range_params],
        sale_ids,
        withdrawn,
    )
    # Within the lookback of each touch's own conversion.
    touches = touches[
        touches[:, 3] >= converted_at[touches[:, 0].astype(np.int64)] - lookback_seconds
    ]
    # Grouped by conversion, then in time order, ties by touch id.
    touches = touches[np.lexsort((touches[:, 4], touches[:, 3], touches[:, 0]))]
    touch_conversion = touches[:, 0].astype(np.int64)
    touch_time = touches[:, 3].copy()
    is_handoff, is_deal_creation = _markers(
        touch_conversion,
        touch_time,
        _handoff_times(sale_ids, index_of_sale, in_range, range_params),
        deal_opened_at,
    )

    if nonconverting:
        nonconverting_paths = _nonconverting(now, lookback_days, withdrawn)
    else:
        nonconverting_paths = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    channels = Channel.objects.values_list("id", "key", "team")
    return RunInput(
        sale_event_id=sale_ids,
        deal_id=deal_ids,
        value=values,
        converted_at=converted_at,
        touch_conversion=touch_conversion,
        touch_channel=touches[:, 1].astype(np.int64),
        touch_campaign=touches[:, 2].astype(np.int64),
        touch_time=touch_time,
        touch_is_handoff=is_handoff,
        touch_is_deal_creation=is_deal_creation,
        nonconverting_channel=nonconverting_paths[0],
        nonconverting_starts=nonconverting_paths[1],
        channel_team={channel_id: team for channel_id, _, team in channels},
        channel_key={channel_id: key for channel_id, key, _ in channels},
        lookback_days=lookback_days,
    )


def _converting_touches(
    sql: str, params: list[Any], sale_ids: IntArray, withdrawn: set[int]
) -> FloatArray:
    """The touches of the conversions as rows (conversion index, channel, campaign, time,
    touch id), converted to an array chunk by chunk as they arrive."""
    withdrawn_ids = np.array(sorted(withdrawn), dtype=np.int64)
    types = {"sale": "i8", "contact": "i8", "channel": "i8", "campaign": "i8"}
    types |= {"moment": "t8", "touch": "i8"}
    chunks = [np.zeros((0, 5))]
    for columns in _columns_read(sql, params, types):
        kept = ~np.isin(columns["contact"], withdrawn_ids)
        chunks.append(
            np.stack(
                (
                    np.searchsorted(sale_ids, columns["sale"][kept]).astype(np.float64),
                    columns["channel"][kept].astype(np.float64),
                    columns["campaign"][kept].astype(np.float64),
                    columns["moment"][kept],
                    columns["touch"][kept].astype(np.float64),
                ),
                axis=1,
            )
        )
    return np.concatenate(chunks)


def _markers(
    touch_conversion: IntArray,
    touch_time: FloatArray,
    handoff_at: FloatArray,
    deal_opened_at: FloatArray,
) -> tuple[BoolArray, BoolArray]:
    """Flag each conversion's handoff touch and deal-creation touch (the last touch of its path
    at or before that moment), with one binary search over all paths at once."""
    is_handoff = np.zeros(touch_conversion.size, dtype=np.bool_)
    is_deal_creation = np.zeros(touch_conversion.size, dtype=np.bool_)
    if not touch_conversion.size:
        return is_handoff, is_deal_creation
    conversions = np.arange(deal_opened_at.size)
    starts = np.searchsorted(touch_conversion, conversions, side="left")
    ends = np.searchsorted(touch_conversion, conversions, side="right")
    base = float(touch_time.min())
    keys = touch_conversion * _KEY_SPAN + (touch_time - base)
    for moments, flags in ((handoff_at, is_handoff), (deal_opened_at, is_deal_creation)):
        known = ~np.isnan(moments)
        marker_keys = conversions * _KEY_SPAN + (np.where(known, moments, -np.inf) - base)
        found = _last_at_or_before(keys, starts, ends, marker_keys)
        flags[found[(found >= 0) & known]] = True
    return is_handoff, is_deal_creation


def _handoff_times(
    sale_ids: IntArray, index_of_sale: dict[int, int], in_range: str, range_params: list[Any]
) -> FloatArray:
    """Per conversion, when the latest accepted handoff of a member before it was made."""
    times = np.full(sale_ids.size, np.nan)
    if not sale_ids.size:
        return times
    rows = _fetch(
        f"SELECT s.id, MAX({_epoch('h.occurred_at')}) "  # noqa: S608
        "FROM handoff_saleevent s "
        "JOIN handoff_dealcontact m ON m.deal_id = s.deal_id "
        "JOIN handoff_handoff h ON h.contact_id = m.contact_id "
        "AND h.status = 'accepted' AND h.occurred_at <= s.occurred_at "
        f"WHERE TRUE{in_range} GROUP BY s.id",
        range_params,
    )
    for sale_id, moment in rows:
        index = index_of_sale.get(int(sale_id))
        if index is not None and moment is not None:
            times[index] = float(moment)
    return times


# Unit numbers of the three kinds of non-converting path, kept apart in one int64.
_UNIT_KIND = 1 << 48
_LOST, _OPEN, _ORGANIZATION, _PERSON = 1, 2, 3, 4


def _nonconverting(
    now: datetime, lookback_days: int, withdrawn: set[int]
) -> tuple[IntArray, IntArray]:
    """Channel sequences of the buying groups that did not convert (see the module's
    docstring), and where each starts."""
    channels, starts, offset = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)], 0
    for channel, start in nonconverting_read(
        now=now, lookback_days=lookback_days, withdrawn=withdrawn
    ):
        channels.append(channel)
        starts.append(start + offset)
        offset += channel.size
    return np.concatenate(channels), np.concatenate(starts)


@dataclass
class PeopleGroups:
    """Per person id, the group a person in no deal belongs to (their organization's, else
    their own) and whether they are in a deal."""

    unit: IntArray
    in_deal: BoolArray

    @classmethod
    def read(cls) -> PeopleGroups:
        # Read after the touches, so each of their people has an id up to the largest
        # (``of`` would still take a later one as a group of its own).
        size = int(_fetch("SELECT COALESCE(MAX(id), 0) FROM contacts_contact", [])[0][0]) + 1
        unit = _PERSON * _UNIT_KIND + np.arange(size, dtype=np.int64)
        for chunk in _columns_read(
            "SELECT id AS contact, organization_id AS organization "
            "FROM contacts_contact WHERE organization_id IS NOT NULL",
            [],
            {"contact": "i8", "organization": "i8"},
        ):
            known = chunk["contact"] < size
            unit[chunk["contact"][known]] = (
                _ORGANIZATION * _UNIT_KIND + chunk["organization"][known]
            )
        in_deal = np.zeros(size, dtype=np.bool_)
        for chunk in _columns_read(
            "SELECT DISTINCT contact_id AS contact FROM handoff_dealcontact", [], {"contact": "i8"}
        ):
            members = chunk["contact"]
            in_deal[members[members < size]] = True
        return cls(unit=unit, in_deal=in_deal)

    def of(self, contact: IntArray) -> tuple[IntArray, BoolArray]:
        """The units of these people's paths, and which of them are in no deal."""
        known = contact < self.unit.size
        at = np.where(known, contact, 0)
        unit = np.where(known, self.unit[at], _PERSON * _UNIT_KIND + contact)
        return unit, ~np.where(known, self.in_deal[at], False)


def nonconverting_read(
    *, now: datetime, lookback_days: int, withdrawn: set[int], bucket_rows: int = BUCKET_ROWS
) -> Iterator[tuple[IntArray, IntArray]]:
    """The non-converting paths in bounded chunks: per chunk, the channels of some whole
    paths and where each starts in it (in ``_nonconverting``'s order where one chunk
    holds them all).

    The touches are read unsorted and kept on disk (a few numbers each); past
    ``bucket_rows`` they are spread over buckets by path, each then sorted on its own,
    so the memory is a bucket's whatever the record's size.
    """
    kinds = [str(kind) for kind in REVENUE_KINDS]
    kind_marks = ", ".join(["%s"] * len(kinds))
    since = now - timedelta(days=lookback_days)
    as_of = now.timestamp()
    earliest_lost = _fetch(
        "SELECT MIN(occurred_at) FROM handoff_saleevent WHERE kind = %s", [str(SaleKind.LOST)]
    )[0][0]
    touch_columns = f"t.channel_id AS channel, {_moment('t.occurred_at')} AS moment, t.id AS touch"
    touch_types = {"contact": "i8", "channel": "i8", "moment": "t8", "touch": "i8"}
    # Per query: its SQL, parameters and column types. A lost deal's paths end when it was
    # lost (its "ending"); the others at the run's as-of moment.
    queries: list[tuple[str, list[Any], dict[str, str]]] = []
    if earliest_lost is not None:
        if isinstance(earliest_lost, str):  # SQLite hands back text
            earliest_lost = datetime.fromisoformat(earliest_lost)
        queries.append(
            (
                f"SELECT {_LOST * _UNIT_KIND} + s.id AS unit, m.contact_id AS contact, "  # noqa: S608
                f"{touch_columns}, {_moment('s.occurred_at')} AS ending "
                "FROM handoff_saleevent s "
                "JOIN handoff_dealcontact m ON m.deal_id = s.deal_id "
                "JOIN contacts_touch t ON t.contact_id = m.contact_id "
                "AND t.occurred_at < s.occurred_at AND t.occurred_at >= %s "
                "WHERE s.kind = %s",
                [earliest_lost - timedelta(days=lookback_days), str(SaleKind.LOST)],
                {"unit": "i8", **touch_types, "ending": "t8"},
            )
        )
    queries.append(
        (
            f"SELECT {_OPEN * _UNIT_KIND} + d.id AS unit, m.contact_id AS contact, "  # noqa: S608
            f"{touch_columns} "
            "FROM handoff_deal d JOIN handoff_dealcontact m ON m.deal_id = d.id "
            "JOIN contacts_touch t ON t.contact_id = m.contact_id "
            "AND t.occurred_at >= %s AND t.occurred_at < %s "
            "WHERE NOT EXISTS (SELECT 1 FROM handoff_saleevent s WHERE s.deal_id = d.id "
            f"AND (s.kind = %s OR (s.kind IN ({kind_marks}) AND s.amount > 0)))",
            [since, now, str(SaleKind.LOST), *kinds],
            {"unit": "i8", **touch_types},
        )
    )
    # People in no deal: every touch of the window, their groups found here (below) rather
    # than by joining the people and the deal members to each touch in the server.
    queries.append(
        (
            f"SELECT t.contact_id AS contact, {touch_columns} "  # noqa: S608
            "FROM contacts_touch t WHERE t.occurred_at >= %s AND t.occurred_at < %s",
            [since, now],
            touch_types,
        )
    )
    lookback_seconds = lookback_days * 86400.0
    withdrawn_ids = np.array(sorted(withdrawn), dtype=np.int64)
    kept_record = np.dtype([("unit", "i8"), ("moment", "f8"), ("touch", "i8"), ("channel", "i8")])
    groups: PeopleGroups | None = None
    with tempfile.TemporaryFile() as spool:
        for sql, params, types in queries:
            for chunk in _columns_read(sql, params, types):
                kept = ~np.isin(chunk["contact"], withdrawn_ids)
                if "unit" not in chunk:
                    # Read after the touches: every touch's person is known by then.
                    groups = groups or PeopleGroups.read()
                    chunk["unit"], outside_deals = groups.of(chunk["contact"])
                    kept &= outside_deals
                # The same window as a conversion's: the lookback before the outcome.
                ending = chunk.get("ending", as_of)
                kept &= (chunk["moment"] >= ending - lookback_seconds) & (chunk["moment"] < ending)
                rows = np.empty(int(kept.sum()), dtype=kept_record)
                for name in kept_record.names or ():
                    rows[name] = chunk[name][kept]
                spool.write(rows.tobytes())
        total = spool.tell() // kept_record.itemsize
        spool.seek(0)
        if total <= bucket_rows:
            yield from _paths_of(np.frombuffer(spool.read(), dtype=kept_record))
            return
        yield from _bucketed(spool, total, kept_record, -(-total // bucket_rows))


def _bucketed(
    spool: Any, total: int, record: np.dtype[Any], count: int
) -> Iterator[tuple[IntArray, IntArray]]:
    """The spooled touches spread over ``count`` buckets by path (on disk), then each
    bucket's paths."""
    with tempfile.TemporaryDirectory() as folder:
        names = [f"{folder}/{index}" for index in range(count)]
        files = [open(name, "wb") for name in names]  # noqa: SIM115 -- closed below
        try:
            for start in range(0, total, _READ_CHUNK):
                rows = np.frombuffer(
                    spool.read(min(_READ_CHUNK, total - start) * record.itemsize), dtype=record
                )
                bucket = rows["unit"] % count
                for index, file in enumerate(files):
                    file.write(rows[bucket == index].tobytes())
        finally:
            for file in files:
                file.close()
        for name in names:
            yield from _paths_of(np.fromfile(name, dtype=record))


def _paths_of(rows: np.ndarray) -> Iterator[tuple[IntArray, IntArray]]:
    """The paths of ``rows`` (whole units): by unit, then in time order, ties by touch id."""
    if not rows.size:
        return
    order = np.lexsort((rows["touch"], rows["moment"], rows["unit"]))
    unit = rows["unit"][order]
    starts = np.flatnonzero(np.concatenate(([True], unit[1:] != unit[:-1])))
    yield rows["channel"][order].astype(np.int64), starts.astype(np.int64)
