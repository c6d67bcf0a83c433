"""The attribution engine alone against ChannelAttribution, on the same paths.

Run with the project's virtualenv::

    .venv/bin/python bench/attribution_engine.py [--seed 1] [--repeat 3]

It generates (seeded, so every run sees the same data) 20,000 converting paths
and enough non-converting ones to make 1,000,000 touches over 12 channels,
times each of the engine's eight models (per-touch shares, what a run
computes) and the channel-level work comparable to ChannelAttribution's
(Markov credits in conversions and value; first/last/linear summed per
channel), then runs ChannelAttribution's ``markov_model`` (order 1) and
``heuristic_models`` on exactly the same paths in a subprocess of its own
virtualenv (created on first use, by default ``/tmp/ca-venv``; its C++ core is
compiled by pip when no wheel fits). Times are the best of ``--repeat`` runs;
reading the CSV into pandas is not timed for ChannelAttribution, as building
the arrays is not timed for the engine. If ChannelAttribution cannot be
installed or run, the reason is printed and the engine's figures still are.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reports.attribution.engine import MODEL_NAMES, touch_shares  # noqa: E402
from reports.attribution.heuristic import (  # noqa: E402
    first_touch_shares,
    last_touch_shares,
    linear_shares,
)
from reports.attribution.markov import markov_channel_weights  # noqa: E402
from reports.attribution.paths import (  # noqa: E402
    ChannelPaths,
    ConvertingPaths,
    offsets_from_lengths,
    path_of_touch,
)
from reports.attribution_credits import credits_compute  # noqa: E402

CHANNELS = [
    "email",
    "paid_search",
    "social",
    "display",
    "webinar",
    "events",
    "content",
    "partner_referral",
    "partner_event",
    "sdr_call",
    "sdr_email",
    "ae_meeting",
]
DAY = 86_400.0

# Converting journeys lean on sales and events, non-converting ones on ads and
# content, so the Markov removal effects differ from channel frequencies.
_CONVERTING_MIX = np.array([10, 6, 5, 3, 8, 7, 6, 6, 4, 9, 8, 12], dtype=float)
_NONCONVERTING_MIX = np.array([14, 12, 12, 10, 4, 3, 10, 3, 2, 5, 5, 2], dtype=float)

CA_SCRIPT = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd
import ChannelAttribution as ca

csv_path, repeat = sys.argv[1], int(sys.argv[2])
data = pd.read_csv(csv_path)

def best(call):
    seconds, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        seconds = min(seconds, time.perf_counter() - started)
    return seconds, result

def markov_run(simulations):
    seconds, result = best(lambda: ca.markov_model(
        data, "path", "total_conversions", var_value="total_conversion_value",
        var_null="total_null", order=1, nsim_start=simulations, out_more=False,
        verbose=False, flg_pro=False, ncore=1))
    if isinstance(result, dict):
        result = result["result"]
    return {"simulations": simulations, "seconds": seconds, "credit": {
        str(row.channel_name): [float(row.total_conversions), float(row.total_conversion_value)]
        for row in result.itertuples()}}

markov = [markov_run(float(simulations)) for simulations in sys.argv[3].split(",")]
heuristic_seconds, heuristic = best(lambda: ca.heuristic_models(
    data, "path", "total_conversions", var_value="total_conversion_value", flg_pro=False))
from importlib.metadata import version
print("RESULT" + json.dumps({
    "version": version("ChannelAttribution"),
    "markov": markov,
    "heuristic_seconds": heuristic_seconds,
    "heuristic": {str(row.channel_name): [float(row.first_touch_conversions),
                  float(row.last_touch_conversions), float(row.linear_touch_conversions)]
                  for row in heuristic.itertuples()},
}))
"""


def _geometric_lengths(
    rng: np.random.Generator, count: int, mean: float, longest: int
) -> np.ndarray:
    return np.minimum(rng.geometric(1.0 / mean, size=count), longest).astype(np.int64)


