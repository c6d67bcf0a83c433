"""From channel-level credit to the touches of each conversion (for markov and shapley).

The data-driven models value channels, not touches; a run stores credit per
conversion, so each conversion's value has to be split among the channels on
its own path. The split must keep both margins: every conversion's parts add up
to its value, and every channel's parts, summed over the conversions, add up to
the model's credit for that channel. (Splitting by the global channel credits
keeps the first margin only: it favours big channels and starves small ones.)

- ``even_split``: each conversion split evenly among its path's distinct
  channels. For Zhao et al.'s simplified Shapley value this *is* the model:
  the channel credits are exactly these sums.
- ``fitted_split``: any channel credits (markov's) fitted to both margins.
  The table ``x[i, k]`` (conversion ``i``, channel ``k`` on its path) of least
  information relative to the even split is the product form ``x[i, k] =
  v[i] b[k] / sum of b over i's channels`` (what iterative proportional fitting
  restricted to each path's channels converges to); ``b`` is found by Newton's
  method on the convex dual, which reaches the margins to rounding error where
  proportional fitting only creeps towards them.

Some credit cannot be placed: a channel that is on no converting path, or on
fewer converting paths than its credit needs (markov gives removal effect
earned on non-converting paths), has more credit than the conversions it
touched can carry. That remainder is *unallocated*: each conversion keeps the
part of its value that no channel on its path claims, and per channel the
part of its credit no conversion holds, so the two add up to the same amount
and neither margin loses anything. The fit finds the most that can be placed
(a maximum flow), with an extra "unallocated" column that every conversion
may use and an extra row that holds every channel's unplaced credit, both
priced ``epsilon`` so that the fit uses them only where it must; ``epsilon``
shrinks in steps to 1e-14, warm-started each time. Where everything can be
placed, a last stage drops those cells (the exact product form, nothing left
over). A fit that misses a channel's credit by more than 1e-10 of it (or, for a
channel so small that this is less, by more than 1e-15 of the total, the rounding its
credit carries) raises ``FitError``: the run then names markov as not computed, with
the reason.

Conversions are grouped by their set of distinct channels first: conversions
with the same set split in the same proportions, so the fit works on the sets
(at most one per conversion, usually far fewer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .paths import ChannelPaths, FloatArray, IntArray, path_of_touch, weighted_count

BoolArray = npt.NDArray[np.bool_]

# Errors are relative, each channel's against its own credit, so a small channel is held
# to the same standard as a big one.
# Newton stops when every channel's margin is this close.
_MARGIN_TOLERANCE = 1e-14
_NEWTON_STEPS = 200
# Below this error only rounding is left to fight.
_ROUNDING_ZONE = 1e-11
# Past this the fit has failed, and the model is refused (the margins promise 1e-9).
_FIT_FAILURE = 1e-10
# Markov's credits are differences of conversion probabilities near 1, so each carries
# rounding of a few parts in 1e16 of the total whatever its size: the credits of a tiny
# channel and the values of the sets it shares can disagree by that much, and no split
# can close it. A miss within this part of the total is that rounding, not a failure.
_CREDIT_ROUNDING = 1e-15
# The prices of the unallocated cells, from coarse to fine; the last one bounds how
# much credit the fit leaves unallocated where everything could be placed.
_EPSILONS = (1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12, 1e-14)
_NEGLIGIBLE = 1e-14
# A channel's error is relative to its credit, or to this part of the total if smaller.
_SMALLEST_SCALE = 1e-12
# A channel's unplaced credit below this part of it is the rounding of its sums.
_ROUNDING_OF_SUMS = 1e-12
# A set's unplaced share below this is rounding.
_ROUNDING = 1e-15
# Unallocated credit below this part of the total may be the fit's epsilon: the fit then
# tries to place everything.
_UNALLOCATED_FLOOR = 1e-8


# The dual objective, the margins' errors, the sets' shares and the spare row's shares.
_State = tuple[float, "FloatArray", "FloatArray", "FloatArray"]


class FitError(ArithmeticError):
    """The split of a model's credit over conversions did not reach its margins."""


@dataclass(frozen=True)
class PathSets:
    """Converting paths grouped by their set of distinct channels."""

    set_of_path: IntArray  # per path, its set's index; -1 for an empty path
    members: BoolArray  # (sets, n_channels): the channels of each set
    touches_of_pair: IntArray  # per touch, how many touches its channel has on its path
    rows: npt.NDArray[np.uint8]  # (sets, bytes): each set as a packed bit row, in order


@dataclass(frozen=True)
class Split:
    """Per touch, its part of its conversion; per conversion, the part no channel on its
    path carries; per channel code, its credit no conversion carries (in value)."""

    touch: FloatArray
    unallocated: FloatArray
    unallocated_channel: FloatArray


