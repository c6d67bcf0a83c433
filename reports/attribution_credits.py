"""From a run's input to credit rows: every model, one row per (model, conversion,
channel, campaign).

Django-free on purpose (``reports.runs`` does the reading and writing): this
maps the record's ids to the engine's channel codes, runs the eight models and
sums their per-touch shares into rows with one ``bincount`` per model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .attribution.engine import MODEL_NAMES, touch_shares
from .attribution.heuristic import DEFAULT_HALF_LIFE_DAYS
from .attribution.paths import (
    ChannelPaths,
    ConvertingPaths,
    FloatArray,
    IntArray,
    weighted_count,
)
from .attribution.shapley import MAX_SHAPLEY_CHANNELS, TooManyChannelsError

if TYPE_CHECKING:  # run_input reads the database; only its shape is needed here
    from .run_input import RunInput

logger = logging.getLogger(__name__)

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


def credits_compute(
    run_input: RunInput, *, half_life_days: float = DEFAULT_HALF_LIFE_DAYS
) -> list[CreditBlock]:
    """Every model's credits for the run's conversions.

    Conversions nobody touched get no rows. Rows with a zero share are left out
    (first touch gives nothing to most of a path). ``shapley`` is left out, with
    a warning, when converting paths name more than 15 channels: its exact
    computation is refused there, and the other seven models still land.
    """
    converting, nonconverting, channel_ids = _engine_input(run_input)
    touch_row, (conversion, channel_code, campaign) = _row_keys(converting, channel_ids.size)
    rows = int(conversion.size)
    blocks = []
    for model in MODEL_NAMES:
        try:
            shares = touch_shares(model, converting, nonconverting, half_life_days=half_life_days)
        except TooManyChannelsError:
            logger.warning(
                "attribution: shapley left out, converting paths name more than %s channels",
                MAX_SHAPLEY_CHANNELS,
            )
            continue
        share = weighted_count(touch_row, shares, rows)
        kept = share > 0
        blocks.append(
            CreditBlock(
                model=model,
                conversion=conversion[kept],
                channel=channel_ids[channel_code[kept]],
                campaign=campaign[kept],
                credit=share[kept] * converting.value[conversion[kept]],
                share=share[kept],
            )
        )
    return blocks
