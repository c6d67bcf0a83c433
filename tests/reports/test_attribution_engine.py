"""The attribution engine on examples small enough to compute by hand."""

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from reports import attribution_credits
from reports.attribution import (
    MODEL_NAMES,
    FitError,
    Touch,
    attribute,
    channel_weights,
    engine_input_from_lists,
    markov_channel_credit,
    model_split,
    shapley_channel_credit,
    touch_shares,
)
from reports.attribution.distribution import fitted_split
from reports.attribution.paths import ChannelPaths, ConvertingPaths
from reports.attribution_credits import CreditBlock, credits_compute
from reports.models import AttributionModel
from reports.run_input import RunInput

DAY = 86_400.0
ROOT = Path(__file__).resolve().parents[2]


def shares_of(model: str, path: list[Touch], **options: float) -> list[float]:
    converting, nonconverting, _ = engine_input_from_lists([path], [100.0])
    return touch_shares(model, converting, nonconverting, **options).tolist()


def plain(channels: str) -> list[Touch]:
    return [Touch(channel) for channel in channels]


def test_engine_names_the_models_the_database_stores() -> None:
    assert list(MODEL_NAMES) == list(AttributionModel.values)


def test_engine_package_imports_no_django() -> None:
    code = (
        "import sys; import reports.attribution, reports.attribution_credits; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("first_touch", [1.0, 0.0, 0.0]),
        ("last_touch", [0.0, 0.0, 1.0]),
        ("linear", [1 / 3, 1 / 3, 1 / 3]),
    ],
)
def test_simple_models_on_three_touches(model: str, expected: list[float]) -> None:
    assert shares_of(model, plain("abc")) == pytest.approx(expected)


def test_time_decay_halves_the_weight_every_seven_days() -> None:
    path = [Touch("a", time=0.0), Touch("b", time=7 * DAY), Touch("c", time=14 * DAY)]
    converting, _, _ = engine_input_from_lists([path], [70.0], converted_at=[14 * DAY])
    # Weights 1/4, 1/2, 1 scaled to 1/7, 2/7, 4/7.
    shares = touch_shares("time_decay", converting)
    assert shares.tolist() == pytest.approx([1 / 7, 2 / 7, 4 / 7])


def test_time_decay_half_life_is_configurable_and_counts_to_the_conversion() -> None:
    path = [Touch("a", time=0.0), Touch("b", time=14 * DAY)]
    converting, _, _ = engine_input_from_lists([path], [1.0], converted_at=[28 * DAY])
    shares = touch_shares("time_decay", converting, half_life_days=14.0)
    # Ages 28 and 14 days: weights 1/4 and 1/2.
    assert shares.tolist() == pytest.approx([1 / 3, 2 / 3])


def test_time_decay_of_touches_long_ago_does_not_underflow() -> None:
    path = [Touch("a", time=0.0), Touch("b", time=7 * DAY)]
    converting, _, _ = engine_input_from_lists([path], [1.0], converted_at=[50_000 * DAY])
    assert touch_shares("time_decay", converting).tolist() == pytest.approx([1 / 3, 2 / 3])


@pytest.mark.parametrize("half_life", [0.0, -1.0, float("nan"), float("inf")])
def test_time_decay_refuses_a_half_life_that_is_not_a_positive_number(half_life: float) -> None:
    with pytest.raises(ValueError, match="half_life_days"):
        shares_of("time_decay", plain("ab"), half_life_days=half_life)


@pytest.mark.parametrize(
    ("channels", "expected"),
    [
        ("a", [1.0]),
        ("ab", [0.5, 0.5]),
        ("abc", [0.4, 0.2, 0.4]),
        ("abcde", [0.4, 0.2 / 3, 0.2 / 3, 0.2 / 3, 0.4]),
    ],
)
def test_position_based_40_20_40(channels: str, expected: list[float]) -> None:
    assert shares_of("position_based", plain(channels)) == pytest.approx(expected)


