"""Paths as flat arrays: one array per touch attribute, cut into paths by offsets.

Every model works on the same layout, so its cost is a handful of passes over
the touches: a path ``p`` is the touches ``offsets[p]:offsets[p + 1]``, in time
order. Channels are small integer codes ``0 .. n_channels - 1`` (see
``channel_codes``); whatever the caller calls them is mapped back at the edges.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

SECONDS_PER_DAY = 86_400.0


def offsets_from_lengths(lengths: npt.ArrayLike) -> IntArray:
    """Offsets ``[0, l0, l0 + l1, ...]`` for paths of the given lengths."""
    lengths_array = np.asarray(lengths, dtype=np.int64)
    offsets = np.zeros(lengths_array.size + 1, dtype=np.int64)
    np.cumsum(lengths_array, out=offsets[1:])
    return offsets


def path_of_touch(offsets: IntArray) -> IntArray:
    """For each touch, the index of its path."""
    return np.repeat(np.arange(offsets.size - 1, dtype=np.int64), np.diff(offsets))


def weighted_count(index: IntArray, weights: npt.ArrayLike, size: int) -> FloatArray:
    """``sums[i]`` = the sum of ``weights`` where ``index`` is ``i``, for ``i < size``."""
    sums: FloatArray = np.bincount(index, weights=np.asarray(weights), minlength=size).astype(
        np.float64, copy=False
    )
    return sums


def segment_sum(values: FloatArray, offsets: IntArray) -> FloatArray:
    """Per path, the sum of ``values`` over its touches (0 for an empty path)."""
    return weighted_count(path_of_touch(offsets), values, offsets.size - 1)


@dataclass(frozen=True)
class ChannelPaths:
    """Channel sequences: ``channel[offsets[p]:offsets[p + 1]]`` is path ``p``."""

    channel: IntArray
    offsets: IntArray

    def __post_init__(self) -> None:
        if self.offsets.ndim != 1 or self.offsets.size < 1 or self.offsets[0] != 0:
            raise ValueError("offsets must start at 0, one more entry than there are paths")
        if int(self.offsets[-1]) != self.channel.size:
            raise ValueError("offsets must end at the number of touches")
        if np.any(np.diff(self.offsets) < 0):
            raise ValueError("offsets must not decrease")
        if self.channel.size and int(self.channel.min()) < 0:
            raise ValueError("channel codes must be non-negative")

    @property
    def count(self) -> int:
        return int(self.offsets.size - 1)

    @property
    def lengths(self) -> IntArray:
        return np.diff(self.offsets)

    @classmethod
    def empty(cls) -> ChannelPaths:
        return cls(np.zeros(0, dtype=np.int64), np.zeros(1, dtype=np.int64))


@dataclass(frozen=True)
class ConvertingPaths:
    """Converting paths: the touches of each conversion in time order, and its value.

    ``time`` and ``converted_at`` are in seconds (any epoch, the same for both).
    ``campaign`` and ``team`` are carried along for the caller's aggregation;
    no model reads them.
    """

    channel: IntArray
    offsets: IntArray
    value: FloatArray
    time: FloatArray = field(default_factory=lambda: np.zeros(0))
    converted_at: FloatArray = field(default_factory=lambda: np.zeros(0))
    is_handoff: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))
    is_deal_creation: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))
    campaign: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    team: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        ChannelPaths(self.channel, self.offsets)  # the same checks on the shape
        touches = self.channel.size
        defaults = {
            "time": np.zeros(touches),
            "is_handoff": np.zeros(touches, dtype=np.bool_),
            "is_deal_creation": np.zeros(touches, dtype=np.bool_),
            "campaign": np.zeros(touches, dtype=np.int64),
            "team": np.zeros(touches, dtype=np.int64),
        }
        for name, default in defaults.items():
            if getattr(self, name).size == 0 and touches:
                object.__setattr__(self, name, default)
            if getattr(self, name).shape != (touches,):
                raise ValueError(f"{name} must have one entry per touch")
        if self.converted_at.size == 0 and self.count:
            # Without conversion times, a conversion happens at its last touch.
            last = np.maximum(self.offsets[1:] - 1, 0)
            at = self.time[last] if touches else np.zeros(self.count)
            object.__setattr__(self, "converted_at", np.where(self.lengths > 0, at, 0.0))
        if self.value.shape != (self.count,):
            raise ValueError("value must have one entry per conversion")
        if self.converted_at.shape != (self.count,):
            raise ValueError("converted_at must have one entry per conversion")
        if not np.all(np.isfinite(self.value)) or np.any(self.value < 0):
            raise ValueError("value must be finite and not negative")
        if not np.all(np.isfinite(self.time)):
            raise ValueError("time must be finite")

    @property
    def count(self) -> int:
        return int(self.offsets.size - 1)

    @property
    def lengths(self) -> IntArray:
        return np.diff(self.offsets)

    def channel_paths(self) -> ChannelPaths:
        return ChannelPaths(self.channel, self.offsets)


def channel_codes(
    names: Sequence[object] | npt.ArrayLike,
) -> tuple[IntArray, list[object]]:
    """Codes ``0 .. k - 1`` for the distinct names (sorted), and the names in code order."""
    array = np.asarray(names)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64), []
    distinct, codes = np.unique(array, return_inverse=True)
    return codes.astype(np.int64).reshape(-1), distinct.tolist()


def channel_paths_from_lists(
    paths: Sequence[Sequence[str]],
) -> tuple[ChannelPaths, list[str]]:
    """Lists of channel names to flat channel codes; also the names in code order."""
    # A dict assigns codes in one pass (np.unique would sort a million strings), then
    # the codes are renumbered so that names come in sorted order, as channel_codes gives.
    seen: dict[str, int] = {}
    first_codes = np.fromiter(
        (seen.setdefault(str(channel), len(seen)) for path in paths for channel in path),
        dtype=np.int64,
    )
    names = sorted(seen)
    renumber = np.empty(len(seen), dtype=np.int64)
    renumber[[seen[name] for name in names]] = np.arange(len(names), dtype=np.int64)
    codes = renumber[first_codes] if first_codes.size else first_codes
    offsets = offsets_from_lengths([len(path) for path in paths])
    return ChannelPaths(codes, offsets), names


def paths_split(paths: ChannelPaths, chosen: np.ndarray) -> tuple[ChannelPaths, ChannelPaths]:
    """The chosen paths and the others, each keeping its touches in order."""
    chosen = np.asarray(chosen, dtype=np.bool_)
    touch_chosen = np.repeat(chosen, paths.lengths)
    lengths = paths.lengths
    return (
        ChannelPaths(paths.channel[touch_chosen], offsets_from_lengths(lengths[chosen])),
        ChannelPaths(paths.channel[~touch_chosen], offsets_from_lengths(lengths[~chosen])),
    )


def channel_credit_arguments(
    paths: Sequence[Sequence[str]],
    converted: Sequence[bool],
    values: Sequence[float] | None,
) -> tuple[ChannelPaths, list[str], np.ndarray, FloatArray | None]:
    """The list-form arguments as flat arrays, or a ValueError naming what is wrong."""
    if len(converted) != len(paths):
        raise ValueError(
            f"converted must have one entry per path ({len(converted)} for {len(paths)} paths)"
        )
    if values is not None and len(values) != len(paths):
        raise ValueError(
            f"values must have one entry per path ({len(values)} for {len(paths)} paths)"
        )
    for path in paths:
        if isinstance(path, str):
            raise ValueError("paths must be lists of channel names, not strings")
    channel_paths, names = channel_paths_from_lists(paths)
    chosen = np.array([bool(flag) for flag in converted], dtype=np.bool_)
    value_array = None
    if values is not None:
        value_array = np.asarray(values, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(value_array)) or np.any(value_array < 0):
            raise ValueError("values must be finite and not negative")
        value_array = value_array[chosen]
    return channel_paths, names, chosen, value_array