def generate(seed: int, conversions: int, touches: int) -> tuple[ConvertingPaths, ChannelPaths]:
    """Converting paths (about ten touches each, with handoff and deal-creation markers and
    log-normal values) and non-converting ones (about four) up to ``touches`` in all."""
    rng = np.random.default_rng(seed)
    lengths = _geometric_lengths(rng, conversions, mean=10.0, longest=60)
    offsets = offsets_from_lengths(lengths)
    converting_touches = int(offsets[-1])
    if converting_touches >= touches:
        raise SystemExit("--touches must exceed the converting paths' touches")
    path = path_of_touch(offsets)
    channel = rng.choice(
        len(CHANNELS), converting_touches, p=_CONVERTING_MIX / _CONVERTING_MIX.sum()
    )
    # Gaps of about four days between touches; each path starts somewhere in a year.
    gaps = rng.exponential(4 * DAY, converting_touches)
    running = np.cumsum(gaps)
    before_path = np.concatenate(([0.0], running))[offsets[:-1]]
    start = rng.uniform(0, 365 * DAY, conversions)
    moment = start[path] + running - before_path[path]
    last = offsets[1:] - 1
    converted_at = moment[last] + rng.exponential(2 * DAY, conversions)
    is_handoff = np.zeros(converting_touches, dtype=np.bool_)
    is_deal = np.zeros(converting_touches, dtype=np.bool_)
    handoff_at = (rng.uniform(size=conversions) * lengths).astype(np.int64)
    deal_at = handoff_at + (rng.uniform(size=conversions) * (lengths - handoff_at)).astype(np.int64)
    has_handoff = rng.uniform(size=conversions) < 0.8
    has_deal = rng.uniform(size=conversions) < 0.9
    is_handoff[(offsets[:-1] + handoff_at)[has_handoff]] = True
    is_deal[(offsets[:-1] + deal_at)[has_deal]] = True
    converting = ConvertingPaths(
        channel=channel.astype(np.int64),
        offsets=offsets,
        value=np.round(rng.lognormal(9.0, 1.0, conversions), 2),
        time=moment,
        converted_at=converted_at,
        is_handoff=is_handoff,
        is_deal_creation=is_deal,
        campaign=rng.integers(0, 40, converting_touches),
    )

    remaining = touches - converting_touches
    candidate = _geometric_lengths(rng, remaining // 2 + 1, mean=4.0, longest=40)
    ends = np.cumsum(candidate)
    paths = int(np.searchsorted(ends, remaining)) + 1
    null_lengths = candidate[:paths].copy()
    null_lengths[-1] -= int(ends[paths - 1]) - remaining  # exactly ``touches`` in all
    null_lengths = null_lengths[null_lengths > 0]
    null_channel = rng.choice(
        len(CHANNELS), remaining, p=_NONCONVERTING_MIX / _NONCONVERTING_MIX.sum()
    )
    nonconverting = ChannelPaths(null_channel.astype(np.int64), offsets_from_lengths(null_lengths))
    return converting, nonconverting


def best_of(repeat: int, call: Callable[[], Any]) -> tuple[float, Any]:
    seconds, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        seconds = min(seconds, time.perf_counter() - started)
    return seconds, result


def engine_figures(
    converting: ConvertingPaths, nonconverting: ChannelPaths, repeat: int
) -> dict[str, Any]:
    figures: dict[str, Any] = {"models": {}}
    for model in MODEL_NAMES:
        seconds, _ = best_of(repeat, partial(touch_shares, model, converting, nonconverting))
        figures["models"][model] = seconds
    figures["all_eight"] = sum(figures["models"].values())

    channel_paths = converting.channel_paths()
    n_channels = len(CHANNELS)

    def markov_channel() -> tuple[np.ndarray, np.ndarray]:
        conversions = markov_channel_weights(channel_paths, nonconverting, n_channels)
        value = markov_channel_weights(channel_paths, nonconverting, n_channels, converting.value)
        return conversions, value

    path = path_of_touch(converting.offsets)

    def heuristic_channel() -> list[np.ndarray]:
        # What heuristic_models returns: conversions and value per channel for three models.
        sums = []
        for shares in (
            first_touch_shares(converting),
            last_touch_shares(converting),
            linear_shares(converting),
        ):
            sums.append(np.bincount(converting.channel, weights=shares, minlength=n_channels))
            sums.append(
                np.bincount(
                    converting.channel,
                    weights=shares * converting.value[path],
                    minlength=n_channels,
                )
            )
        return sums

    figures["markov_channel"], figures["markov_credit"] = best_of(repeat, markov_channel)
    figures["heuristic_channel"], figures["heuristic_credit"] = best_of(repeat, heuristic_channel)
    tracemalloc.start()
    for model in MODEL_NAMES:
        touch_shares(model, converting, nonconverting)
    figures["peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return figures


def credit_rows_figures(
    converting: ConvertingPaths, nonconverting: ChannelPaths, repeat: int
) -> tuple[float, int]:
    """Seconds for what a run computes (every model, summed into rows per conversion,
    channel and campaign), and the rows; the input in the run's own layout."""
    run_input = SimpleNamespace(
        conversions=converting.count,
        value=converting.value,
        converted_at=converting.converted_at,
        touch_conversion=path_of_touch(converting.offsets),
        touch_channel=converting.channel + 1,  # the record's channel ids
        touch_campaign=converting.campaign,
        touch_time=converting.time,
        touch_is_handoff=converting.is_handoff,
        touch_is_deal_creation=converting.is_deal_creation,
        nonconverting_channel=nonconverting.channel + 1,
        nonconverting_starts=nonconverting.offsets[:-1],
    )
    seconds, blocks = best_of(repeat, partial(credits_compute, run_input))  # type: ignore[arg-type]
    return seconds, sum(block.rows for block in blocks)


def write_channelattribution_csv(
    converting: ConvertingPaths, nonconverting: ChannelPaths, target: Path
) -> None:
    """One row per path, as ChannelAttribution reads them: ``a > b > c``, conversions,
    nulls and value."""
    names = np.array(CHANNELS, dtype=object)
    with target.open("w") as out:
        out.write("path,total_conversions,total_null,total_conversion_value\n")
        for paths, converted in ((converting, True), (nonconverting, False)):
            channel_names = names[paths.channel].tolist()
            offsets = paths.offsets.tolist()
            values = converting.value.tolist() if converted else None
            for index in range(len(offsets) - 1):
                text = " > ".join(channel_names[offsets[index] : offsets[index + 1]])
                if converted:
                    out.write(f"{text},1,0,{values[index]!r}\n")  # type: ignore[index]
                else:
                    out.write(f"{text},0,1,0\n")


def channelattribution_python(venv: Path) -> tuple[Path | None, str]:
    """The virtualenv's python with ChannelAttribution importable, or None and why not."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import ChannelAttribution, pandas"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python, ""
    print(f"installing ChannelAttribution into {venv} (compiles C++; a few minutes) ...")
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "-q", "ChannelAttribution", "pandas", "matplotlib"],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            return None, f"`{' '.join(step)}` failed: " + " | ".join(tail)
    done = subprocess.run(check, capture_output=True, text=True)
    if done.returncode != 0:
        return None, "ChannelAttribution installed but does not import: " + done.stderr[-500:]
    return python, ""


def largest_relative_difference(ours: dict[str, float], theirs: dict[str, float]) -> float:
    return max(
        abs(ours[channel] - theirs.get(channel, 0.0)) / max(abs(ours[channel]), 1e-12)
        for channel in ours
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--conversions", type=int, default=20_000)
    parser.add_argument("--touches", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ca-venv", type=Path, default=Path("/tmp/ca-venv"))
    parser.add_argument("--skip-channelattribution", action="store_true")
    # ChannelAttribution's default, and ten times more to show its estimate converging.
    parser.add_argument("--simulations", type=int, nargs="+", default=[100_000, 1_000_000])
    arguments = parser.parse_args()

    converting, nonconverting = generate(arguments.seed, arguments.conversions, arguments.touches)
    total = converting.channel.size + nonconverting.channel.size
    print(
        f"paths: {converting.count:,} converting ({converting.channel.size:,} touches), "
        f"{nonconverting.count:,} non-converting ({nonconverting.channel.size:,} touches); "
        f"{total:,} touches over {len(CHANNELS)} channels; seed {arguments.seed}"
    )
    ours = engine_figures(converting, nonconverting, arguments.repeat)
    print(f"\nengine, per-touch shares (best of {arguments.repeat}):")
    for model, seconds in ours["models"].items():
        print(f"  {model:<16}{seconds:8.3f} s")
    print(f"  {'all eight':<16}{ours['all_eight']:8.3f} s   peak {ours['peak_mib']:.0f} MiB")
    rows_seconds, rows = credit_rows_figures(converting, nonconverting, arguments.repeat)
    print(f"  credits_compute (all eight, {rows:,} credit rows) {rows_seconds:.3f} s")
    print("engine, channel level (what ChannelAttribution returns):")
    print(f"  markov (conversions + value)      {ours['markov_channel']:8.3f} s")
    print(f"  first/last/linear per channel     {ours['heuristic_channel']:8.3f} s")

    if arguments.skip_channelattribution:
        return
    python, why_not = channelattribution_python(arguments.ca_venv)
    if python is None:
        print(f"\nChannelAttribution not run: {why_not}")
        return
    with tempfile.TemporaryDirectory(prefix="attribution-bench-") as folder:
        csv_path = Path(folder) / "paths.csv"
        write_channelattribution_csv(converting, nonconverting, csv_path)
        done = subprocess.run(
            [
                str(python),
                "-c",
                CA_SCRIPT,
                str(csv_path),
                str(arguments.repeat),
                ",".join(str(count) for count in arguments.simulations),
            ],
            capture_output=True,
            text=True,
        )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
    if done.returncode != 0 or not lines:
        print(f"\nChannelAttribution failed: {(done.stderr or done.stdout)[-800:]}")
        return
    theirs = json.loads(lines[-1][len("RESULT") :])
    conversions, value = ours["markov_credit"]
    our_markov = {name: float(conversions[i]) for i, name in enumerate(CHANNELS)}
    our_value = {name: float(value[i]) for i, name in enumerate(CHANNELS)}
    print(
        f"\nChannelAttribution {theirs['version']} (C++ core, ncore=1, best of {arguments.repeat}):"
    )
    for run in theirs["markov"]:
        their_markov = {name: credit[0] for name, credit in run["credit"].items()}
        their_value = {name: credit[1] for name, credit in run["credit"].items()}
        run["difference"] = largest_relative_difference(our_markov, their_markov)
        run["value_difference"] = largest_relative_difference(our_value, their_value)
        ratio = run["seconds"] / ours["markov_channel"]
        print(
            f"  markov_model (order 1, nsim_start={run['simulations']:.0e})"
            f"{run['seconds']:8.3f} s = {ratio:6.1f} x the engine;"
            f" largest relative difference of channel credits: conversions "
            f"{run['difference']:.2%}, value {run['value_difference']:.2%}"
        )
    heuristic_ratio = theirs["heuristic_seconds"] / ours["heuristic_channel"]
    print(
        f"  heuristic_models                   {theirs['heuristic_seconds']:8.3f} s ="
        f" {heuristic_ratio:6.1f} x the engine"
    )
    print(
        f"  (markov_model at nsim_start={theirs['markov'][0]['simulations']:.0e} against the"
        f" engine's per-touch markov, distribution included: "
        f"{theirs['markov'][0]['seconds'] / ours['models']['markov']:.1f} x)"
    )
    print("markov channel credits (conversions): the engine (exact), then each simulation:")
    for name in CHANNELS:
        simulated = "".join(
            f"{run['credit'].get(name, [0.0])[0]:12.2f}" for run in theirs["markov"]
        )
        print(f"  {name:<18}{our_markov[name]:12.2f}{simulated}")
    heuristic = ours["heuristic_credit"]
    worst = 0.0
    for column, sums in enumerate((heuristic[0], heuristic[2], heuristic[4])):
        mine = {name: float(sums[i]) for i, name in enumerate(CHANNELS)}
        other = {name: credit[column] for name, credit in theirs["heuristic"].items()}
        worst = max(worst, largest_relative_difference(mine, other))
    print(f"largest relative difference of first/last/linear channel credits: {worst:.2e}")


if __name__ == "__main__":
    main()
