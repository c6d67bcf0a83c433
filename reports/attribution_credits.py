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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .attribution.distribution import FitError
from .attribution.engine import MODEL_NAMES, model_split
from .attribution.heuristic import DEFAULT_HALF_LIFE_DAYS
from .attribution.paths import (
    ChannelPaths,
    ConvertingPaths,
    FloatArray,
    IntArray,
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


def _engine_input(run_input: RunInput) -> tuple[ConvertingPaths, ChannelPaths, IntArray]:
    """The run's arrays in the engine's layout; also the channel id of each channel code."""
    conversions = run_input.conversions
    touch_conversion = np.asarray(run_input.touch_conversion, dtype=np.int64)
    if touch_conversion.size and np.any(np.diff(touch_conversion) < 0):
        raise ValueError("touches must be grouped by conversion, in conversion order")
    offsets = np.searchsorted(touch_conversion, np.arange(conversions + 1), side="left")
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
    """Every model's credits for the run's conversions.

    Conversions nobody touched get no rows. Rows with a zero share are left out
    (first touch gives nothing to most of a path). A model that cannot be
    computed gets a block with no rows and the reason in ``unavailable``; the
    other models still land.
    """
    converting, nonconverting, channel_ids = _engine_input(run_input)
    touch_row, (conversion, channel_code, campaign) = _row_keys(converting, channel_ids.size)
    rows = int(conversion.size)
    blocks = []
    for model in MODEL_NAMES:
        try:
            split = model_split(model, converting, nonconverting, half_life_days=half_life_days)
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
            unallocated = {
                int(channel_ids[code]): float(amount)
                for code, amount in enumerate(split.unallocated_channel[: channel_ids.size])
                if amount > 0
            }
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