H = {"is_handoff": True}
D = {"is_deal_creation": True}


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        # first, rest, handoff, deal, rest: 30 / 5 / 30 / 30 / 5.
        ([{}, {}, H, D, {}], [0.3, 0.05, 0.3, 0.3, 0.05]),
        # The handoff is the first touch: their shares add up.
        ([H, {}, D, {}], [0.6, 0.05, 0.3, 0.05]),
        # Both markers on one touch.
        ([{}, {**H, **D}, {}], [0.3, 0.6, 0.1]),
        # No handoff: first 30, deal 30, rest 10, scaled by 1/0.7.
        ([{}, {}, D, {}], [3 / 7, 1 / 14, 3 / 7, 1 / 14]),
        # No deal creation either: first 30 and rest 10, scaled by 1/0.4.
        ([{}, {}], [0.75, 0.25]),
        # No touch left for the rest: its 10% goes to the marked ones in proportion.
        ([{}, H, D], [1 / 3, 1 / 3, 1 / 3]),
        ([{}, {**H, **D}], [1 / 3, 2 / 3]),
        # One touch that is everything.
        ([{**H, **D}], [1.0]),
        ([{}], [1.0]),
        # Two touches flagged as handoff split its 30%.
        ([{}, H, H, D, {}], [0.3, 0.15, 0.15, 0.3, 0.1]),
    ],
)
def test_w_shaped_30_30_30_10(flags: list[dict[str, bool]], expected: list[float]) -> None:
    path = [Touch(f"c{index}", **flag) for index, flag in enumerate(flags)]
    assert shares_of("w_shaped", path) == pytest.approx(expected)


def test_unknown_model_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown attribution model 'u_shaped'"):
        shares_of("u_shaped", plain("ab"))


# a > b converts, b converts, a fails, c > a fails. Transitions: start->a 2, start->b 1,
# start->c 1; a->b 1, a->null 2; b->conversion 2; c->a 1. P(conversion) = 1/2;
# without a 1/4, without b 0, without c 5/12: removal effects 1/2, 1, 1/6, scaled to 2.
MARKOV_PATHS = [["a", "b"], ["b"], ["a"], ["c", "a"]]
MARKOV_CONVERTED = [True, True, False, False]


def test_markov_channel_credit_by_hand() -> None:
    credit = markov_channel_credit(MARKOV_PATHS, MARKOV_CONVERTED)
    assert credit == pytest.approx({"a": 0.6, "b": 1.2, "c": 0.2})


def test_markov_channel_credit_in_value_follows_the_value_entering_conversion() -> None:
    # a > b (worth 30) and b (worth 10) both enter conversion from b: the same
    # removal effects as above, scaled to the total value 40.
    credit = markov_channel_credit(MARKOV_PATHS, MARKOV_CONVERTED, [30.0, 10.0, 99.0, 99.0])
    assert credit == pytest.approx({"a": 12.0, "b": 24.0, "c": 4.0})


def test_markov_without_conversions_credits_nobody() -> None:
    assert markov_channel_credit([["a"], ["b", "a"]], [False, False]) == {"a": 0.0, "b": 0.0}


def test_shapley_channel_credit_by_hand() -> None:
    # {a, b} converts once, {b} once: v(a) = 0, v(b) = 1, v(ab) = 2.
    # a: (0 + (2 - 1)) / 2 = 0.5; b: (1 + (2 - 0)) / 2 = 1.5; c never converts.
    credit = shapley_channel_credit(MARKOV_PATHS, MARKOV_CONVERTED)
    assert credit == pytest.approx({"a": 0.5, "b": 1.5, "c": 0.0})


def test_shapley_counts_channel_sets_not_repeats() -> None:
    credit = shapley_channel_credit([["a", "a", "a", "b"]], [True], [8.0])
    assert credit == pytest.approx({"a": 4.0, "b": 4.0})


def test_shapley_takes_any_number_of_channels_and_ignores_those_that_never_convert() -> None:
    converting = [[f"channel-{index}"] for index in range(40)] + [
        [f"channel-{index}" for index in range(40)]
    ]
    idle = [[f"idle-{index}"] for index in range(5)]
    credit = shapley_channel_credit(converting + idle, [True] * 41 + [False] * 5)
    assert sum(credit.values()) == pytest.approx(41.0)
    assert credit["channel-0"] == pytest.approx(1.0 + 1 / 40)
    assert credit["idle-0"] == 0.0


@pytest.mark.parametrize("credit_function", [markov_channel_credit, shapley_channel_credit])
def test_channel_credit_refuses_mismatched_or_bad_arguments(credit_function: object) -> None:
    assert callable(credit_function)
    with pytest.raises(ValueError, match="converted must have one entry per path"):
        credit_function([["a"], ["b"]], [True])
    with pytest.raises(ValueError, match="values must have one entry per path"):
        credit_function([["a"], ["b"]], [True, False], [1.0])
    with pytest.raises(ValueError, match="values must be finite and not negative"):
        credit_function([["a"]], [True], [-1.0])
    with pytest.raises(ValueError, match="values must be finite and not negative"):
        credit_function([["a"]], [True], [float("nan")])
    with pytest.raises(ValueError, match="lists of channel names, not strings"):
        credit_function(["a > b"], [True])


