"""From channel-level credit to the touches of each conversion (for markov and shapley).

The data-driven models value channels, not touches. Each conversion is split
among the distinct channels on its own path in proportion to their channel
credit, and a channel's part is split evenly among its touches on that path
(so its campaigns share by how often they touched). Every conversion's shares
add up to exactly 1, which is what a per-conversion ledger needs; the price is
that the per-channel sums over conversions approximate, rather than equal, the
channel-level credits (a channel present on fewer paths keeps less of its
credit). If every channel on a path has zero credit, its distinct channels
share equally.
"""

from __future__ import annotations

import numpy as np

from .paths import ChannelPaths, FloatArray, path_of_touch, weighted_count

# Count (path, channel) pairs in a dense table while it is at most this many
# cells per touch (or 1 Mi cells): linear time and a bounded memory; past that
# (thousands of channels) a sort of the touches does it instead.
_DENSE_CELLS_PER_TOUCH = 8
_DENSE_CELLS_FLOOR = 1 << 20


def touch_shares_from_channel_weights(
    paths: ChannelPaths, weights: FloatArray, n_channels: int
) -> FloatArray:
    """Per touch, its part of its conversion (see the module's docstring)."""
    touches = paths.channel.size
    if touches == 0:
        return np.zeros(0)
    count = paths.count
    path = path_of_touch(paths.offsets)
    channel = paths.channel
    key = path * n_channels + channel
    cells = count * n_channels
    if cells <= max(_DENSE_CELLS_PER_TOUCH * touches, _DENSE_CELLS_FLOOR):
        pair_counts = np.bincount(key, minlength=cells)
        touches_of_pair = pair_counts[key]
        present = (pair_counts.reshape(count, n_channels) > 0).astype(np.float64)
        denominator = present @ weights
        distinct = present.sum(axis=1)
    else:
        pairs, inverse, pair_counts = np.unique(key, return_inverse=True, return_counts=True)
        touches_of_pair = pair_counts[inverse.reshape(-1)]
        pair_path = pairs // n_channels
        denominator = weighted_count(pair_path, weights[pairs % n_channels], count)
        distinct = np.bincount(pair_path, minlength=count).astype(np.float64)
    weighted = denominator[path] > 0
    safe_denominator = np.where(weighted, denominator[path], 1.0)
    by_weight = weights[channel] / safe_denominator
    evenly = 1.0 / np.maximum(distinct[path], 1.0)
    return np.where(weighted, by_weight, evenly) / touches_of_pair
