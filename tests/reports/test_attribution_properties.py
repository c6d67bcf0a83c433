"""Properties of the attribution engine over generated paths, and independent
re-computations of the Markov and Shapley credits."""

import itertools
import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reports.attribution import (
    Touch,
    attribute,
    engine_input_from_lists,
    markov_channel_credit,
    shapley_channel_credit,
    touch_credits,
)
from reports.attribution.distribution import touch_shares_from_channel_weights
from reports.attribution.paths import ChannelPaths, offsets_from_lengths, segment_sum

DAY = 86_400.0
# Past a million (path, channel) cells even for one path, distribution sorts.
MORE_CHANNELS_THAN_A_TABLE_HOLDS = (1 << 20) + 1
CHANNELS = ["email", "ads", "sales", "partner", "social", "events"]

channel_names = st.sampled_from(CHANNELS)


@st.composite
def touches(draw: st.DrawFn, channels: st.SearchStrategy[str] = channel_names) -> list[Touch]:
    count = draw(st.integers(min_value=1, max_value=8))
    gaps = draw(st.lists(st.floats(0, 60 * DAY), min_size=count, max_size=count))
    moments = np.cumsum(gaps).tolist()
    return [
        Touch(
            channel=draw(channels),
            time=moment,
            campaign=draw(st.integers(0, 3)),
            is_handoff=draw(st.booleans()),
            is_deal_creation=draw(st.booleans()),
        )
        for moment in moments
    ]


@st.composite
def worlds(
    draw: st.DrawFn, channels: st.SearchStrategy[str] = channel_names
) -> tuple[list[list[Touch]], list[float], list[list[str]], list[float]]:
    converting = draw(st.lists(touches(channels), min_size=1, max_size=12))
    values = draw(
        st.lists(
            st.floats(0.01, 1e6, allow_nan=False),
            min_size=len(converting),
            max_size=len(converting),
        )
    )
    nonconverting = draw(st.lists(st.lists(channels, min_size=0, max_size=6), max_size=12))
    converted_at = [path[-1].time + draw(st.floats(0, 30 * DAY)) for path in converting]
    return converting, values, nonconverting, converted_at


@st.composite
def channel_paths(
    draw: st.DrawFn, max_channels: int = 6
) -> tuple[list[list[str]], list[bool], list[float]]:
    """List-form arguments with at least one converting, non-empty path."""
    names = CHANNELS[: draw(st.integers(1, max_channels))]
    paths = draw(
        st.lists(st.lists(st.sampled_from(names), min_size=1, max_size=7), min_size=1, max_size=15)
    )
    converted = draw(st.lists(st.booleans(), min_size=len(paths), max_size=len(paths)))
    converted[draw(st.integers(0, len(paths) - 1))] = True
    values = draw(st.lists(st.floats(0.5, 1e4), min_size=len(paths), max_size=len(paths)))
    return paths, converted, values


@settings(max_examples=150, deadline=None)
@given(worlds(), st.floats(0.5, 60.0))
def test_every_model_gives_each_conversion_exactly_its_value(
    world: tuple[list[list[Touch]], list[float], list[list[str]], list[float]],
    half_life: float,
) -> None:
    converting_lists, values, nonconverting_lists, converted_at = world
    converting, nonconverting, _ = engine_input_from_lists(
        converting_lists, values, nonconverting_lists, converted_at
    )
    for model, shares in attribute(converting, nonconverting, half_life_days=half_life).items():
        assert np.all(shares >= 0), model
        credits = touch_credits(shares, converting)
        per_conversion = np.add.reduceat(credits, converting.offsets[:-1])
        assert per_conversion == pytest.approx(np.array(values), rel=1e-9), model


@settings(max_examples=60, deadline=None)
@given(worlds(channels=st.just("email")))
def test_a_single_channel_world_gives_that_channel_everything(
    world: tuple[list[list[Touch]], list[float], list[list[str]], list[float]],
) -> None:
    converting_lists, values, nonconverting_lists, converted_at = world
    converting, nonconverting, names = engine_input_from_lists(
        converting_lists, values, nonconverting_lists, converted_at
    )
    assert names == ["email"]
    for model, shares in attribute(converting, nonconverting).items():
        assert touch_credits(shares, converting).sum() == pytest.approx(sum(values)), model
    paths = [[touch.channel for touch in path] for path in converting_lists] + nonconverting_lists
    converted = [True] * len(converting_lists) + [False] * len(nonconverting_lists)
    all_values = values + [0.0] * len(nonconverting_lists)
    for credit in (markov_channel_credit, shapley_channel_credit):
        assert credit(paths, converted) == pytest.approx({"email": len(converting_lists)})
        assert credit(paths, converted, all_values) == pytest.approx({"email": sum(values)})


