"""From a run's input to credit rows: every model, one row per (model, conversion,
channel, campaign).

Django-free on purpose (``reports.runs`` does the reading and writing): this
maps the record's ids to the engine's channel codes, runs the eight models and
sums their per-touch shares into rows with one ``bincount`` per model.

Markov credit that no converting path can carry (``attribution.distribution``)
becomes one more row per conversion, under the channel id ``UNALLOCATED_CHANNEL_ID``
(no channel has it), so every conversion's rows still add up to its value and
every report shows the remainder as its own line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .attribution.distribution import FitError, SetFit, Split, set_fit, split_from_fit
from .attribution.engine import MARKOV, MODEL_NAMES, model_split
from .attribution.heuristic import DEFAULT_HALF_LIFE_DAYS
from .attribution.markov import (
    removal_effects_from_counts,
    transitions_add,
    weights_from_effects,
)
from .attribution.paths import (
    ChannelPaths,
    ConvertingPaths,
    FloatArray,
    IntArray,
    path_of_touch,
    weighted_count,
)

if TYPE_CHECKING:  # run_input reads the database; only its shape is needed here
    from .run_input import RunInput

logger = logging.getLogger(__name__)

# The channel id of the unallocated rows: database ids start at 1.
UNALLOCATED_CHANNEL_ID = 0
UNALLOCATED_KEY = "(unallocated: removal effect from non-converting paths)"
UNALLOCATED_TEAM = "unallocated"

# A combined (conversion, channel, campaign) key stays an exact int64 below this.
_KEY_LIMIT = 1 << 62


@dataclass(frozen=True)
class CreditBlock:
    """One model's credits: row ``i`` gives ``credit[i]`` (in the conversion's currency)
    and ``share[i]`` (its part of the conversion, the shares of a conversion adding up to 1)
    to ``channel[i]`` and ``campaign[i]`` (0 for none) for conversion ``conversion[i]``
    (an index into the run input's conversion arrays)."""

    model: str
    conversion: IntArray
    channel: IntArray
    campaign: IntArray
    credit: FloatArray
    share: FloatArray
    # Per channel id, its credit that no conversion carries (the unallocated rows' origin).
    unallocated: dict[int, float] = field(default_factory=dict)
    # Why the model could not be computed ("" when it was): it then has no rows.
    unavailable: str = ""

    @property
    def rows(self) -> int:
        return int(self.conversion.size)


def _engine_input(
    run_input: RunInput, *, channel_codes: tuple[IntArray, IntArray] | None = None
) -> tuple[ConvertingPaths, ChannelPaths, IntArray]:
    """The run's arrays in the engine's layout; also the channel id of each channel code
    (``channel_codes``, the ids and each touch's code, when the run's codes are known)."""
    conversions = run_input.conversions
    touch_conversion = np.asarray(run_input.touch_conversion, dtype=np.int64)
    if touch_conversion.size and np.any(np.diff(touch_conversion) < 0):
        raise ValueError("touches must be grouped by conversion, in conversion order")
    offsets = np.searchsorted(touch_conversion, np.arange(conversions + 1), side="left")
    if channel_codes is not None:
        channel_ids, codes = channel_codes
    else:
        channel_ids, codes = np.unique(
            np.concatenate(
                (
                    np.asarray(run_input.touch_channel, dtype=np.int64),
                    np.asarray(run_input.nonconverting_channel, dtype=np.int64),
                )
            ),
            return_inverse=True,
        )
    codes = codes.reshape(-1).astype(np.int64)
    split = touch_conversion.size
    converting = ConvertingPaths(
        channel=codes[:split],
        offsets=offsets.astype(np.int64),
        value=np.asarray(run_input.value, dtype=np.float64),
        time=np.asarray(run_input.touch_time, dtype=np.float64),
        converted_at=np.asarray(run_input.converted_at, dtype=np.float64),
        is_handoff=np.asarray(run_input.touch_is_handoff, dtype=np.bool_),
        is_deal_creation=np.asarray(run_input.touch_is_deal_creation, dtype=np.bool_),
        campaign=np.asarray(run_input.touch_campaign, dtype=np.int64),
    )
    starts = np.asarray(run_input.nonconverting_starts, dtype=np.int64)
    nonconverting_touches = codes.size - split
    nonconverting = ChannelPaths(
        codes[split:],
        np.concatenate((starts, [nonconverting_touches])).astype(np.int64)
        if nonconverting_touches
        else np.zeros(1, dtype=np.int64),
    )
    return converting, nonconverting, channel_ids.astype(np.int64)


def _row_keys(converting: ConvertingPaths, n_channels: int) -> tuple[IntArray, IntArray]:
    """Each touch's row, and per row its (conversion, channel code, campaign id)."""
    conversion = np.repeat(np.arange(converting.count, dtype=np.int64), converting.lengths)
    campaign_ids, campaign_codes = np.unique(converting.campaign, return_inverse=True)
    campaign_codes = campaign_codes.reshape(-1)
    n_campaigns = max(int(campaign_ids.size), 1)
    if max(converting.count, 1) * max(n_channels, 1) * n_campaigns < _KEY_LIMIT:
        key = (conversion * n_channels + converting.channel) * n_campaigns + campaign_codes
        keys, touch_row = np.unique(key, return_inverse=True)
        campaign_code = keys % n_campaigns
        rest = keys // n_campaigns
        columns = np.stack((rest // n_channels, rest % n_channels, campaign_ids[campaign_code]))
    else:
        stacked = np.stack((conversion, converting.channel, converting.campaign), axis=1)
        unique_rows, touch_row = np.unique(stacked, axis=0, return_inverse=True)
        columns = unique_rows.T
    return touch_row.reshape(-1).astype(np.int64), columns.astype(np.int64)


def _unavailable(model: str, reason: str) -> CreditBlock:
    empty = np.zeros(0, dtype=np.int64)
    return CreditBlock(model, empty, empty, empty, np.zeros(0), np.zeros(0), unavailable=reason)


def credits_compute(
    run_input: RunInput, *, half_life_days: float = DEFAULT_HALF_LIFE_DAYS
) -> list[CreditBlock]:
    """Every model's credits for the run's conversions, from the whole record at once.

    Conversions nobody touched get no rows. Rows with a zero share are left out
    (first touch gives nothing to most of a path). A model that cannot be
    computed gets a block with no rows and the reason in ``unavailable``; the
    other models still land. (A run computes the same rows partition by
    partition: ``GlobalCounts`` and ``credits_compute_part``.)
    """
    converting, nonconverting, channel_ids = _engine_input(run_input)

    def split_of(model: str) -> tuple[Split, dict[int, float]]:
        split = model_split(model, converting, nonconverting, half_life_days=half_life_days)
        return split, _unallocated_by_channel(split.unallocated_channel, channel_ids)

    return _blocks(converting, channel_ids, split_of)


def _unallocated_by_channel(amounts: FloatArray, channel_ids: IntArray) -> dict[int, float]:
    return {
        int(channel_ids[code]): float(amount)
        for code, amount in enumerate(amounts[: channel_ids.size])
        if amount > 0
    }


def _blocks(
    converting: ConvertingPaths,
    channel_ids: IntArray,
    split_of: Callable[[str], tuple[Split, dict[int, float]]],
) -> list[CreditBlock]:
    touch_row, (conversion, channel_code, campaign) = _row_keys(converting, channel_ids.size)
    rows = int(conversion.size)
    blocks = []
    for model in MODEL_NAMES:
        try:
            split, unallocated_of_channel = split_of(model)
        except (FitError, np.linalg.LinAlgError, ValueError, FloatingPointError) as error:
            logger.warning("attribution: %s could not be computed: %s", model, error)
            blocks.append(_unavailable(model, f"{type(error).__name__}: {error}"))
            continue
        share = weighted_count(touch_row, split.touch, rows)
        kept = share > 0
        block_conversion = conversion[kept]
        block_channel = channel_ids[channel_code[kept]]
        block_campaign = campaign[kept]
        block_share = share[kept]
        unallocated: dict[int, float] = {}
        if np.any(split.unallocated > 0):
            # One more row per conversion with a remainder, after its own rows.
            left = np.flatnonzero(split.unallocated > 0)
            block_conversion = np.concatenate((block_conversion, left))
            block_channel = np.concatenate(
                (block_channel, np.full(left.size, UNALLOCATED_CHANNEL_ID, dtype=np.int64))
            )
            block_campaign = np.concatenate((block_campaign, np.zeros(left.size, np.int64)))
            block_share = np.concatenate((block_share, split.unallocated[left]))
            unallocated = unallocated_of_channel
        blocks.append(
            CreditBlock(
                model=model,
                conversion=block_conversion,
                channel=block_channel,
                campaign=block_campaign,
                credit=block_share * converting.value[block_conversion],
                share=block_share,
                unallocated=unallocated,
            )
        )
    return blocks


# --- the same, partition by partition ---------------------------------------------------


@dataclass(frozen=True)
class RunContext:
    """What every partition of a run needs from all of them: the channels on any path
    (their codes) and the data-driven models' global figures. Markov's is its split by
    channel set, fitted over every converting path; Shapley needs none (its split of a
    conversion depends on that conversion's path alone)."""

    channel_ids: IntArray
    markov: SetFit | None
    markov_unavailable: str = ""
    markov_unallocated: dict[int, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """Plain JSON (floats as ``repr`` round-trips them exactly): a task's argument."""
        fit = self.markov
        return {
            "channel_ids": self.channel_ids.tolist(),
            "markov": None
            if fit is None
            else {
                "rows": fit.rows.tolist(),
                "shares": fit.shares.tolist(),
                "unallocated_of_set": fit.unallocated_of_set.tolist(),
                "unallocated_channel": fit.unallocated_channel.tolist(),
            },
            "markov_unavailable": self.markov_unavailable,
            "markov_unallocated": {str(k): v for k, v in self.markov_unallocated.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunContext:
        channel_ids = np.array(data["channel_ids"], dtype=np.int64)
        fit = data["markov"]
        n_channels = max(int(channel_ids.size), 1)
        return cls(
            channel_ids=channel_ids,
            markov=None
            if fit is None
            else SetFit(
                rows=np.array(fit["rows"], dtype=np.uint8).reshape(-1, (n_channels + 7) // 8),
                shares=np.array(fit["shares"], dtype=np.float64).reshape(-1, n_channels),
                unallocated_of_set=np.array(fit["unallocated_of_set"], dtype=np.float64),
                unallocated_channel=np.array(fit["unallocated_channel"], dtype=np.float64),
            ),
            markov_unavailable=data["markov_unavailable"],
            markov_unallocated={int(k): float(v) for k, v in data["markov_unallocated"].items()},
        )


class GlobalCounts:
    """The one pass over the whole record before the partitions are computed: what the
    data-driven models need from every path, gathered partition by partition.

    Channels are counted by their place among ``all_channel_ids`` (every channel there
    is) until the reduction knows which appear on some path (the engine's codes). Per
    conversion it keeps a few numbers (its value, last channel and set of channels),
    so its memory is the conversions', not the touches'. Counts are integers and the
    per-conversion figures are summed in conversion order in ``reduce``: the result is
    bit for bit the whole-record computation's, however the record was cut.
    """

    def __init__(self, all_channel_ids: IntArray) -> None:
        self.all_ids = np.unique(np.asarray(all_channel_ids, dtype=np.int64))
        size = int(self.all_ids.size)
        self.seen = np.zeros(size, dtype=np.bool_)
        self.counts = np.zeros((size + 3, size + 3), dtype=np.int64)
        self.value: list[FloatArray] = []
        self.last: list[IntArray] = []
        self.members: list[npt.NDArray[np.bool_]] = []

    def _places(self, channel_ids: IntArray) -> IntArray:
        places = np.searchsorted(self.all_ids, channel_ids)
        if channel_ids.size and (
            np.any(places >= self.all_ids.size) or np.any(self.all_ids[places] != channel_ids)
        ):
            raise ValueError("a touch's channel is not among the channels")
        return places.astype(np.int64)

    def _transitions(self, paths: ChannelPaths, end_state: int) -> None:
        size = int(self.all_ids.size)
        counts = np.zeros((size + 3, size + 3))
        transitions_add(paths, size, end_state, counts)
        self.counts += counts.astype(np.int64)

    def add_converting(self, part: RunInput) -> None:
        size = int(self.all_ids.size)
        places = self._places(np.asarray(part.touch_channel, dtype=np.int64))
        self.seen[places] = True
        offsets = np.searchsorted(
            part.touch_conversion, np.arange(part.conversions + 1), side="left"
        ).astype(np.int64)
        paths = ChannelPaths(places, offsets)
        self._transitions(paths, size + 1)
        non_empty = paths.lengths > 0
        last = np.full(paths.count, -1, dtype=np.int64)
        last[non_empty] = places[offsets[1:][non_empty] - 1]
        members = np.zeros((paths.count, size), dtype=np.bool_)
        members[path_of_touch(offsets), places] = True
        self.value.append(np.asarray(part.value, dtype=np.float64))
        self.last.append(last)
        self.members.append(members)

    def add_nonconverting(self, channel: IntArray, starts: IntArray) -> None:
        places = self._places(np.asarray(channel, dtype=np.int64))
        self.seen[places] = True
        offsets = np.concatenate((starts, [places.size])).astype(np.int64)
        self._transitions(ChannelPaths(places, offsets), int(self.all_ids.size) + 2)

    def reduce(self) -> RunContext:
        """The channels' codes and Markov's fitted split, as the whole record gives them."""
        code_places = np.flatnonzero(self.seen)
        channel_ids = self.all_ids[code_places]
        n_channels = int(code_places.size)
        size = int(self.all_ids.size)
        states = np.concatenate((code_places, [size, size + 1, size + 2]))
        counts = self.counts[np.ix_(states, states)].astype(np.float64)
        value = np.concatenate([np.zeros(0), *self.value])
        last = np.concatenate([np.zeros(0, dtype=np.int64), *self.last])
        members = np.concatenate([np.zeros((0, size), dtype=np.bool_), *self.members])[
            :, code_places
        ]
        code_of_place = np.full(size, -1, dtype=np.int64)
        code_of_place[code_places] = np.arange(n_channels)
        non_empty = last >= 0
        try:
            into_conversion = weighted_count(
                code_of_place[last[non_empty]], value[non_empty], n_channels
            )
            effects = removal_effects_from_counts(counts, into_conversion, n_channels)
            weights = weights_from_effects(effects, float(value[non_empty].sum()))
            rows = np.packbits(members, axis=1)
            if rows.shape[1] == 0:
                rows = np.zeros((members.shape[0], 1), dtype=np.uint8)
            fit = set_fit(rows, value, weights, n_channels)
        except (FitError, np.linalg.LinAlgError, ValueError, FloatingPointError) as error:
            logger.warning("attribution: markov could not be computed: %s", error)
            return RunContext(channel_ids, None, f"{type(error).__name__}: {error}")
        return RunContext(
            channel_ids, fit, "", _unallocated_by_channel(fit.unallocated_channel, channel_ids)
        )


def credits_compute_part(
    part: RunInput, context: RunContext, *, half_life_days: float = DEFAULT_HALF_LIFE_DAYS
) -> list[CreditBlock]:
    """Every model's credits for one partition's conversions (``part``, read without the
    non-converting paths), with the run's global figures: the rows ``credits_compute``
    gives for these conversions on the whole record, bit for bit."""
    channel_ids = context.channel_ids
    codes = np.searchsorted(channel_ids, np.asarray(part.touch_channel, dtype=np.int64))
    converting, _, _ = _engine_input(part, channel_codes=(channel_ids, codes.astype(np.int64)))
    n_channels = int(channel_ids.size)

    def split_of(model: str) -> tuple[Split, dict[int, float]]:
        if model == MARKOV:
            if context.markov is None:
                raise ValueError(context.markov_unavailable or "markov was not fitted")
            split = split_from_fit(converting.channel_paths(), context.markov, n_channels)
            return split, context.markov_unallocated
        split = model_split(model, converting, None, half_life_days=half_life_days)
        return split, {}

    blocks = _blocks(converting, channel_ids, split_of)
    if context.markov is None:
        # The same reason as the whole-record run gives, not the partition's echo of it.
        blocks = [
            _unavailable(MARKOV, context.markov_unavailable) if block.model == MARKOV else block
            for block in blocks
        ]
    return blocks
