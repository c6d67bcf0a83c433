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
from dataclasses import dataclass
from datetime import datetime, timedelta
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

    def digest(self) -> str:
        """The same record gives the same digest (and the engine the same credits)."""
        digest = hashlib.sha256(str(self.lookback_days).encode())
        for array in (
            self.sale_event_id,
            self.deal_id,
            self.value,
            self.converted_at,
            self.touch_conversion,
            self.touch_channel,
            self.touch_campaign,
            self.touch_time,
            self.touch_is_handoff,
            self.touch_is_deal_creation,
            self.nonconverting_channel,
            self.nonconverting_starts,
        ):
            digest.update(np.ascontiguousarray(array).tobytes())
        digest.update(repr(sorted(self.channel_team.items())).encode())
        return digest.hexdigest()


def _epoch(column: str) -> str:
    # The run's input is read in one raw query (bench/attribution.py's full run reads a
    # million touches), so seconds since the epoch are spelled per database.
    if connection.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM {column})::float8"
    # SQLite keeps UTC times as text; julianday() reads them.
    return f"((julianday({column}) - 2440587.5) * 86400.0)"


def _fetch(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while chunk := cursor.fetchmany(_FETCH_CHUNK):
            rows.extend(chunk)
    return rows


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


def run_input_read(*, lookback_days: int, now: datetime | None = None) -> RunInput:
    """Read conversions, their paths and the non-converting paths from the record."""
    now = now or timezone.now()
    withdrawn = analytics_withdrawn_ids()
    kinds = [str(kind) for kind in REVENUE_KINDS]
    kind_marks = ", ".join(["%s"] * len(kinds))
    conversions = _fetch(
        f"SELECT s.id, s.deal_id, CAST(s.amount AS float), {_epoch('s.occurred_at')}, "  # noqa: S608
        f"{_epoch('d.occurred_at')} "
        f"FROM handoff_saleevent s JOIN handoff_deal d ON d.id = s.deal_id "
        f"WHERE s.kind IN ({kind_marks}) AND s.amount > 0 ORDER BY s.id",
        [*kinds],
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
    touch_rows = _fetch(
        f"SELECT s.id, m.contact_id, t.channel_id, COALESCE(t.campaign_id, 0), "  # noqa: S608
        f"{_epoch('t.occurred_at')}, t.id "
        f"FROM handoff_saleevent s "
        f"JOIN handoff_dealcontact m ON m.deal_id = s.deal_id "
        f"JOIN contacts_touch t ON t.contact_id = m.contact_id "
        f"AND t.occurred_at < s.occurred_at AND t.occurred_at >= %s "
        f"WHERE s.kind IN ({kind_marks}) AND s.amount > 0",
        [earliest, *kinds],
    )
    touches = np.array(
        [
            (index_of_sale[int(row[0])], row[2], row[3], row[4], row[5])
            for row in touch_rows
            if row[1] not in withdrawn
        ],
        dtype=np.float64,
    ).reshape(-1, 5)
    # Within the lookback of each touch's own conversion.
    touches = touches[
        touches[:, 3] >= converted_at[touches[:, 0].astype(np.int64)] - lookback_seconds
    ]
    # Grouped by conversion, then in time order, ties by touch id.
    touches = touches[np.lexsort((touches[:, 4], touches[:, 3], touches[:, 0]))]
    touch_conversion = touches[:, 0].astype(np.int64)
    touch_time = touches[:, 3].copy()
    is_handoff, is_deal_creation = _markers(
        touch_conversion, touch_time, _handoff_times(sale_ids, index_of_sale), deal_opened_at
    )

    nonconverting = _nonconverting(now, lookback_days, withdrawn)
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
        nonconverting_channel=nonconverting[0],
        nonconverting_starts=nonconverting[1],
        channel_team={channel_id: team for channel_id, _, team in channels},
        channel_key={channel_id: key for channel_id, key, _ in channels},
        lookback_days=lookback_days,
    )


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


def _handoff_times(sale_ids: IntArray, index_of_sale: dict[int, int]) -> FloatArray:
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
        "GROUP BY s.id",
        [],
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
    kinds = [str(kind) for kind in REVENUE_KINDS]
    kind_marks = ", ".join(["%s"] * len(kinds))
    lookback_seconds = lookback_days * 86400.0
    since = now - timedelta(days=lookback_days)
    rows: list[tuple[Any, ...]] = []
    earliest_lost = _fetch(
        "SELECT MIN(occurred_at) FROM handoff_saleevent WHERE kind = %s", [str(SaleKind.LOST)]
    )[0][0]
    if earliest_lost is not None:
        if isinstance(earliest_lost, str):  # SQLite hands back text
            earliest_lost = datetime.fromisoformat(earliest_lost)
        rows += [
            (_LOST * _UNIT_KIND + row[0], *row[1:])
            for row in _fetch(
                f"SELECT s.id, m.contact_id, t.channel_id, {_epoch('t.occurred_at')}, t.id, "  # noqa: S608
                f"{_epoch('s.occurred_at')} FROM handoff_saleevent s "
                "JOIN handoff_dealcontact m ON m.deal_id = s.deal_id "
                "JOIN contacts_touch t ON t.contact_id = m.contact_id "
                "AND t.occurred_at < s.occurred_at AND t.occurred_at >= %s "
                "WHERE s.kind = %s",
                [earliest_lost - timedelta(days=lookback_days), str(SaleKind.LOST)],
            )
        ]
    as_of = now.timestamp()
    rows += [
        (_OPEN * _UNIT_KIND + row[0], *row[1:], as_of)
        for row in _fetch(
            f"SELECT d.id, m.contact_id, t.channel_id, {_epoch('t.occurred_at')}, t.id "  # noqa: S608
            "FROM handoff_deal d JOIN handoff_dealcontact m ON m.deal_id = d.id "
            "JOIN contacts_touch t ON t.contact_id = m.contact_id "
            "AND t.occurred_at >= %s AND t.occurred_at < %s "
            "WHERE NOT EXISTS (SELECT 1 FROM handoff_saleevent s WHERE s.deal_id = d.id "
            f"AND (s.kind = %s OR (s.kind IN ({kind_marks}) AND s.amount > 0)))",
            [since, now, str(SaleKind.LOST), *kinds],
        )
    ]
    rows += [
        (
            (_ORGANIZATION * _UNIT_KIND + row[0])
            if row[0] is not None
            else (_PERSON * _UNIT_KIND + row[1]),
            *row[1:],
            as_of,
        )
        for row in _fetch(
            f"SELECT c.organization_id, t.contact_id, t.channel_id, {_epoch('t.occurred_at')}, "  # noqa: S608
            "t.id FROM contacts_touch t JOIN contacts_contact c ON c.id = t.contact_id "
            "WHERE t.occurred_at >= %s AND t.occurred_at < %s AND NOT EXISTS ("
            "SELECT 1 FROM handoff_dealcontact m WHERE m.contact_id = t.contact_id)",
            [since, now],
        )
    ]
    rows = [row for row in rows if row[1] not in withdrawn]
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    unit = np.array([row[0] for row in rows], dtype=np.int64)
    channel = np.array([row[2] for row in rows], dtype=np.int64)
    moment = np.array([row[3] for row in rows], dtype=np.float64)
    touch_id = np.array([row[4] for row in rows], dtype=np.int64)
    end = np.array([row[5] for row in rows], dtype=np.float64)
    # The same window as a conversion's: from the lookback before the outcome up to it.
    inside = (moment >= end - lookback_seconds) & (moment < end)
    order = np.lexsort((touch_id[inside], moment[inside], unit[inside]))
    unit, channel = unit[inside][order], channel[inside][order]
    if not unit.size:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate(([True], unit[1:] != unit[:-1])))
    return channel.copy(), starts.astype(np.int64)