def test_markov_split_keeps_both_margins() -> None:
    """Each conversion's parts add up to its value and each channel's to its credit (the
    split by global credit gave a 175 and b 25 here, against the model's 150 and 50)."""
    paths = [plain("ab"), plain("a")]
    converting, nonconverting, names = engine_input_from_lists(paths, [100.0, 100.0])
    split = model_split("markov", converting, nonconverting)
    weights = channel_weights("markov", converting, nonconverting)
    held = np.bincount(converting.channel, weights=split.touch * np.repeat([100.0, 100.0], 2)[:3])
    assert held.tolist() == pytest.approx(weights.tolist(), rel=1e-12)
    assert split.unallocated.tolist() == [0.0, 0.0]
    shapley = touch_shares("shapley", converting, nonconverting)
    assert (shapley * 100).tolist() == pytest.approx([50.0, 50.0, 100.0])
    assert dict(zip(names, channel_weights("shapley", converting).tolist(), strict=True)) == {
        "a": 150.0,
        "b": 50.0,
    }


def test_markov_credit_earned_off_converting_paths_is_unallocated_not_dropped() -> None:
    # c is on no converting path, yet leads into b: its removal effect has nowhere to go.
    paths = [plain("ab"), plain("b")]
    converting, nonconverting, names = engine_input_from_lists(
        paths, [100.0, 50.0], nonconverting=[["c", "a"], ["c"], ["c", "b"]]
    )
    weights = dict(zip(names, channel_weights("markov", converting, nonconverting), strict=True))
    split = model_split("markov", converting, nonconverting)
    unplaced = dict(zip(names, split.unallocated_channel.tolist(), strict=True))
    assert unplaced["c"] == pytest.approx(weights["c"], rel=1e-12)
    assert unplaced["a"] == unplaced["b"] == 0.0
    values = np.array([100.0, 50.0])
    per_conversion = np.add.reduceat(split.touch, converting.offsets[:-1]) + split.unallocated
    assert per_conversion.tolist() == pytest.approx([1.0, 1.0], rel=1e-12)
    assert float(split.unallocated @ values) == pytest.approx(weights["c"], rel=1e-12)


@pytest.mark.parametrize("rounding", [-4e-16, -1e-16, 1e-16, 4e-16])
def test_markov_split_takes_credits_that_miss_their_sets_by_the_totals_rounding(
    rounding: float,
) -> None:
    """Channels c and d are only on a conversion worth 1.8e-7 of the total; their credits
    add up to it but for the rounding a removal effect carries (parts in 1e16 of the
    total), which no split can close. Found by the property test: the fit refused markov."""
    small, middle = 1.82561406e-07, 1.46049125e-06
    value = np.array([small, middle, 1.0 - small - middle])
    b = 4.99999544e-01
    credit = np.array(
        [1.0 - b - small - rounding, b, (small + rounding) / 2, (small + rounding) / 2]
    )
    paths = ChannelPaths(np.array([2, 3, 0, 0, 1]), np.array([0, 2, 3, 5]))
    split = fitted_split(paths, value, credit, 4)
    per_conversion = np.add.reduceat(split.touch, paths.offsets[:-1]) + split.unallocated
    assert per_conversion.tolist() == pytest.approx([1.0, 1.0, 1.0], rel=1e-12)
    conversion_of_touch = np.repeat(np.arange(3), np.diff(paths.offsets))
    held = np.bincount(paths.channel, weights=split.touch * value[conversion_of_touch], minlength=4)
    served = held + split.unallocated_channel
    # Each channel within 1e-10 of its credit, or the total's rounding where that is more.
    assert np.all(np.abs(served - credit) <= np.maximum(1e-10 * credit, 1e-15))


def test_every_model_splits_each_conversion_exactly() -> None:
    paths = [
        [Touch("email", 0.0), Touch("ads", DAY, is_handoff=True), Touch("sales", 2 * DAY)],
        [Touch("sales", 0.0, is_deal_creation=True)],
        [Touch("ads", 0.0), Touch("ads", 3 * DAY)],
    ]
    converting, nonconverting, _ = engine_input_from_lists(
        paths, [100.0, 40.0, 7.5], nonconverting=[["email"], ["ads", "email"]]
    )
    for model in MODEL_NAMES:
        split = model_split(model, converting, nonconverting)
        per_path = np.add.reduceat(split.touch, converting.offsets[:-1]) + split.unallocated
        assert per_path.tolist() == pytest.approx([1.0, 1.0, 1.0]), model


