"""What a run stores keeps both margins, for all eight models, on generated records:
per conversion the rows add up to its value, per channel (with its unallocated part)
to the model's channel credit, computed here independently."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reports.attribution import MODEL_NAMES, markov_channel_credit
from reports.attribution.heuristic import DEFAULT_HALF_LIFE_DAYS
from reports.attribution_credits import UNALLOCATED_CHANNEL_ID, CreditBlock, credits_compute
from reports.run_input import RunInput

DAY = 86_400.0
RELATIVE = 1e-9

# A touch: (channel id, time, is_handoff, is_deal_creation).
TouchTuple = tuple[int, float, bool, bool]


def reference_shares(model: str, path: list[TouchTuple], converted_at: float) -> list[float]:
    """Each rule-based model's shares of one path, written out plainly."""
    n = len(path)
    if model == "first_touch":
        return [1.0] + [0.0] * (n - 1)
    if model == "last_touch":
        return [0.0] * (n - 1) + [1.0]
    if model == "linear":
        return [1.0 / n] * n
    if model == "position_based":
        if n <= 2:
            return [1.0 / n] * n
        return [0.4] + [0.2 / (n - 2)] * (n - 2) + [0.4]
    if model == "time_decay":
        weights = [
            2.0 ** (-(converted_at - time) / DAY / DEFAULT_HALF_LIFE_DAYS) for _, time, _, _ in path
        ]
        return [weight / sum(weights) for weight in weights]
    assert model == "w_shaped"
    groups = {
        "first": [0],
        "handoff": [i for i, touch in enumerate(path) if touch[2]],
        "deal": [i for i, touch in enumerate(path) if touch[3]],
    }
    marked = {0, *groups["handoff"], *groups["deal"]}
    groups["rest"] = [i for i in range(n) if i not in marked]
    weight = {"first": 0.3, "handoff": 0.3, "deal": 0.3, "rest": 0.1}
    total = sum(weight[name] for name, members in groups.items() if members)
    shares = [0.0] * n
    for name, members in groups.items():
        for i in members:
            shares[i] += weight[name] / len(members) / total
    return shares


def reference_channel_credit(
    model: str,
    paths: list[list[TouchTuple]],
    values: list[float],
    converted_at: list[float],
    nonconverting: list[list[int]],
) -> dict[int, float]:
    credit: dict[int, float] = {}
    if model == "markov":
        names = markov_channel_credit(
            [[str(touch[0]) for touch in path] for path in paths]
            + [[str(c) for c in path] for path in nonconverting],
            [True] * len(paths) + [False] * len(nonconverting),
            values + [0.0] * len(nonconverting),
        )
        return {int(name): amount for name, amount in names.items()}
    for path, value, at in zip(paths, values, converted_at, strict=True):
        if model == "shapley":
            # Zhao et al.'s simplified Shapley value: an even split over distinct channels.
            distinct = {touch[0] for touch in path}
            for channel in distinct:
                credit[channel] = credit.get(channel, 0.0) + value / len(distinct)
            continue
        for touch, share in zip(path, reference_shares(model, path, at), strict=True):
            credit[touch[0]] = credit.get(touch[0], 0.0) + share * value
    return credit


def run_input_of(
    paths: list[list[TouchTuple]],
    values: list[float],
    converted_at: list[float],
    nonconverting: list[list[int]],
) -> RunInput:
    touches = [
        (index, channel, time, handoff, deal)
        for index, path in enumerate(paths)
        for channel, time, handoff, deal in path
    ]
    kept = [path for path in nonconverting if path]
    return RunInput(
        sale_event_id=np.arange(1, len(paths) + 1, dtype=np.int64),
        deal_id=np.arange(1, len(paths) + 1, dtype=np.int64),
        value=np.array(values, dtype=np.float64),
        converted_at=np.array(converted_at, dtype=np.float64),
        touch_conversion=np.array([t[0] for t in touches], dtype=np.int64),
        touch_channel=np.array([t[1] for t in touches], dtype=np.int64),
        touch_campaign=np.zeros(len(touches), dtype=np.int64),
        touch_time=np.array([t[2] for t in touches], dtype=np.float64),
        touch_is_handoff=np.array([t[3] for t in touches], dtype=np.bool_),
        touch_is_deal_creation=np.array([t[4] for t in touches], dtype=np.bool_),
        nonconverting_channel=np.array([c for path in kept for c in path], dtype=np.int64),
        nonconverting_starts=np.cumsum([0] + [len(path) for path in kept])[:-1].astype(np.int64),
        channel_team={},
        channel_key={},
        lookback_days=365,
    )


