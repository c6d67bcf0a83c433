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

For this worth function the Shapley value has a closed form (Zhao et al.,
section 3, "simplified Shapley value"): the game is a sum of unanimity games,
one per channel set ``T`` with dividend ``r(T)``, and a unanimity game's value
goes in equal parts to the members of ``T``. So a channel's value is the sum,
over the converting paths it is on, of the path's conversions (or value)
divided by the number of distinct channels on the path: one pass over the
touches, for any number of channels. The tests check it against the
definition (all coalitions, and all orderings) on small games.
"""

from __future__ import annotations

import numpy as np

from .distribution import path_sets
from .paths import (
    ChannelPaths,
    FloatArray,
    channel_credit_arguments,
    paths_split,
)


def shapley_channel_weights(
    converting: ChannelPaths, n_channels: int, value: FloatArray | None = None
) -> FloatArray:
    """Per channel code, its Shapley value (conversions, or value given one per path)."""
    weights = np.ones(converting.count) if value is None else np.asarray(value, dtype=float)
    if converting.channel.size == 0:
        return np.zeros(n_channels)
    sets = path_sets(converting, n_channels)
    has_set = sets.set_of_path >= 0
    set_weight = np.bincount(
        sets.set_of_path[has_set], weights=weights[has_set], minlength=len(sets.members)
    )
    sizes = sets.members.sum(axis=1)
    credits: FloatArray = (set_weight / np.maximum(sizes, 1)) @ sets.members
    return credits[:n_channels] if n_channels else np.zeros(0)


def shapley_channel_credit(
    paths: list[list[str]],
    converted: list[bool],
    values: list[float] | None = None,
) -> dict[str, float]:
    """Channel-level Shapley credits (see the module's docstring).

    Same arguments as ``markov_channel_credit``; the credits add up to the
    number of converting paths with at least one touch (or their total value).
    Every channel named in any path has an entry.
    """
    channel_paths, names, chosen, value = channel_credit_arguments(paths, converted, values)
    converting, _ = paths_split(channel_paths, chosen)
    weights = shapley_channel_weights(converting, len(names), value)
    return {name: float(weight) for name, weight in zip(names, weights, strict=True)}