def packed_rows(paths: ChannelPaths, n_channels: int) -> tuple[npt.NDArray[np.uint8], IntArray]:
    """Per path, its set of distinct channels as a packed bit row; per touch, how many
    touches its channel has on its path."""
    count = paths.count
    n_channels = max(n_channels, 1)
    packed = np.zeros((count, (n_channels + 7) // 8), dtype=np.uint8)
    if paths.channel.size == 0:
        return packed, np.zeros(0, dtype=np.int64)
    path = path_of_touch(paths.offsets)
    key = path * n_channels + paths.channel
    pairs, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    touches_of_pair = counts[inverse.reshape(-1)].astype(np.int64)
    pair_path, pair_channel = pairs // n_channels, pairs % n_channels
    np.bitwise_or.at(
        packed, (pair_path, pair_channel // 8), (1 << (7 - pair_channel % 8)).astype(np.uint8)
    )
    return packed, touches_of_pair


def path_sets(paths: ChannelPaths, n_channels: int) -> PathSets:
    """Group the paths by their distinct channels (bit rows, compared with one sort)."""
    count = paths.count
    n_channels = max(n_channels, 1)
    if paths.channel.size == 0:
        return PathSets(
            np.full(count, -1, dtype=np.int64),
            np.zeros((0, n_channels), dtype=np.bool_),
            np.zeros(0, dtype=np.int64),
            np.zeros((0, (n_channels + 7) // 8), dtype=np.uint8),
        )
    packed, touches_of_pair = packed_rows(paths, n_channels)
    non_empty = paths.lengths > 0
    sets, set_index = np.unique(packed[non_empty], axis=0, return_inverse=True)
    set_of_path = np.full(count, -1, dtype=np.int64)
    set_of_path[non_empty] = set_index.reshape(-1)
    members = np.unpackbits(sets, axis=1, count=n_channels).astype(np.bool_)
    return PathSets(set_of_path, members, touches_of_pair, sets)


def _split_from_set_shares(
    paths: ChannelPaths, sets: PathSets, shares: FloatArray, unallocated_of_set: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Per touch its part (its set's share of its channel over its channel's touches), and
    per conversion its unallocated part."""
    if paths.channel.size == 0:
        return np.zeros(0), np.zeros(paths.count)
    path = path_of_touch(paths.offsets)
    touch = shares[sets.set_of_path[path], paths.channel] / sets.touches_of_pair
    unallocated = np.where(
        sets.set_of_path >= 0, unallocated_of_set[np.maximum(sets.set_of_path, 0)], 0.0
    )
    return touch, unallocated


def even_split(paths: ChannelPaths, n_channels: int) -> FloatArray:
    """Per touch: one over its path's distinct channels, over its channel's touches there."""
    sets = path_sets(paths, n_channels)
    sizes = sets.members.sum(axis=1, keepdims=True)
    shares = sets.members / np.maximum(sizes, 1)
    touch, _ = _split_from_set_shares(paths, sets, shares, np.zeros(len(sets.members)))
    return touch


@dataclass(frozen=True)
class SetFit:
    """A fitted split by set of channels: a conversion whose path has the channels of set
    ``s`` gives ``shares[s, k]`` of its value to channel ``k`` and leaves
    ``unallocated_of_set[s]`` unallocated. Computed once over every converting path
    (``set_fit``), it splits any subset of them (``split_from_fit``) exactly as the whole."""

    rows: npt.NDArray[np.uint8]  # (sets, bytes): the sets as packed bit rows, sorted
    shares: FloatArray  # (sets, n_channels)
    unallocated_of_set: FloatArray
    unallocated_channel: FloatArray  # per channel code, its credit no conversion carries


def set_fit(
    rows: npt.NDArray[np.uint8],
    value: FloatArray,
    channel_credit: FloatArray,
    n_channels: int,
) -> SetFit:
    """Fit ``channel_credit`` over conversions given as their channel sets' packed rows
    (``packed_rows``; an all-zero row for an empty path) and values, in conversion order."""
    n_channels = max(n_channels, channel_credit.size, 1)
    credit = np.zeros(n_channels)
    credit[: channel_credit.size] = np.clip(channel_credit, 0.0, None)
    non_empty = np.any(rows != 0, axis=1)
    sets, set_index = np.unique(rows[non_empty], axis=0, return_inverse=True)
    n_sets = len(sets)
    set_value = weighted_count(set_index.reshape(-1), value[non_empty], n_sets)
    total = float(set_value.sum())
    credit_total = float(credit.sum())
    if total <= 0 or credit_total <= 0:
        return SetFit(sets, np.zeros((n_sets, n_channels)), np.zeros(n_sets), np.zeros(n_channels))
    members = np.unpackbits(sets, axis=1, count=n_channels).astype(np.bool_)
    # Work in parts of the total, each margin scaled to add up to exactly 1.
    shares, unplaced_of_set = _fit(members, set_value / total, credit / credit_total)
    # Per channel, what its conversions hold, and the rest of its credit, so that its
    # margin holds exactly; where every conversion was placed whole, what is left is
    # rounding. Summed by set (each set's conversions give the same parts): the same
    # figure whichever subsets of the conversions are split apart later.
    held = set_value @ shares
    unplaced = np.clip(credit - held, 0.0, None)
    # A placed channel's rest is its sum's rounding (far below the margins' 1e-9).
    unplaced[unplaced <= _ROUNDING_OF_SUMS * credit] = 0.0
    if not np.any(unplaced_of_set > 0):
        unplaced[:] = 0.0
    return SetFit(sets, shares, unplaced_of_set, unplaced)


def split_from_fit(paths: ChannelPaths, fit: SetFit, n_channels: int) -> Split:
    """Per touch of ``paths`` (any of the conversions ``fit`` was made on), its part."""
    n_channels = max(n_channels, fit.unallocated_channel.size, 1)
    sets = path_sets(paths, n_channels)
    index_of_row = {row.tobytes(): index for index, row in enumerate(fit.rows)}
    try:
        global_set = np.array(
            [index_of_row[row.tobytes()] for row in sets.rows], dtype=np.int64
        ).reshape(-1)
    except KeyError as error:
        raise ValueError("a path's set of channels is not among the fitted sets") from error
    touch, unallocated = _split_from_set_shares(
        paths, sets, fit.shares[global_set], fit.unallocated_of_set[global_set]
    )
    return Split(touch, unallocated, fit.unallocated_channel)


def fitted_split(
    paths: ChannelPaths, value: FloatArray, channel_credit: FloatArray, n_channels: int
) -> Split:
    """Split each conversion among its channels so that the channel sums are
    ``channel_credit`` (see the module's docstring); what cannot be placed is unallocated."""
    n_channels = max(n_channels, channel_credit.size, 1)
    rows, _ = packed_rows(paths, n_channels)
    return split_from_fit(paths, set_fit(rows, value, channel_credit, n_channels), n_channels)


def _line_search(
    state: Callable[[FloatArray, float], _State],
    beta: FloatArray,
    log_epsilon: float,
    objective: float,
    gradient: FloatArray,
    step: FloatArray,
    slope: float,
    target: FloatArray,
) -> tuple[FloatArray, _State] | None:
    """Backtracking with the Armijo rule; near the optimum, where the objective's rounding
    hides any decrease, a step that shrinks the margins' error and leaves the objective
    within rounding is taken on that evidence. None when no length works."""
    error = float(np.max(np.abs(gradient) / target))
    rounding = 1e-14 * max(1.0, abs(objective))
    length = 1.0
    while length > 1e-12:
        trial = beta + length * step
        result = state(trial, log_epsilon)
        if result[0] < objective and result[0] <= objective + 1e-4 * length * slope:
            return trial, result
        if result[0] <= objective + rounding and float(np.max(np.abs(result[1]) / target)) < error:
            return trial, result
        length /= 2
    return None


def _fit(
    members: BoolArray, set_value: FloatArray, credit: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Per set, each channel's share of the set's value, and the share left unallocated.

    Both margins are in parts of 1. Columns: the channels with credit, then the
    unallocated column; rows: the sets, then one row holding unplaced credit.
    ``beta`` are the channels' log weights (the unallocated column's is 0).
    """
    n_sets, n_channels = members.shape
    # Credit below this part of the total is the removal effects' rounding, not a finding
    # (and no relative margin could be held for it).
    active = np.flatnonzero(credit > _NEGLIGIBLE)
    target = credit[active]
    scale = np.maximum(target, _SMALLEST_SCALE)
    tolerated = np.maximum(_FIT_FAILURE * scale, _CREDIT_ROUNDING)
    allowed = members[:, active]
    k = active.size
    beta = np.zeros(k)

    def state(
        beta: FloatArray, log_epsilon: float
    ) -> tuple[float, FloatArray, FloatArray, FloatArray]:
        """The dual objective, the channel margins' errors, the sets' shares (channels
        then unallocated) and the spare row's shares."""
        logits = np.where(allowed, beta[None, :], -np.inf)
        logits = np.concatenate((logits, np.full((n_sets, 1), log_epsilon)), axis=1)
        top = logits.max(axis=1, keepdims=True)
        weights = np.exp(logits - top)
        row_sum = weights.sum(axis=1, keepdims=True)
        shares = weights / row_sum
        spare_logits = np.concatenate((beta + log_epsilon, [0.0]))
        spare_top = float(spare_logits.max())
        spare_weights = np.exp(spare_logits - spare_top)
        spare_sum = float(spare_weights.sum())
        spare = spare_weights / spare_sum
        objective = float(
            set_value @ (np.log(row_sum[:, 0]) + top[:, 0])
            + np.log(spare_sum)
            + spare_top
            - target @ beta
        )
        gradient = set_value @ shares[:, :k] + spare[:k] - target
        return objective, gradient, shares, spare

    def solve(beta: FloatArray, log_epsilon: float) -> tuple[FloatArray, _State]:
        """Newton's method from ``beta`` at one price of the unallocated cells."""
        current = state(beta, log_epsilon)
        stalled = 0
        for _ in range(_NEWTON_STEPS):
            objective, gradient, shares, spare = current
            error = float(np.max(np.abs(gradient) / scale, initial=0.0))
            # Rounding bounds how close the margins can get: a few steps that no longer
            # shrink the error end the stage.
            if error <= _MARGIN_TOLERANCE or stalled >= 3:
                break
            weighted = shares[:, :k] * set_value[:, None]
            hessian = (
                np.diag(weighted.sum(axis=0) + spare[:k])
                - shares[:, :k].T @ weighted
                - np.outer(spare[:k], spare[:k])
            )
            newton = np.asarray(np.linalg.lstsq(hessian, -gradient, rcond=1e-15)[0], np.float64)
            # Proportional fitting's own step: each channel's weight times its target over
            # what it holds. It revives a channel Newton cannot see (its cells all ~0).
            held = np.maximum(target + gradient, 1e-300)
            scaling: FloatArray = np.clip(np.log(target / held), -40.0, 40.0)
            # Of the two steps, the one that leads lower (Newton's can crawl where some
            # channel's cells are all ~0 and the objective is nearly flat).
            trials = [
                trial
                for step in (newton, scaling)
                if (slope := float(gradient @ step)) < 0
                and (
                    trial := _line_search(
                        state, beta, log_epsilon, objective, gradient, step, slope, scale
                    )
                )
                is not None
            ]
            taken = min(trials, key=lambda trial: trial[1][0], default=None)
            if taken is None:
                break  # neither step leads down: rounding
            beta, current = taken
            shrunk = np.max(np.abs(current[1]) / scale) <= 0.5 * error
            stalled = 0 if shrunk or error > _ROUNDING_ZONE else stalled + 1
        return beta, current

    for epsilon in _EPSILONS:
        beta, (_, gradient, shares, _) = solve(beta, float(np.log(epsilon)))
    log_epsilon = float(np.log(_EPSILONS[-1]))
    placeable = bool(np.all(allowed.any(axis=1)))
    if placeable and float(set_value @ shares[:, k]) <= _UNALLOCATED_FLOOR:
        # Everything can perhaps be placed: a last stage without the unallocated column
        # gives the exact product form with nothing left over, if it reaches the margins.
        exact_beta, exact = solve(beta, -np.inf)
        if float(np.max(np.abs(exact[1]) / scale, initial=0.0)) <= _FIT_FAILURE:
            beta, log_epsilon = exact_beta, -np.inf
    # Polish, one channel at a time: the worst one's weight times its target over what it
    # holds. Where that channel is small next to its sets this is all but exact, and it
    # reaches channels too small for Newton's step to see above the objective's rounding.
    current = state(beta, log_epsilon)
    for _ in range(4 * k):
        errors = np.abs(current[1]) / scale
        worst_channel = int(np.argmax(errors)) if k else 0
        if not k or errors[worst_channel] <= _MARGIN_TOLERANCE:
            break
        held = max(float(target[worst_channel] + current[1][worst_channel]), 1e-300)
        trial = beta.copy()
        trial[worst_channel] += np.log(float(target[worst_channel]) / held)
        candidate = state(trial, log_epsilon)
        if np.max(np.abs(candidate[1]) / scale) >= errors[worst_channel]:
            break
        beta, current = trial, candidate
    _, gradient, shares, _ = current
    if np.any(np.abs(gradient) > tolerated):
        worst = float(np.max(np.abs(gradient) / scale))
        raise FitError(
            f"the per-conversion split missed a channel's credit by {worst:.1e} of it "
            "after the fit's last step"
        )
    result = np.zeros((n_sets, n_channels))
    result[:, active] = shares[:, :k]
    # Each set's shares, placed and unplaced, add up to exactly 1.
    unplaced = 1.0 - result.sum(axis=1)
    unplaced[unplaced <= _ROUNDING] = 0.0
    return result, np.clip(unplaced, 0.0, 1.0)
