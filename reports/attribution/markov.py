"""First-order Markov attribution by removal effect, computed exactly.

The chain's states are the channels plus ``start``, ``conversion`` and
``null``. Every path contributes ``start -> c1 -> c2 -> ... -> ck -> end``
where ``end`` is ``conversion`` for a converting path and ``null`` otherwise;
transition probabilities are the observed transition counts over all paths,
divided by their row sums. An empty path has no channel to credit and is
left out (counting it as ``start -> conversion`` would scale every removal
effect by the same factor, leaving the normalized credits as they are).

With ``Q`` the channel-to-channel block, ``r`` the channel-to-conversion
column and ``s`` the start row, the fundamental matrix ``N = (I - Q)^-1`` gives
``x = N r`` (the probability of converting from each channel), ``y = s N``
(the expected visits to each channel from start) and ``p = y . r`` (the
probability of converting). Removing channel ``c`` (every transition into it
goes to ``null`` instead) leaves exactly the conversions that never visit
``c``; the probability of ever visiting ``c`` is ``y_c / N_cc``, and from there
``x_c`` of them convert, so::

    p_without_c = p - y_c * x_c / N_cc
    removal_effect_c = 1 - p_without_c / p = y_c * x_c / (N_cc * p)

(the rank-one Sherman-Morrison update of ``I - Q`` with row ``c`` cleared,
written out). One matrix inverse serves every channel; no simulation.

Values: the expected value of a conversion entered from channel ``c`` is the
mean value of the converting paths ending in ``c``, so ``r`` is replaced by
``r_value_c = (value of the conversions entered from c) / (transitions out of
c)`` and the same formula gives the value removal effects.

Channel credit = removal effects scaled to add up to the total conversions
(or the total value).
"""

from __future__ import annotations

import numpy as np

from .paths import (
    ChannelPaths,
    FloatArray,
    channel_credit_arguments,
    paths_split,
    weighted_count,
)


def transitions_add(
    paths: ChannelPaths, n_channels: int, end_state: int, counts: FloatArray
) -> None:
    """Add ``paths``' transitions (start, between channels, to ``end_state``) to ``counts``."""
    states = n_channels + 3
    start = n_channels
    non_empty = paths.lengths > 0
    if not np.any(non_empty):
        return
    channel = paths.channel
    firsts_at = paths.offsets[:-1][non_empty]
    lasts_at = paths.offsets[1:][non_empty] - 1
    # Every pair of neighbouring touches, then less the pairs that straddle two paths
    # (fewer than the paths): cheaper than masking the touches.
    pair = channel[:-1] * states + channel[1:]
    straddling = pair[lasts_at[:-1]]
    cells = states * states
    flat = np.bincount(pair, minlength=cells) - np.bincount(straddling, minlength=cells)
    flat += np.bincount(start * states + channel[firsts_at], minlength=cells)
    flat += np.bincount(channel[lasts_at] * states + end_state, minlength=cells)
    counts += flat.reshape(states, states)


def transition_counts(
    converting: ChannelPaths, nonconverting: ChannelPaths, n_channels: int
) -> FloatArray:
    """The chain's transition counts: states are the channel codes, then start,
    conversion and null."""
    states = n_channels + 3
    counts = np.zeros((states, states))
    transitions_add(converting, n_channels, n_channels + 1, counts)
    # The null column never enters the equations: it only fills the rows' sums.
    transitions_add(nonconverting, n_channels, n_channels + 2, counts)
    return counts


def last_channel_value(converting: ChannelPaths, value: FloatArray, n_channels: int) -> FloatArray:
    """Per channel code, the value of the converting paths that end on it."""
    non_empty = converting.lengths > 0
    lasts = converting.channel[converting.offsets[1:][non_empty] - 1]
    return weighted_count(lasts, value[non_empty], n_channels)


def removal_effects_from_counts(
    counts: FloatArray, into_conversion: FloatArray | None, n_channels: int
) -> FloatArray:
    """Per channel code, its removal effect, from the transition counts (and the value
    entering conversion from each channel; None counts conversions)."""
    start, conversion = n_channels, n_channels + 1
    leaving = counts[:n_channels].sum(axis=1)
    leaving_safe = np.where(leaving > 0, leaving, 1.0)  # a channel nobody visited: no row
    transient = counts[:n_channels, :n_channels] / leaving_safe[:, None]
    if into_conversion is None:
        into_conversion = counts[:n_channels, conversion]
    reward = into_conversion / leaving_safe
    from_start = counts[start, :n_channels] / max(counts[start].sum(), 1.0)
    fundamental = np.linalg.solve(np.eye(n_channels) - transient, np.eye(n_channels))
    converts_from = fundamental @ reward
    visits = from_start @ fundamental
    converting_probability = float(visits @ reward)
    if converting_probability <= 0:
        return np.zeros(n_channels)
    effects = visits * converts_from / (np.diag(fundamental) * converting_probability)
    # Rounding can leave -1e-17 where a channel carries nothing.
    return np.clip(effects, 0.0, 1.0)


def markov_removal_effects(
    converting: ChannelPaths,
    nonconverting: ChannelPaths,
    n_channels: int,
    value: FloatArray | None = None,
) -> FloatArray:
    """Per channel code, its removal effect on conversions (or on value, given one per
    converting path)."""
    counts = transition_counts(converting, nonconverting, n_channels)
    into_conversion = None if value is None else last_channel_value(converting, value, n_channels)
    return removal_effects_from_counts(counts, into_conversion, n_channels)


def weights_from_effects(effects: FloatArray, total: float) -> FloatArray:
    """Removal effects scaled to ``total`` (the conversions or the value)."""
    effect_sum = float(effects.sum())
    if effect_sum <= 0 or total <= 0:
        return np.zeros(effects.size)
    return effects / effect_sum * total


def markov_channel_weights(
    converting: ChannelPaths,
    nonconverting: ChannelPaths,
    n_channels: int,
    value: FloatArray | None = None,
) -> FloatArray:
    """Per channel code, its credit: removal effects scaled to the total conversions
    (or total value) of the non-empty converting paths."""
    effects = markov_removal_effects(converting, nonconverting, n_channels, value)
    non_empty = converting.lengths > 0
    total = float(non_empty.sum()) if value is None else float(value[non_empty].sum())
    return weights_from_effects(effects, total)


def markov_channel_credit(
    paths: list[list[str]],
    converted: list[bool],
    values: list[float] | None = None,
) -> dict[str, float]:
    """Channel credits of the first-order Markov removal-effect model.

    ``paths[i]`` is a path's channels in time order and ``converted[i]`` whether
    it converted; ``values[i]`` (ignored for non-converting paths) switches the
    credit from conversions to value. The credits add up to the number of
    converting paths with at least one touch (or their total value). Every
    channel named in any path has an entry.
    """
    channel_paths, names, chosen, value = channel_credit_arguments(paths, converted, values)
    converting, nonconverting = paths_split(channel_paths, chosen)
    weights = markov_channel_weights(converting, nonconverting, len(names), value)
    return {name: float(weight) for name, weight in zip(names, weights, strict=True)}
