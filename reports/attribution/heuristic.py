"""The six rule-based models, as per-touch shares of each conversion.

Each function returns one float per touch: the part of its conversion that the
touch earns. The shares of a non-empty path add up to 1; an empty path (a
conversion nobody touched) has no touches and so earns nothing. Every function
is a fixed number of vector passes over the touches, whatever the paths' lengths.
"""

from __future__ import annotations

import numpy as np

from .paths import (
    SECONDS_PER_DAY,
    ConvertingPaths,
    FloatArray,
    IntArray,
    path_of_touch,
    weighted_count,
)

DEFAULT_HALF_LIFE_DAYS = 7.0

# position_based: the first and the last touch take 40% each, the middle shares 20%.
POSITION_ENDS = 0.4
POSITION_MIDDLE = 0.2

# w_shaped: the first, the handoff and the deal-creation touch take 30% each; the rest 10%.
W_FIRST = 0.3
W_HANDOFF = 0.3
W_DEAL_CREATION = 0.3
W_REST = 0.1


def _positions(paths: ConvertingPaths) -> tuple[IntArray, IntArray, IntArray]:
    """Per touch: its path, its position in the path, and the path's length."""
    path = path_of_touch(paths.offsets)
    position = np.arange(paths.channel.size, dtype=np.int64) - paths.offsets[path]
    return path, position, paths.lengths[path]


def first_touch_shares(paths: ConvertingPaths) -> FloatArray:
    """The first touch of each path takes the whole conversion."""
    shares = np.zeros(paths.channel.size)
    shares[paths.offsets[:-1][paths.lengths > 0]] = 1.0
    return shares


def last_touch_shares(paths: ConvertingPaths) -> FloatArray:
    """The last touch of each path takes the whole conversion."""
    shares = np.zeros(paths.channel.size)
    shares[paths.offsets[1:][paths.lengths > 0] - 1] = 1.0
    return shares


def linear_shares(paths: ConvertingPaths) -> FloatArray:
    """Every touch of a path takes the same part."""
    _, _, length = _positions(paths)
    return 1.0 / length


def time_decay_shares(
    paths: ConvertingPaths, half_life_days: float = DEFAULT_HALF_LIFE_DAYS
) -> FloatArray:
    """A touch ``d`` days before its conversion weighs ``2 ** (-d / half_life_days)``;
    the weights of a path are scaled to add up to 1.

    Scaling makes the weights relative, so each path's are computed from its
    youngest touch (exponent 0): a path whose touches all lie years back does
    not underflow to 0/0.
    """
    if not np.isfinite(half_life_days) or half_life_days <= 0:
        raise ValueError("half_life_days must be a positive number of days")
    if paths.channel.size == 0:
        return np.zeros(0)
    path, _, _ = _positions(paths)
    age_days = (paths.converted_at[path] - paths.time) / SECONDS_PER_DAY
    starts = paths.offsets[:-1][paths.lengths > 0]
    youngest = np.empty(paths.count)
    youngest[paths.lengths > 0] = np.minimum.reduceat(age_days, starts)
    weights = np.exp2(-(age_days - youngest[path]) / half_life_days)
    totals = weighted_count(path, weights, paths.count)
    return weights / totals[path]


def position_based_shares(paths: ConvertingPaths) -> FloatArray:
    """40% to the first touch, 40% to the last, 20% spread evenly over those between.

    A path of one touch gives it everything; a path of two splits 50/50.
    """
    _, position, length = _positions(paths)
    at_an_end = (position == 0) | (position == length - 1)
    middle = POSITION_MIDDLE / np.maximum(length - 2, 1)
    return np.where(
        length == 1,
        1.0,
        np.where(length == 2, 0.5, np.where(at_an_end, POSITION_ENDS, middle)),
    )


def w_shaped_shares(paths: ConvertingPaths) -> FloatArray:
    """30% to the first touch, 30% to the handoff touch, 30% to the deal-creation touch,
    10% spread evenly over the remaining touches.

    Four groups of touches: the first touch; the handoff touches (flagged
    ``is_handoff``); the deal-creation touches (flagged ``is_deal_creation``);
    the rest (every touch in none of the other three). A touch in several groups
    adds up their shares: a single touch that is first, handoff and deal-creation
    at once takes 90% + the rest's 10% = everything. Several touches flagged for
    one marker split its share evenly.

    A group that is empty in a path (no handoff touch, no deal-creation touch,
    or no touch left over for the rest) drops out, and the groups that remain
    are scaled up in proportion so the path still adds up to exactly 1. So a
    path without a handoff gives 3/7, 3/7 and 1/7 to first, deal creation and
    the rest; a path of first + handoff + deal-creation touches only gives a
    third to each. This keeps the models' ratios between the positions that do
    exist instead of inventing a position for the missing one.
    """
    path, position, _ = _positions(paths)
    count = paths.count
    first = position == 0
    handoff = paths.is_handoff
    deal = paths.is_deal_creation
    rest = ~(first | handoff | deal)

    def group_count(members: np.ndarray) -> FloatArray:
        return weighted_count(path, members.astype(np.float64), count)

    has_touches = (paths.lengths > 0).astype(np.float64)
    handoffs = group_count(handoff)
    deals = group_count(deal)
    rests = group_count(rest)
    weight_first = W_FIRST * has_touches
    weight_handoff: FloatArray = W_HANDOFF * (handoffs > 0).astype(np.float64)
    weight_deal: FloatArray = W_DEAL_CREATION * (deals > 0).astype(np.float64)
    weight_rest: FloatArray = W_REST * (rests > 0).astype(np.float64)
    total = weight_first + weight_handoff + weight_deal + weight_rest
    total[total == 0] = 1.0  # only empty paths, which have no touches to divide among

    def each(weight: FloatArray, members: FloatArray) -> FloatArray:
        return weight / np.maximum(members, 1.0) / total

    return (
        first * each(weight_first, has_touches)[path]
        + handoff * each(weight_handoff, handoffs)[path]
        + deal * each(weight_deal, deals)[path]
        + rest * each(weight_rest, rests)[path]
    )