@settings(max_examples=80, deadline=None)
@given(channel_paths(), st.randoms(use_true_random=False))
def test_markov_and_shapley_do_not_depend_on_the_order_of_the_paths(
    arguments: tuple[list[list[str]], list[bool], list[float]], shuffler: random.Random
) -> None:
    paths, converted, values = arguments
    order = list(range(len(paths)))
    shuffler.shuffle(order)
    shuffled = (
        [paths[i] for i in order],
        [converted[i] for i in order],
        [values[i] for i in order],
    )
    for credit in (markov_channel_credit, shapley_channel_credit):
        assert credit(*shuffled) == pytest.approx(credit(paths, converted, values), rel=1e-9)
        assert credit(*shuffled[:2]) == pytest.approx(credit(paths, converted), rel=1e-9)


@settings(max_examples=80, deadline=None)
@given(channel_paths())
def test_channel_credits_add_up_to_the_conversions_or_their_value(
    arguments: tuple[list[list[str]], list[bool], list[float]],
) -> None:
    paths, converted, values = arguments
    conversions = sum(converted)
    value = sum(v for v, flag in zip(values, converted, strict=True) if flag)
    for credit in (markov_channel_credit, shapley_channel_credit):
        counted = credit(paths, converted)
        assert set(counted) == {channel for path in paths for channel in path}
        assert sum(counted.values()) == pytest.approx(conversions)
        assert all(amount >= 0 for amount in counted.values())
        assert sum(credit(paths, converted, values).values()) == pytest.approx(value)


# Markov, again, from a dense transition matrix built in plain Python.


def dense_markov_credit(
    paths: list[list[str]], converted: list[bool], values: list[float] | None
) -> dict[str, float]:
    """Removal effects by solving the absorption equations once per removed channel.

    Conversion is split into one absorbing state per channel it is entered from
    (``conv:c``), so the expected value is the sum of absorption probabilities
    into ``conv:c`` times the mean value of the conversions entered from ``c``.
    """
    channels = sorted({channel for path in paths for channel in path})
    transient = ["(start)", *channels]
    absorbing = [f"conv:{c}" for c in channels] + ["(null)"]
    states = transient + absorbing
    index = {state: position for position, state in enumerate(states)}
    counts = [[0.0] * len(states) for _ in states]
    value_from: dict[str, float] = dict.fromkeys(channels, 0.0)
    conversions_from: dict[str, float] = dict.fromkeys(channels, 0.0)
    for number, (path, flag) in enumerate(zip(paths, converted, strict=True)):
        steps = ["(start)", *path]
        for here, there in itertools.pairwise(steps):
            counts[index[here]][index[there]] += 1
        end = f"conv:{path[-1]}" if flag else "(null)"
        counts[index[path[-1]]][index[end]] += 1
        if flag:
            conversions_from[path[-1]] += 1
            value_from[path[-1]] += values[number] if values is not None else 1.0
    probability = np.zeros((len(states), len(states)))
    for row, row_counts in enumerate(counts):
        total = sum(row_counts)
        for column, count in enumerate(row_counts):
            probability[row, column] = count / total if total else 0.0
    worth_of_conversion = np.array(
        [value_from[c] / conversions_from[c] if conversions_from[c] else 0.0 for c in channels]
    )

    def expected_worth(removed: str | None) -> float:
        matrix = probability.copy()
        if removed is not None:
            # Every transition into the removed channel goes to null instead.
            column = index[removed]
            matrix[:, index["(null)"]] += matrix[:, column]
            matrix[:, column] = 0.0
        size = len(transient)
        q = matrix[:size, :size]
        r = matrix[:size, size:]
        absorbed = np.linalg.solve(np.eye(size) - q, r)
        into_conversion = absorbed[index["(start)"], : len(channels)]
        return float(into_conversion @ worth_of_conversion)

    base = expected_worth(None)
    effects = {c: 1.0 - expected_worth(c) / base for c in channels}
    total = sum(
        (values[i] if values is not None else 1.0) for i, flag in enumerate(converted) if flag
    )
    effect_sum = sum(effects.values())
    return {c: effect / effect_sum * total for c, effect in effects.items()}