@st.composite
def records(
    draw: st.DrawFn, min_channels: int = 1
) -> tuple[list[list[TouchTuple]], list[float], list[float], list[list[int]]]:
    """Converting paths with repeats and self-loops (a channel twice in a row), single
    touches, ties in time, and up to 26 channels; non-converting paths over the same and
    a few channels of their own."""
    n_channels = draw(st.integers(min_channels, 26))
    channel = st.integers(1, n_channels)
    paths = []
    for _ in range(draw(st.integers(1, 30))):
        length = draw(st.integers(1, 9))
        channels = draw(st.lists(channel, min_size=length, max_size=length))
        if length > 1 and draw(st.booleans()):
            channels[1] = channels[0]  # a self-loop
        gaps = draw(
            st.lists(st.sampled_from([0.0, 0.5 * DAY, 3 * DAY]), min_size=length, max_size=length)
        )
        times = np.cumsum(gaps).tolist()
        paths.append(
            [
                (c, t, draw(st.booleans()), draw(st.booleans()))
                for c, t in zip(channels, times, strict=True)
            ]
        )
    values = draw(st.lists(st.floats(0.01, 1e6), min_size=len(paths), max_size=len(paths)))
    converted_at = [path[-1][1] + draw(st.floats(0, 20 * DAY)) for path in paths]
    nonconverting = draw(
        st.lists(st.lists(st.integers(1, n_channels + 3), min_size=1, max_size=8), max_size=30)
    )
    return paths, values, converted_at, nonconverting


def check_margins(
    paths: list[list[TouchTuple]],
    values: list[float],
    converted_at: list[float],
    nonconverting: list[list[int]],
) -> dict[str, float]:
    """Assert both margins for every model; per model, the largest relative error."""
    blocks: dict[str, CreditBlock] = {
        block.model: block
        for block in credits_compute(run_input_of(paths, values, converted_at, nonconverting))
    }
    assert list(blocks) == list(MODEL_NAMES)
    worst: dict[str, float] = {}
    for model, block in blocks.items():
        assert not block.unavailable, (model, block.unavailable)
        assert np.all(block.credit >= 0), model
        per_conversion = np.bincount(block.conversion, weights=block.credit, minlength=len(paths))
        assert per_conversion == pytest.approx(np.array(values), rel=RELATIVE), model
        expected = reference_channel_credit(model, paths, values, converted_at, nonconverting)
        real = block.channel != UNALLOCATED_CHANNEL_ID
        served: dict[int, float] = dict(block.unallocated)
        for channel, credit in zip(block.channel[real], block.credit[real], strict=True):
            served[int(channel)] = served.get(int(channel), 0.0) + float(credit)
        total = sum(values)
        channels = set(expected) | set(served)
        errors = [
            abs(served.get(c, 0.0) - expected.get(c, 0.0)) / max(expected.get(c, 0.0), 1e-300)
            for c in channels
            if expected.get(c, 0.0) > 1e-9 * total or served.get(c, 0.0) > 1e-9 * total
        ]
        worst[model] = max(errors, default=0.0)
        assert worst[model] <= RELATIVE, (model, served, expected)
        unallocated_rows = float(block.credit[~real].sum())
        # The unallocated line and its origin by channel: the same amount, to rounding.
        assert unallocated_rows == pytest.approx(
            sum(block.unallocated.values()), abs=RELATIVE * total
        )
        if model != "markov":
            assert unallocated_rows == 0.0, model
    return worst


@settings(max_examples=300, deadline=None)
@given(records())
def test_stored_credits_keep_both_margins_for_every_model(
    record: tuple[list[list[TouchTuple]], list[float], list[float], list[list[int]]],
) -> None:
    check_margins(*record)


@settings(max_examples=25, deadline=None)
@given(records(min_channels=20))
def test_stored_credits_keep_both_margins_past_twenty_channels(
    record: tuple[list[list[TouchTuple]], list[float], list[float], list[list[int]]],
) -> None:
    paths, values, converted_at, nonconverting = record
    # Every one of 22 channels on some converting path: the old exact Shapley refused this.
    paths = paths + [[(channel, 0.0, False, False)] for channel in range(1, 23)]
    values = values + [10.0] * 22
    converted_at = converted_at + [DAY] * 22
    check_margins(paths, values, converted_at, nonconverting)


def test_the_minimal_case_of_the_old_split() -> None:
    """[a, b] and [a], both worth 100: shapley gives a 150, b 50 (the old split gave
    175 and 25)."""
    worst = check_margins(
        [[(1, 0.0, False, False), (2, 1.0, False, False)], [(1, 0.0, False, False)]],
        [100.0, 100.0],
        [DAY, DAY],
        [],
    )
    assert max(worst.values()) <= RELATIVE


def test_a_channel_only_on_paths_that_do_not_convert_keeps_its_markov_credit() -> None:
    paths = [[(1, 0.0, False, False), (2, 1.0, False, False)], [(2, 0.0, False, False)]]
    check_margins(paths, [100.0, 50.0], [DAY, DAY], [[3, 1], [3], [3, 2]])