def test_paths_must_be_well_formed() -> None:
    with pytest.raises(ValueError, match="offsets must end at the number of touches"):
        ChannelPaths(np.array([0, 1]), np.array([0, 1]))
    with pytest.raises(ValueError, match="value must have one entry per conversion"):
        ConvertingPaths(np.array([0, 1]), np.array([0, 2]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="value must be finite and not negative"):
        ConvertingPaths(np.array([0]), np.array([0, 1]), np.array([-5.0]))


# The adapter used by attribution runs.


def run_input(
    *,
    conversions: list[tuple[float, float]],
    touches: list[tuple[int, int, int, float, bool, bool]],
    nonconverting: list[list[int]] | None = None,
    teams: dict[int, str] | None = None,
) -> RunInput:
    """conversions: (value, converted_at); touches: (conversion, channel, campaign, time,
    is_handoff, is_deal_creation), grouped by conversion in time order."""
    nonconverting = nonconverting or []
    flat = [channel for path in nonconverting for channel in path]
    starts = np.cumsum([0] + [len(path) for path in nonconverting])[:-1]
    teams = teams or {}
    return RunInput(
        sale_event_id=np.arange(101, 101 + len(conversions), dtype=np.int64),
        deal_id=np.arange(201, 201 + len(conversions), dtype=np.int64),
        value=np.array([value for value, _ in conversions], dtype=np.float64),
        converted_at=np.array([at for _, at in conversions], dtype=np.float64),
        touch_conversion=np.array([t[0] for t in touches], dtype=np.int64),
        touch_channel=np.array([t[1] for t in touches], dtype=np.int64),
        touch_campaign=np.array([t[2] for t in touches], dtype=np.int64),
        touch_time=np.array([t[3] for t in touches], dtype=np.float64),
        touch_is_handoff=np.array([t[4] for t in touches], dtype=np.bool_),
        touch_is_deal_creation=np.array([t[5] for t in touches], dtype=np.bool_),
        nonconverting_channel=np.array(flat, dtype=np.int64),
        nonconverting_starts=np.asarray(starts, dtype=np.int64),
        channel_team=teams,
        channel_key={},
        lookback_days=365,
    )


def rows_of(block: CreditBlock) -> list[tuple[int, int, int, float, float]]:
    return sorted(
        zip(
            block.conversion.tolist(),
            block.channel.tolist(),
            block.campaign.tolist(),
            block.credit.tolist(),
            block.share.tolist(),
            strict=True,
        )
    )


def test_credits_compute_gives_every_model_rows_per_conversion_channel_and_campaign() -> None:
    data = run_input(
        conversions=[(1000.0, 10 * DAY), (50.0, 20 * DAY), (70.0, 30 * DAY)],
        touches=[
            # Conversion 0: channel 7 twice (campaigns 3 and 0), then channel 9 (the handoff).
            (0, 7, 3, 1 * DAY, False, False),
            (0, 7, 0, 2 * DAY, False, False),
            (0, 9, 0, 3 * DAY, True, True),
            # Conversion 1: channel 9 once. Conversion 2: nobody touched it.
            (1, 9, 4, 19 * DAY, False, False),
        ],
        nonconverting=[[7], [7, 9, 7]],
    )
    blocks = credits_compute(data)
    assert [block.model for block in blocks] == list(AttributionModel.values)
    by_model = {block.model: block for block in blocks}
    assert rows_of(by_model["first_touch"]) == [
        (0, 7, 3, 1000.0, 1.0),
        (1, 9, 4, 50.0, 1.0),
    ]
    assert rows_of(by_model["last_touch"]) == [(0, 9, 0, 1000.0, 1.0), (1, 9, 4, 50.0, 1.0)]
    linear = rows_of(by_model["linear"])
    assert [row[:3] for row in linear] == [(0, 7, 0), (0, 7, 3), (0, 9, 0), (1, 9, 4)]
    assert [row[3] for row in linear] == pytest.approx([1000 / 3, 1000 / 3, 1000 / 3, 50.0])
    # w_shaped: first 30, rest 10 and the marked touch 60 (handoff and deal creation).
    w_shaped = rows_of(by_model["w_shaped"])
    assert [row[4] for row in w_shaped] == pytest.approx([0.1, 0.3, 0.6, 1.0])
    for block in blocks:
        assert 2 not in block.conversion.tolist()
        assert np.all(block.share > 0)
        for conversion, value in ((0, 1000.0), (1, 50.0)):
            mine = block.conversion == conversion
            assert block.credit[mine].sum() == pytest.approx(value), block.model
            assert block.share[mine].sum() == pytest.approx(1.0), block.model


def test_credits_compute_on_a_record_without_conversions() -> None:
    blocks = credits_compute(run_input(conversions=[], touches=[], nonconverting=[[1, 2]]))
    assert [block.model for block in blocks] == list(AttributionModel.values)
    assert all(block.rows == 0 for block in blocks)


def test_credits_compute_keeps_shapley_past_fifteen_channels() -> None:
    touches = [(index, index + 1, 0, 0.0, False, False) for index in range(24)]
    blocks = credits_compute(run_input(conversions=[(1.0, DAY)] * 24, touches=touches))
    assert [block.model for block in blocks] == list(AttributionModel.values)
    assert all(not block.unavailable for block in blocks)
    assert blocks[-1].rows == 24


def test_credits_compute_names_a_model_it_could_not_compute(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = attribution_credits.model_split

    def failing(model: str, *args: object, **kwargs: float) -> object:
        if model == "markov":
            raise FitError("the per-conversion split missed a channel's credit")
        return real(model, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(attribution_credits, "model_split", failing)
    data = run_input(conversions=[(1.0, DAY)], touches=[(0, 1, 0, 0.0, False, False)])
    with caplog.at_level(logging.WARNING, logger="reports.attribution_credits"):
        blocks = {block.model: block for block in credits_compute(data)}
    assert blocks["markov"].rows == 0
    assert blocks["markov"].unavailable == (
        "FitError: the per-conversion split missed a channel's credit"
    )
    assert "markov could not be computed" in caplog.text
    assert blocks["shapley"].rows == 1 and not blocks["shapley"].unavailable


def test_credits_compute_gives_unallocated_markov_credit_its_own_rows() -> None:
    data = run_input(
        conversions=[(100.0, DAY), (50.0, DAY)],
        touches=[
            (0, 1, 0, 0.0, False, False),
            (0, 2, 0, 1.0, False, False),
            (1, 2, 0, 0.0, False, False),
        ],
        nonconverting=[[3, 1], [3], [3, 2]],
    )
    markov = {block.model: block for block in credits_compute(data)}["markov"]
    unallocated = markov.channel == attribution_credits.UNALLOCATED_CHANNEL_ID
    assert unallocated.any()
    assert list(markov.unallocated) == [3]
    assert markov.credit[unallocated].sum() == pytest.approx(markov.unallocated[3], rel=1e-12)
    for conversion, value in ((0, 100.0), (1, 50.0)):
        mine = markov.conversion == conversion
        assert markov.credit[mine].sum() == pytest.approx(value, rel=1e-12)


def test_credits_compute_refuses_touches_out_of_conversion_order() -> None:
    data = run_input(
        conversions=[(1.0, DAY), (1.0, DAY)],
        touches=[(1, 1, 0, 0.0, False, False), (0, 1, 0, 0.0, False, False)],
    )
    with pytest.raises(ValueError, match="grouped by conversion"):
        credits_compute(data)


def test_credits_compute_is_deterministic() -> None:
    rng = np.random.default_rng(7)
    touches = sorted(
        (int(rng.integers(0, 30)), int(rng.integers(1, 6)), int(rng.integers(0, 4)), float(t))
        for t in rng.uniform(0, 30 * DAY, 300)
    )
    data = run_input(
        conversions=[(float(v), 40 * DAY) for v in rng.uniform(1, 500, 30)],
        touches=[(c, ch, cp, t, False, False) for c, ch, cp, t in touches],
        nonconverting=[list(rng.integers(1, 6, 4)) for _ in range(20)],
    )
    first, second = credits_compute(data), credits_compute(data)
    for one, other in zip(first, second, strict=True):
        assert rows_of(one) == rows_of(other)


def test_empty_inputs_give_empty_credits() -> None:
    assert markov_channel_credit([], []) == {}
    assert shapley_channel_credit([], []) == {}
    # A conversion nobody touched has no channel to credit.
    assert markov_channel_credit([[]], [True]) == {}
    assert shapley_channel_credit([[], ["a"]], [True, False]) == {"a": 0.0}
    converting, nonconverting, _ = engine_input_from_lists([[]], [5.0], [["a"]])
    assert all(shares.size == 0 for shares in attribute(converting, nonconverting).values())


def test_credits_compute_keeps_shapley_when_the_extra_channels_never_convert() -> None:
    data = run_input(
        conversions=[(10.0, DAY)],
        touches=[(0, 1, 0, 0.0, False, False), (0, 2, 0, 1.0, False, False)],
        nonconverting=[[channel] for channel in range(3, 30)],
    )
    shapley = credits_compute(data)[-1]
    assert shapley.model == "shapley"
    assert rows_of(shapley) == [(0, 1, 0, 5.0, 0.5), (0, 2, 0, 5.0, 0.5)]
