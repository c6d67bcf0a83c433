"""Channel-level Shapley values over the channel sets of the converting paths.

The players are the channels that appear on a converting path (a channel seen
only on non-converting paths adds nothing to any coalition, so it is a null
player with value 0 and is left out of the game). The worth of a coalition
``S`` is the standard one for attribution (Zhao, Mahboobi and Bagheri, 2018,
"Shapley Value Methods for Attribution Modeling in Online Advertising"): the
conversions (or value) of every path whose set of channels is a subset of
``S``, ``v(S) = sum of r(T) for T subset of S``, where ``r(T)`` is what the
paths with channel set exactly ``T`` brought in. Non-converting paths bring in
nothing, so only converting paths matter; ``v(all channels)`` is the total,
and so the Shapley values add up to it.

Computed exactly by enumerating all ``2 ** k`` coalitions as bit masks: ``r``
is one ``bincount`` over the paths' masks, ``v`` its zeta transform (k vector
passes), and each channel's value the weighted sum of its marginal
contributions ``v(S + c) - v(S)`` over the coalitions without it, with the
Shapley weight ``|S|! (k - |S| - 1)! / k!`` looked up by a popcount. At most
15 channels (32,768 coalitions); more are refused. For this worth function the
result equals splitting each path's conversions evenly among its distinct
channels (the tests check both against each other and against permutations).
"""

from __future__ import annotations

from math import comb

import numpy as np

from .paths import (
    ChannelPaths,
    FloatArray,
    IntArray,
    channel_credit_arguments,
    paths_split,
    weighted_count,
)

MAX_SHAPLEY_CHANNELS = 15


class TooManyChannelsError(ValueError):
    """More channels than the exact enumeration of coalitions allows."""


def popcount(masks: IntArray) -> IntArray:
    """Set bits of each (non-negative, < 2**32) mask, by the SWAR bit trick."""
    bits = masks.astype(np.uint32)
    bits = bits - ((bits >> np.uint32(1)) & np.uint32(0x55555555))
    bits = (bits & np.uint32(0x33333333)) + ((bits >> np.uint32(2)) & np.uint32(0x33333333))
    bits = (bits + (bits >> np.uint32(4))) & np.uint32(0x0F0F0F0F)
    return ((bits * np.uint32(0x01010101)) >> np.uint32(24)).astype(np.int64)


def coalition_worth(masks: IntArray, weights: FloatArray, players: int) -> FloatArray:
    """``v[S]`` for every coalition mask ``S``: the weight of the paths whose mask is in ``S``."""
    worth = weighted_count(masks, weights, 1 << players)
    for player in range(players):
        halves = worth.reshape(-1, 2, 1 << player)
        halves[:, 1, :] += halves[:, 0, :]
    return worth


def shapley_values(worth: FloatArray, players: int) -> FloatArray:
    """Exact Shapley values of the game ``worth`` (indexed by coalition mask)."""
    if players == 0:
        return np.zeros(0)
    sizes = popcount(np.arange(1 << players, dtype=np.int64))
    # The weight of a coalition of s others: s! (k - s - 1)! / k! = 1 / (k * C(k - 1, s)).
    weight_of_size = np.array(
        [1.0 / (players * comb(players - 1, size)) for size in range(players)]
    )
    values = np.empty(players)
    for player in range(players):
        halves = worth.reshape(-1, 2, 1 << player)
        gain = halves[:, 1, :] - halves[:, 0, :]
        without = sizes.reshape(-1, 2, 1 << player)[:, 0, :]
        values[player] = float((weight_of_size[without] * gain).sum())
    return values


def shapley_channel_weights(
    converting: ChannelPaths, n_channels: int, value: FloatArray | None = None
) -> FloatArray:
    """Per channel code, its Shapley value (conversions, or value given one per path)."""
    non_empty = converting.lengths > 0
    weights = np.ones(converting.count) if value is None else np.asarray(value, dtype=float)
    if converting.channel.size == 0:
        return np.zeros(n_channels)
    present = np.bincount(converting.channel, minlength=n_channels) > 0
    players = np.flatnonzero(present)
    if players.size > MAX_SHAPLEY_CHANNELS:
        raise TooManyChannelsError(
            f"Shapley values are computed exactly for at most {MAX_SHAPLEY_CHANNELS} channels; "
            f"the converting paths have {players.size}"
        )
    player_of_channel = np.full(n_channels, -1, dtype=np.int64)
    player_of_channel[players] = np.arange(players.size)
    bits = np.left_shift(np.int64(1), player_of_channel[converting.channel])
    masks = np.bitwise_or.reduceat(bits, converting.offsets[:-1][non_empty])
    worth = coalition_worth(masks, weights[non_empty], int(players.size))
    credits = np.zeros(n_channels)
    credits[players] = shapley_values(worth, int(players.size))
    return credits


def shapley_channel_credit(
    paths: list[list[str]],
    converted: list[bool],
    values: list[float] | None = None,
) -> dict[str, float]:
    """Channel-level Shapley credits (see the module's docstring).

    Same arguments as ``markov_channel_credit``; the credits add up to the
    number of converting paths with at least one touch (or their total value).
    Every channel named in any path has an entry. More than 15 channels on
    converting paths raise ``TooManyChannelsError`` (a ValueError).
    """
    channel_paths, names, chosen, value = channel_credit_arguments(paths, converted, values)
    converting, _ = paths_split(channel_paths, chosen)
    weights = shapley_channel_weights(converting, len(names), value)
    return {name: float(weight) for name, weight in zip(names, weights, strict=True)}
