"""The eight models behind one call: per-touch shares of each conversion.

``attribute`` returns, for each model, one float per touch of the converting
paths: the part of its conversion the touch earns (multiply by the
conversion's value for money). Callers sum those by whatever they report on
(channel, campaign, team) with one ``bincount``. ``model_split`` also gives
what markov cannot place on any converting path (``distribution.Split``): a
non-empty path's shares plus its unallocated part add up to 1, and per
channel the placed plus the unallocated credit is the model's channel credit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .distribution import Split, even_split, fitted_split
from .heuristic import (
    DEFAULT_HALF_LIFE_DAYS,
    first_touch_shares,
    last_touch_shares,
    linear_shares,
    position_based_shares,
    time_decay_shares,
    w_shaped_shares,
)
from .markov import markov_channel_weights
from .paths import (
    ChannelPaths,
    ConvertingPaths,
    FloatArray,
    channel_codes,
    offsets_from_lengths,
    path_of_touch,
)
from .shapley import shapley_channel_weights

FIRST_TOUCH = "first_touch"
LAST_TOUCH = "last_touch"
LINEAR = "linear"
TIME_DECAY = "time_decay"
POSITION_BASED = "position_based"
W_SHAPED = "w_shaped"
MARKOV = "markov"
SHAPLEY = "shapley"
MODEL_NAMES = (
    FIRST_TOUCH,
    LAST_TOUCH,
    LINEAR,
    TIME_DECAY,
    POSITION_BASED,
    W_SHAPED,
    MARKOV,
    SHAPLEY,
)


def n_channels_of(converting: ConvertingPaths, nonconverting: ChannelPaths) -> int:
    """One more than the highest channel code on any path."""
    highest = -1
    for channels in (converting.channel, nonconverting.channel):
        if channels.size:
            highest = max(highest, int(channels.max()))
    return highest + 1


def channel_weights(
    model: str,
    converting: ConvertingPaths,
    nonconverting: ChannelPaths | None = None,
) -> FloatArray:
    """Per channel code, the value-based channel credit of ``markov`` or ``shapley``."""
    nonconverting = nonconverting if nonconverting is not None else ChannelPaths.empty()
    n_channels = n_channels_of(converting, nonconverting)
    if model == MARKOV:
        return markov_channel_weights(
            converting.channel_paths(), nonconverting, n_channels, converting.value
        )
    if model == SHAPLEY:
        return shapley_channel_weights(converting.channel_paths(), n_channels, converting.value)
    raise ValueError(f"{model!r} has no channel-level credit; use markov or shapley")


def model_split(
    model: str,
    converting: ConvertingPaths,
    nonconverting: ChannelPaths | None = None,
    *,
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
) -> Split:
    """Per touch of ``converting``, the part of its conversion that ``model`` gives it;
    per conversion and per channel code, what markov cannot place (zero for the others).

    ``shapley`` splits each conversion evenly among its path's distinct channels
    (exactly its channel credit); ``markov`` fits the split to its channel credit
    (``distribution``'s docstring).
    """
    n_channels = n_channels_of(converting, nonconverting or ChannelPaths.empty())
    if model == MARKOV:
        weights = channel_weights(model, converting, nonconverting)
        return fitted_split(converting.channel_paths(), converting.value, weights, n_channels)
    if model == SHAPLEY:
        shares = even_split(converting.channel_paths(), n_channels)
    else:
        shares = _rule_based_shares(model, converting, half_life_days)
    return Split(shares, np.zeros(converting.count), np.zeros(n_channels))


def _rule_based_shares(
    model: str, converting: ConvertingPaths, half_life_days: float
) -> FloatArray:
    if model == FIRST_TOUCH:
        return first_touch_shares(converting)
    if model == LAST_TOUCH:
        return last_touch_shares(converting)
    if model == LINEAR:
        return linear_shares(converting)
    if model == TIME_DECAY:
        return time_decay_shares(converting, half_life_days)
    if model == POSITION_BASED:
        return position_based_shares(converting)
    if model == W_SHAPED:
        return w_shaped_shares(converting)
    raise ValueError(f"unknown attribution model {model!r}; known: {', '.join(MODEL_NAMES)}")


def touch_shares(
    model: str,
    converting: ConvertingPaths,
    nonconverting: ChannelPaths | None = None,
    *,
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
) -> FloatArray:
    """Per touch of ``converting``, the part of its conversion that ``model`` gives it
    (``model_split`` without the unallocated parts)."""
    return model_split(model, converting, nonconverting, half_life_days=half_life_days).touch


def attribute(
    converting: ConvertingPaths,
    nonconverting: ChannelPaths | None = None,
    *,
    models: Iterable[str] = MODEL_NAMES,
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
) -> dict[str, FloatArray]:
    """Per model, per touch, the part of its conversion the touch earns."""
    return {
        model: touch_shares(model, converting, nonconverting, half_life_days=half_life_days)
        for model in models
    }


def touch_credits(shares: FloatArray, converting: ConvertingPaths) -> FloatArray:
    """Shares of conversions to amounts: each touch's share times its conversion's value."""
    return shares * converting.value[path_of_touch(converting.offsets)]


@dataclass(frozen=True)
class Touch:
    """One touch, for building small inputs by hand (tests, examples)."""

    channel: str
    time: float = 0.0
    campaign: int = 0
    team: int = 0
    is_handoff: bool = False
    is_deal_creation: bool = False


def engine_input_from_lists(
    converting: Sequence[Sequence[Touch]],
    values: Sequence[float],
    nonconverting: Sequence[Sequence[str]] = (),
    converted_at: Sequence[float] | None = None,
) -> tuple[ConvertingPaths, ChannelPaths, list[str]]:
    """Lists of touches to the engine's arrays, with one channel coding for both kinds of
    path; also the channel names in code order."""
    touches = [touch for path in converting for touch in path]
    names = [touch.channel for touch in touches] + [c for path in nonconverting for c in path]
    codes, distinct = channel_codes(names)
    split = len(touches)
    paths = ConvertingPaths(
        channel=codes[:split],
        offsets=offsets_from_lengths([len(path) for path in converting]),
        value=np.asarray(values, dtype=np.float64),
        time=np.array([touch.time for touch in touches], dtype=np.float64),
        converted_at=(
            np.asarray(converted_at, dtype=np.float64) if converted_at is not None else np.zeros(0)
        ),
        is_handoff=np.array([touch.is_handoff for touch in touches], dtype=np.bool_),
        is_deal_creation=np.array([touch.is_deal_creation for touch in touches], dtype=np.bool_),
        campaign=np.array([touch.campaign for touch in touches], dtype=np.int64),
        team=np.array([touch.team for touch in touches], dtype=np.int64),
    )
    others = ChannelPaths(
        codes[split:], offsets_from_lengths([len(path) for path in nonconverting])
    )
    return paths, others, [str(name) for name in distinct]
