"""Full attribution run benchmark on PostgreSQL, with the engine alone and ChannelAttribution.

    .venv/bin/python bench/attribution.py [--contacts 100000] [--touches 1000000]
        [--conversions 20000] [--seed 1] [--database-url postgres://...]
        [--skip-channelattribution] [--workers N --broker-url redis://...]
        [--prepared-database postgres://...]

1. Generates, reproducibly (``--seed``), the record: contacts in organizations
   of eight, touches spread over the last year on the seeded channels (every
   team), and ``--conversions`` won deals, each with a buying group of one to
   three people. The rows are loaded with COPY straight into the tables (the
   benchmark measures the run, not the services that would write them).
   With ``--prepared-database`` (a database generated so before, at the same sizes
   and seed, and kept) the record is reused: it is migrated, and nothing else.
2. Times a full run as the product does it (``manage.py recompute_attribution``
   in its own process: read, every model, write the credits and daily sums,
   swap in) and prints seconds and that process's peak memory.
   With ``--workers N``, times the same full run as a Celery chord
   (``LEADRECORD_ATTRIBUTION_CHORD``) on 1 and on N real worker processes, side by
   side with the single-process run.
3. In this process: reads the run's input, times the engine alone on it (all
   eight models and their credit rows), and, on exactly the same paths, the
   ``markov_model`` (order 1) and ``heuristic_models`` of the ChannelAttribution
   package in its own virtualenv (``bench/attribution_engine.py`` sets it up),
   printing the ratios and the largest relative difference of Markov channel
   credits (theirs is simulated).
4. Prints, per model, the largest margin error of the credits the run stored: per
   channel (with its unallocated part) against the model's channel credit, and per
   conversion against its value, both relative.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from common import ROOT, fresh_database, manage, product_env, throwaway_postgres

YEAR = 365 * 86_400
ANCHOR = datetime(2026, 11, 1, tzinfo=UTC).timestamp()


GENERATED_TABLES = (
    "contacts_organization",
    "contacts_contact",
    "contacts_touch",
    "handoff_deal",
    "handoff_dealcontact",
    "handoff_saleevent",
)


def _copy(cursor: Any, table: str, columns: str, lines: list[str]) -> None:
    cursor.copy_expert(
        f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT text)", io.StringIO("".join(lines))
    )


def _stamp(seconds: np.ndarray) -> list[str]:
    return [
        datetime.fromtimestamp(float(moment), tz=UTC).isoformat() for moment in seconds.tolist()
    ]


def generate(
    database_url: str, *, contacts: int, touches: int, conversions: int, seed: int
) -> None:
    """The record, loaded with COPY; every id chosen here, so the same seed gives the same rows."""
    import psycopg2

    rng = np.random.default_rng(seed)
    with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT id, team FROM contacts_channel ORDER BY id")
        channels = cursor.fetchall()
        channel_ids = np.array([row[0] for row in channels])
        # Marketing channels are busy, sales ones rarer, as in life.
        weights = np.array(
            [{"marketing": 4.0, "partner": 1.5, "sales": 2.0}[row[1]] for row in channels]
        )
        weights /= weights.sum()
        created = "2025-10-01T00:00:00+00:00"

        organizations = max(1, contacts // 8)
        _copy(
            cursor,
            "contacts_organization",
            "id, name, domain, created_at",
            [f"{i}\tOrg {i}\torg{i}.example\t{created}\n" for i in range(1, organizations + 1)],
        )
        organization_of = rng.integers(1, organizations + 1, size=contacts)
        _copy(
            cursor,
            "contacts_contact",
            "id, email, email_key, first_name, last_name, title, score, qualified, created_at, "
            "organization_id",
            [
                f"{i}\tp{i}@org{org}.example\tp{i}@org{org}.example\tPat\tExample\t\t0\tf\t{created}\t{org}\n"
                for i, org in enumerate(organization_of.tolist(), start=1)
            ],
        )
        # Touches: each person's count roughly geometric, times uniform over the year.
        person = rng.integers(1, contacts + 1, size=touches)
        channel = rng.choice(channel_ids, size=touches, p=weights)
        moment = ANCHOR - rng.uniform(0, YEAR, size=touches)
        stamps = _stamp(moment)
        lines = [
            f"{i}\t{p}\t{c}\tother\t{s}\t{s}\tbench\t\\N\n"
            for i, (p, c, s) in enumerate(
                zip(person.tolist(), channel.tolist(), stamps, strict=True), start=1
            )
        ]
        _copy(
            cursor,
            "contacts_touch",
            "id, contact_id, channel_id, kind, occurred_at, recorded_at, source_system, "
            "external_id",
            lines,
        )
        # Won deals, each with a buying group of one to three people.
        group_size = rng.integers(1, 4, size=conversions)
        first_member = np.concatenate(([0], np.cumsum(group_size)[:-1]))
        # Neighbouring people (distinct within a deal, mostly of one organization).
        start = rng.integers(1, max(2, contacts - 2), size=conversions)
        position = np.arange(int(group_size.sum())) - np.repeat(first_member, group_size)
        members = np.repeat(start, group_size) + position
        opened = ANCHOR - rng.uniform(30 * 86_400, 200 * 86_400, size=conversions)
        won = opened + rng.uniform(5 * 86_400, 29 * 86_400, size=conversions)
        amount = np.round(rng.lognormal(np.log(20_000), 0.6, size=conversions), 2)
        opened_stamps, won_stamps = _stamp(opened), _stamp(won)
        deal_org = organization_of[members[first_member] - 1]
        _copy(
            cursor,
            "handoff_deal",
            "id, name, amount, state, derived_source, derived_source_reason, source_override, "
            "override_reason, influenced, source_system, occurred_at, recorded_at, organization_id",
            [
                f"{d}\tDeal {d}\t{a:.2f}\twon\tsales\tbench\t\t\tt\tbench\t{o}\t{o}\t{org}\n"
                for d, (a, o, org) in enumerate(
                    zip(amount.tolist(), opened_stamps, deal_org.tolist(), strict=True), start=1
                )
            ],
        )
        deal_of_member = np.repeat(np.arange(1, conversions + 1), group_size)
        _copy(
            cursor,
            "handoff_dealcontact",
            "id, role, other_organization, contact_id, deal_id",
            [
                f"{i}\tchampion\tf\t{c}\t{d}\n"
                for i, (c, d) in enumerate(
                    zip(members.tolist(), deal_of_member.tolist(), strict=True), start=1
                )
            ],
        )
        _copy(
            cursor,
            "handoff_saleevent",
            "id, kind, amount, occurred_at, recorded_at, source_system, deal_id",
            [
                f"{d}\twon\t{a:.2f}\t{w}\t{w}\tbench\t{d}\n"
                for d, (a, w) in enumerate(zip(amount.tolist(), won_stamps, strict=True), start=1)
            ],
        )
        # The ids were chosen here: move each table's id sequence past them, so the
        # product's own inserts (API calls, runs) do not collide with the generated rows.
        for table in GENERATED_TABLES:
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            )
        connection.commit()
        # What autovacuum does to a live table, done now: a fresh COPY leaves the pages
        # not yet marked all-visible, and reads from an index alone need them marked.
        connection.autocommit = True
        cursor.execute("VACUUM (ANALYZE)")


def generated_database(
    stack: ExitStack, options: argparse.Namespace, name: str
) -> tuple[str, float]:
    """A migrated database ``name`` holding the generated record, dropped when ``stack``
    closes (on the server at ``options.database_url``, else a throwaway cluster); its URL
    and the seconds generating took. ``options`` has contacts, touches, conversions, seed."""
    server = options.database_url or stack.enter_context(throwaway_postgres())
    database = stack.enter_context(fresh_database(server, name))
    manage(database, "migrate", "--no-input", "-v", "0")
    started = time.perf_counter()
    generate(
        database,
        contacts=options.contacts,
        touches=options.touches,
        conversions=options.conversions,
        seed=options.seed,
    )
    return database, time.perf_counter() - started


def full_run(database_url: str, **extra: str) -> tuple[float, float, str]:
    """``manage.py recompute_attribution`` in its own process: seconds, peak MiB, its output.

    The peak is the run process's own, as GNU time reports it: the resource usage of a
    child of this process would count, from the fork until the exec, the pages it shares
    with this one (which holds the generated record).
    """
    timer = shutil.which("time") or "/usr/bin/time"
    started = time.perf_counter()
    done = subprocess.run(
        [timer, "-f", "peak-kib %M", sys.executable, "manage.py", "recompute_attribution"],
        cwd=ROOT,
        env=product_env(database_url, **extra),
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the run failed:\n{done.stderr[-2000:]}")
    peaks = [line.split()[1] for line in done.stderr.splitlines() if line.startswith("peak-kib ")]
    peak_mib = int(peaks[-1]) / 1024 if peaks else float("nan")
    return seconds, peak_mib, done.stdout.strip()


def chord_runs(
    database_url: str, broker_url: str, counts: list[int], **extra: str
) -> dict[int, float]:
    """Per number of workers, the seconds of a full run carried out as a Celery chord on
    that many real worker processes (one process each), started afresh for it."""
    from celery import Celery

    env = product_env(database_url, CELERY_BROKER_URL=broker_url, LEADRECORD_ATTRIBUTION_CHORD="1")
    app = Celery(broker=broker_url)
    seconds = {}
    for count in counts:
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "leadrecord",
                    "worker",
                    "--pool=solo",
                    f"--hostname=bench{index}@%h",
                    "--loglevel=WARNING",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ],
                cwd=ROOT,
                env=env,
            )
            for index in range(count)
        ]
        try:
            deadline = time.monotonic() + 120
            while len(app.control.ping(timeout=1.0) or []) < count:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{count} celery workers did not all answer")
            seconds[count], _, _ = full_run(
                database_url,
                CELERY_BROKER_URL=broker_url,
                LEADRECORD_ATTRIBUTION_CHORD="1",
                **extra,
            )
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.wait(timeout=60)
    return seconds


def engine_alone(database_url: str) -> dict[str, object]:
    os.environ.update(product_env(database_url, DJANGO_SETTINGS_MODULE="leadrecord.settings"))
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from reports.attribution import markov_channel_credit
    from reports.attribution.markov import markov_channel_weights
    from reports.attribution_credits import _engine_input, credits_compute
    from reports.run_input import run_input_read

    started = time.perf_counter()
    data = run_input_read(lookback_days=365)
    read_seconds = time.perf_counter() - started
    started = time.perf_counter()
    blocks = credits_compute(data)
    compute_seconds = time.perf_counter() - started

    key = data.channel_key
    cuts = np.searchsorted(data.touch_conversion, np.arange(data.conversions + 1))
    channels = [key[c] for c in data.touch_channel.tolist()]
    converting = [channels[a:b] for a, b in zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True)]
    keep = [index for index, path in enumerate(converting) if path]
    nc_channels = [key[c] for c in data.nonconverting_channel.tolist()]
    nc_cuts = [*data.nonconverting_starts.tolist(), len(nc_channels)]
    nonconverting = [nc_channels[a:b] for a, b in itertools.pairwise(nc_cuts)]
    paths = [converting[i] for i in keep] + nonconverting
    converted = [True] * len(keep) + [False] * len(nonconverting)
    values = [float(data.value[i]) for i in keep] + [0.0] * len(nonconverting)
    started = time.perf_counter()
    markov = markov_channel_credit(paths, converted)
    markov_lists_seconds = time.perf_counter() - started
    # The same computation on the run's arrays (what a run does; the plain function above
    # also turns a million Python strings into codes).
    converting_paths, nonconverting_paths, channel_of_code = _engine_input(data)
    started = time.perf_counter()
    markov_channel_weights(
        converting_paths.channel_paths(), nonconverting_paths, int(channel_of_code.size)
    )
    markov_seconds = time.perf_counter() - started
    return {
        "read": read_seconds,
        "compute": compute_seconds,
        "rows": sum(block.rows for block in blocks),
        "markov_channel": markov_seconds,
        "markov_lists": markov_lists_seconds,
        "markov": markov,
        "paths": paths,
        "converted": converted,
        "values": values,
        "touches": data.touches,
        "conversions": data.conversions,
    }


def channelattribution(figures: dict[str, object], venv: Path) -> None:
    from attribution_engine import CA_SCRIPT, channelattribution_python

    python, why_not = channelattribution_python(venv)
    if python is None:
        print(f"ChannelAttribution not run: {why_not}")
        return
    with tempfile.TemporaryDirectory(prefix="attribution-bench-") as folder:
        csv_path = Path(folder) / "paths.csv"
        with csv_path.open("w") as out:
            out.write("path,total_conversions,total_null,total_conversion_value\n")
            for path, converted, value in zip(
                figures["paths"],
                figures["converted"],
                figures["values"],
                strict=True,  # type: ignore[call-overload]
            ):
                out.write(f"{' > '.join(path)},{int(converted)},{int(not converted)},{value!r}\n")
        done = subprocess.run(
            [str(python), "-c", CA_SCRIPT, str(csv_path), "1", "100000"],
            capture_output=True,
            text=True,
            check=False,
        )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
    if done.returncode != 0 or not lines:
        print(f"ChannelAttribution failed: {(done.stderr or done.stdout)[-800:]}")
        return
    theirs = json.loads(lines[-1][len("RESULT") :])
    ours: dict[str, float] = figures["markov"]  # type: ignore[assignment]
    run = theirs["markov"][0]
    their_markov = {name: credit[0] for name, credit in run["credit"].items()}
    difference = max(
        abs(ours[name] - their_markov.get(name, 0.0)) / max(abs(ours[name]), 1e-12) for name in ours
    )
    markov_ratio = run["seconds"] / float(figures["markov_channel"])  # type: ignore[arg-type]
    heuristic_ratio = theirs["heuristic_seconds"] / float(figures["compute"])  # type: ignore[arg-type]
    print(f"ChannelAttribution {theirs['version']} on the same paths:")
    print(
        f"  markov_model (order 1, 1e5 simulations) {run['seconds']:7.2f} s = "
        f"{markov_ratio:5.1f} x the engine's exact Markov channel credit"
    )
    print(
        f"  heuristic_models                         {theirs['heuristic_seconds']:7.2f} s = "
        f"{heuristic_ratio:5.1f} x the engine's eight models with credit rows"
    )
    print(f"  largest relative difference of Markov channel credits: {difference:.2%}")


def stored_margin_errors() -> dict[str, float]:
    """Per model, the largest relative error of the latest run's stored credits, per channel
    against the model's channel credit and per conversion against its value (call after
    ``engine_alone``, which sets Django up)."""
    from django.db.models import Sum

    from reports.attribution.engine import MARKOV, SHAPLEY, channel_weights, touch_shares
    from reports.attribution.paths import path_of_touch
    from reports.attribution_credits import _engine_input
    from reports.models import AttributionCredit
    from reports.run_input import run_input_read
    from reports.selectors import run_latest_complete

    run = run_latest_complete()
    assert run is not None
    data = run_input_read(lookback_days=run.lookback_days or 365, now=run.started_at)
    converting, nonconverting, channel_ids = _engine_input(data)
    value_of = dict(zip(data.sale_event_id.tolist(), data.value.tolist(), strict=True))
    errors = {}
    for model in run.model_names:
        if model in (MARKOV, SHAPLEY):
            model_credit = channel_weights(model, converting, nonconverting)
        else:
            shares = touch_shares(model, converting, nonconverting)
            amounts = shares * converting.value[path_of_touch(converting.offsets)]
            model_credit = np.bincount(
                converting.channel, weights=amounts, minlength=channel_ids.size
            ).astype(np.float64)
        expected = dict(zip(channel_ids.tolist(), model_credit.tolist(), strict=True))
        credits = AttributionCredit.objects.filter(run=run, model=model)
        stored = {
            channel: float(credit)
            for channel, credit in credits.values("channel_id")
            .annotate(credit=Sum("credit"))
            .values_list("channel_id", "credit")
        }
        for channel, amount in (getattr(run, "unallocated", None) or {}).get(model, {}).items():
            stored[int(channel)] = stored.get(int(channel), 0.0) + amount
        stored.pop(0, None)  # the unallocated rows, counted by their origin above
        worst = 0.0
        for channel in set(expected) | set(stored):
            want, got = expected.get(channel, 0.0), stored.get(channel, 0.0)
            if max(want, got) > 0:
                worst = max(worst, abs(got - want) / max(want, 1e-300))
        for sale, credit in (
            credits.values("sale_event_id")
            .annotate(credit=Sum("credit"))
            .values_list("sale_event_id", "credit")
        ):
            worst = max(worst, abs(float(credit) - value_of[sale]) / value_of[sale])
        errors[model] = worst
    return errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--touches", type=int, default=1_000_000)
    parser.add_argument("--conversions", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--ca-venv", type=Path, default=Path("/tmp/ca-venv"))
    parser.add_argument("--skip-channelattribution", action="store_true")
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="also time the run as a Celery chord on 1 and on this many worker processes",
    )
    parser.add_argument(
        "--broker-url",
        default=os.environ.get("CELERY_BROKER_URL", ""),
        help="the Redis the chord's workers use (default: $CELERY_BROKER_URL)",
    )
    parser.add_argument(
        "--partition-conversions",
        type=int,
        default=0,
        help="conversions per partition of a run (default: the product's setting)",
    )
    parser.add_argument(
        "--prepared-database",
        default="",
        help="URL of a database generated before with the same sizes and seed (kept): skip step 1",
    )
    options = parser.parse_args()
    if options.workers and not options.broker_url:
        parser.error("--workers needs --broker-url (or CELERY_BROKER_URL)")

    with ExitStack() as stack:
        if options.prepared_database:
            database = options.prepared_database
            manage(database, "migrate", "--no-input", "-v", "0")
            print(f"record: prepared before ({options.touches:,} touches as given)")
        else:
            database, generated = generated_database(stack, options, "leadrecord_bench_attribution")
            print(
                f"record: {options.contacts:,} contacts, {options.touches:,} touches, "
                f"{options.conversions:,} won deals (generated and loaded in {generated:.1f} s)"
            )
        extra = {}
        if options.partition_conversions:
            extra["LEADRECORD_ATTRIBUTION_PARTITION_CONVERSIONS"] = str(
                options.partition_conversions
            )
        seconds, peak_mib, output = full_run(database, **extra)
        print(
            f"full run (read, eight models, write, swap): {seconds:.1f} s, peak {peak_mib:.0f} MiB"
        )
        print(f"  {output}")
        if options.workers:
            counts = sorted({1, options.workers})
            chorded = chord_runs(database, options.broker_url, counts, **extra)
            print(
                "full run as a Celery chord: "
                + ", ".join(f"{count} worker(s) {chorded[count]:.1f} s" for count in counts)
                + f" (in one process: {seconds:.1f} s)"
            )
        figures = engine_alone(database)
        print(
            f"engine alone on the run's input ({figures['conversions']:,} conversions, "
            f"{figures['touches']:,} touches on paths): eight models and "
            f"{figures['rows']:,} credit rows in {figures['compute']:.2f} s "
            f"(reading the input took {figures['read']:.2f} s); "
            f"Markov channel credit alone {figures['markov_channel']:.3f} s on the arrays, "
            f"{figures['markov_lists']:.3f} s through markov_channel_credit on Python lists"
        )
        margins = stored_margin_errors()
        print("largest margin error of the stored credits (per channel and per conversion):")
        for model, error in margins.items():
            print(f"  {model:<15} {error:.1e}")
        if not options.skip_channelattribution:
            channelattribution(figures, options.ca_venv)
        from django.db import connections

        connections.close_all()


if __name__ == "__main__":
    main()