@settings(max_examples=150, deadline=None)
@given(channel_paths())
def test_markov_matches_a_dense_matrix_computation(
    arguments: tuple[list[list[str]], list[bool], list[float]],
) -> None:
    paths, converted, values = arguments
    assert markov_channel_credit(paths, converted) == pytest.approx(
        dense_markov_credit(paths, converted, None), rel=1e-7, abs=1e-9
    )
    assert markov_channel_credit(paths, converted, values) == pytest.approx(
        dense_markov_credit(paths, converted, values), rel=1e-7, abs=1e-9
    )


# Shapley, again, by walking every order in which the channels can join.


def brute_force_shapley(
    paths: list[list[str]], converted: list[bool], values: list[float] | None
) -> dict[str, float]:
    players = sorted({c for path, flag in zip(paths, converted, strict=True) if flag for c in path})
    sets = [
        (frozenset(path), values[i] if values is not None else 1.0)
        for i, (path, flag) in enumerate(zip(paths, converted, strict=True))
        if flag
    ]

    def worth(coalition: frozenset[str]) -> float:
        return sum(amount for channels, amount in sets if channels <= coalition)

    credit = dict.fromkeys(players, 0.0)
    orders = list(itertools.permutations(players))
    for order in orders:
        joined: frozenset[str] = frozenset()
        for player in order:
            credit[player] += worth(joined | {player}) - worth(joined)
            joined = joined | {player}
    everyone = {c for path in paths for c in path}
    return {c: credit.get(c, 0.0) / math.factorial(len(players)) for c in everyone}


@settings(max_examples=100, deadline=None)
@given(channel_paths(max_channels=5))
def test_shapley_matches_every_order_of_joining(
    arguments: tuple[list[list[str]], list[bool], list[float]],
) -> None:
    paths, converted, values = arguments
    assert shapley_channel_credit(paths, converted) == pytest.approx(
        brute_force_shapley(paths, converted, None)
    )
    assert shapley_channel_credit(paths, converted, values) == pytest.approx(
        brute_force_shapley(paths, converted, values)
    )


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 14), min_size=1, max_size=6), min_size=1, max_size=40),
)
def test_shapley_over_fifteen_channels_splits_each_path_among_its_channels(
    paths_as_numbers: list[list[int]],
) -> None:
    """For this worth, the Shapley value is each path's conversion split evenly
    among its distinct channels (Zhao et al.'s simplified form)."""
    paths = [[f"c{number}" for number in path] for path in paths_as_numbers]
    expected: dict[str, float] = {}
    for path in paths:
        distinct = set(path)
        for channel in distinct:
            expected[channel] = expected.get(channel, 0.0) + 1 / len(distinct)
    assert shapley_channel_credit(paths, [True] * len(paths)) == pytest.approx(expected)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 9), min_size=0, max_size=6), min_size=1, max_size=20),
    st.lists(st.floats(0.0, 5.0), min_size=10, max_size=10),
)
def test_spreading_channel_credit_by_table_or_by_sort_agrees(
    paths_as_numbers: list[list[int]], weights: list[float]
) -> None:
    """The dense (path, channel) table and the sort used for many channels give the same
    shares, and each non-empty path's shares add up to 1 (evenly when no weight)."""
    paths = ChannelPaths(
        np.array([c for path in paths_as_numbers for c in path], dtype=np.int64),
        offsets_from_lengths([len(path) for path in paths_as_numbers]),
    )
    weight_array = np.array(weights)
    by_table = touch_shares_from_channel_weights(paths, weight_array, 10)
    # The same paths among more channels than a dense table holds (the rest weigh
    # nothing and are on no path): the sort spreads the credit.
    many = np.zeros(MORE_CHANNELS_THAN_A_TABLE_HOLDS)
    many[:10] = weight_array
    by_sort = touch_shares_from_channel_weights(paths, many, MORE_CHANNELS_THAN_A_TABLE_HOLDS)
    assert by_sort == pytest.approx(by_table)
    non_empty = paths.lengths > 0
    sums = segment_sum(by_table, paths.offsets)[non_empty]
    assert sums.tolist() == pytest.approx([1.0] * int(non_empty.sum()))


@settings(max_examples=60, deadline=None)
@given(worlds(), st.floats(0.5, 60.0))
def test_time_decay_never_weighs_an_earlier_touch_more(
    world: tuple[list[list[Touch]], list[float], list[list[str]], list[float]],
    half_life: float,
) -> None:
    converting_lists, values, _, converted_at = world
    converting, _, _ = engine_input_from_lists(converting_lists, values, [], converted_at)
    shares = attribute(converting, models=["time_decay"], half_life_days=half_life)["time_decay"]
    for start, end in itertools.pairwise(converting.offsets.tolist()):
        assert np.all(np.diff(shares[start:end]) >= -1e-12)
