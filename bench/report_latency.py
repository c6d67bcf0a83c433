"""Report endpoints and dashboard pages through gunicorn, cold, alone and under ingest load.

    .venv/bin/python bench/report_latency.py [--contacts 100000] [--touches 1000000]
        [--conversions 20000] [--seed 1] [--requests 200] [--workers 4]
        [--database-url postgres://...] [--prepared-database postgres://...]
        [--baseline-tree PATH] [--load-clients 2] [--cached]

1. Generates the record as ``bench/attribution.py`` does (same ``generate()``,
   same seed, so the same rows), runs attribution as the product does
   (``manage.py recompute_attribution``), builds the report aggregates
   (``manage.py rebuild_people_aggregates``), and gives one in ten deals to the
   benchmark's sales rep so the rep's dashboard has deals to show. With
   ``--prepared-database`` (a database this script, or a run of it, prepared
   before) the record is reused: it is migrated and its aggregates brought up
   to date (rebuilt only if they must be).
2. Starts gunicorn with the report cache off (``REPORT_CACHE_SECONDS=0``: what
   every request costs while the record changes between requests), logs in a
   manager, a marketer and a sales rep through the login form, and sends
   ``--requests`` GETs, one after another, to each report API endpoint and each
   dashboard page, over the whole year of the record, after three warm-up
   requests per URL and gunicorn worker.
3. Again while ``bench/ingest.py``'s load runs against the same server:
   ``--load-clients`` processes post batches of 500 touch events to
   ``POST /api/v1/events/`` without pause, and the report aggregates are brought
   up to the ledger every ``--rollup-seconds`` (3 s, the product's default period:
   ``manage.py update_report_aggregates`` of the tree served, if it has the
   command, as the periodic job does on a worker).
   Prints the ingest rate achieved.
4. With ``--baseline-tree`` (a checkout of another commit, e.g. made by
   ``git archive``), steps 2 and 3 again served from that tree, on the same
   database, after bringing the aggregates up to the ledger again (the first
   tree's load left them behind), and both side by side.

Prints p50, p95 and the slowest request per URL, and checks each answered 200.
``--cached`` first measures with the cache on, as before. Targets (issue 21): p95 at
most 150 ms for every report endpoint and 250 ms for every page, cold.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import multiprocessing
import re
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from attribution import full_run, generated_database
from common import ROOT, gunicorn, integration_token, manage, product_env
from ingest import BATCH, _bulk_client

PASSWORD = "bench-only-password-0123"  # a throwaway database
# Warm-up requests per URL and gunicorn worker: a worker's first request of a URL also
# pays for what the process loads once, which is not what a cold (cache off) figure is.
WARM_UP = 3
API_TARGET_MS = 150
PAGE_TARGET_MS = 250


def deals_to_rep(database_url: str, username: str) -> int:
    """One deal in ten owned by the rep (the generated record leaves owners empty)."""
    import psycopg2

    with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT id FROM auth_user WHERE username = %s", [username])
        (rep_id,) = cursor.fetchone()
        cursor.execute("UPDATE handoff_deal SET owner_id = %s WHERE id %% 10 = 0", [rep_id])
        changed = cursor.rowcount
        connection.commit()
        return changed


def logged_in(base: str, username: str) -> urllib.request.OpenerDirector:
    """An opener holding the session cookie of ``username``, logged in through the form."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(base + "/login/") as response:
        form = response.read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
    if token is None:
        raise SystemExit("no CSRF token on the login form")
    body = urllib.parse.urlencode(
        {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token.group(1)}
    ).encode()
    request = urllib.request.Request(
        base + "/login/", data=body, headers={"Referer": base + "/login/"}
    )
    with opener.open(request) as response:
        if response.url.endswith("/login/"):
            raise SystemExit(f"could not log in as {username}")
    if not any(cookie.name == "sessionid" for cookie in jar):
        raise SystemExit(f"no session cookie for {username}")
    return opener


def timed(opener: urllib.request.OpenerDirector, url: str, count: int) -> list[float]:
    """Milliseconds of ``count`` GETs of ``url``, one after another; each must answer 200."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        with opener.open(url, timeout=120) as response:
            response.read()
            status = response.status
        times.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise SystemExit(f"{url} answered {status}")
    return times


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _ingest_load(job: tuple[str, str, int, str, Any, Any]) -> None:
    """Post batches of touch events until told to stop, counting the events created."""
    url, token, people, prefix, stop, created = job
    batch = 0
    while not stop.is_set():
        start = batch * BATCH
        done = _bulk_client((url, token, [(start, start + BATCH)], people, prefix))
        with created.get_lock():
            created.value += done
        batch += 1


@contextmanager
def ingest_load(
    base: str,
    database: str,
    *,
    clients: int,
    prefix: str,
    root: Path,
    update: bool,
    every: float,
) -> Iterator[Callable[[], float]]:
    """``bench/ingest.py``'s bulk load on the server at ``base`` while the block runs (and
    the report aggregates' update, when ``update``); yields a function giving the events
    per second created so far."""
    token = _token(database)
    stop = multiprocessing.Event()
    created = multiprocessing.Value("q", 0)
    workers = [
        multiprocessing.Process(
            target=_ingest_load,
            args=((base, token, 20_000, f"{prefix}-{index}", stop, created),),
        )
        for index in range(clients)
    ]
    updater = None
    if update:
        updater = subprocess.Popen(
            [sys.executable, "manage.py", "update_report_aggregates", "--every", str(every)],
            cwd=root,
            env=product_env(database),
            stdout=subprocess.DEVNULL,
        )
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    try:
        yield lambda: created.value / (time.perf_counter() - started)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=300)
        if updater is not None:
            updater.terminate()
            updater.wait(timeout=60)


def _token(database: str) -> str:
    """An API key of the benchmark's integration user (made on first use)."""
    try:
        return manage(database, "issue_token", "bench-sync").strip()
    except SystemExit:
        return integration_token(database)


def measure(
    base: str,
    openers: dict[str, urllib.request.OpenerDirector],
    rows: list,
    requests: int,
    workers: int,
) -> dict[str, list[float]]:
    """Each URL's request times (after the warm-up), one after another."""
    found = {}
    for role, url, _ in rows:
        opener = openers[role]
        timed(opener, base + url, WARM_UP * workers)
        found[url] = timed(opener, base + url, requests)
    return found


def print_table(title: str, rows: list, year: str, results: dict[str, list[float]]) -> int:
    """The p50, p95 and slowest per URL; returns how many missed their target."""
    print(f"\n{title}")
    print(f"{'URL':<66} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  target")
    missed = 0
    for _, url, target in rows:
        times = results[url]
        p95 = percentile(times, 0.95)
        missed += p95 > target
        print(
            f"{url.replace(year, '<year>'):<66} {statistics.median(times):>8.1f} {p95:>8.1f} "
            f"{max(times):>8.1f}  {'ok' if p95 <= target else 'MISSED'} (p95 <= {target})"
        )
    return missed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--touches", type=int, default=1_000_000)
    parser.add_argument("--conversions", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--database-url", default="")
    parser.add_argument(
        "--prepared-database",
        default="",
        help="URL of a database this script prepared before (kept, e.g. a copy): skip step 1",
    )
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        default=None,
        help="a checkout of another commit to measure the same way, side by side",
    )
    parser.add_argument("--load-clients", type=int, default=2)
    parser.add_argument(
        "--rollup-seconds",
        type=float,
        default=3.0,
        help="under load, update the report aggregates this often (the product's default "
        "LEADRECORD_ROLLUP_SECONDS)",
    )
    parser.add_argument("--cached", action="store_true", help="also measure with the cache on")
    options = parser.parse_args()
    users = {"manager": "bench-manager", "marketer": "bench-marketer", "sales_rep": "bench-rep"}

    with ExitStack() as stack:
        if options.prepared_database:
            database = options.prepared_database
            manage(database, "migrate", "--no-input", "-v", "0")
            # An update (which rebuilds only when it must) keeps what the last run built.
            print(manage(database, "update_report_aggregates").strip())
        else:
            database, generated = generated_database(stack, options, "leadrecord_bench_reports")
            print(
                f"record: {options.contacts:,} contacts, {options.touches:,} touches, "
                f"{options.conversions:,} won deals ({generated:.1f} s)"
            )
            seconds, _, output = full_run(database)
            print(f"attribution: {output} ({seconds:.1f} s with the process)")
            print(manage(database, "rebuild_people_aggregates").strip())
            for role, username in users.items():
                manage(database, "add_user", username, "--role", role, "--password", PASSWORD)
            print(f"deals owned by the rep: {deals_to_rep(database, users['sales_rep']):,}")

        today = date.today()  # noqa: DTZ011 - the server's reporting zone is UTC here
        year = urllib.parse.urlencode(
            {"from": (today - timedelta(days=364)).isoformat(), "to": today.isoformat()}
        )
        api = [
            f"/api/v1/reports/contribution/?{year}",
            f"/api/v1/reports/funnel/?{year}",
            f"/api/v1/reports/attribution/?{year}&model=linear&group_by=channel",
            f"/api/v1/reports/attribution/models/?{year}&group_by=channel",
            f"/api/v1/reports/campaigns/?{year}&model=linear",
            f"/api/v1/reports/lifetime/?{year}",
        ]
        pages = [
            ("manager", f"/reports/manager/?{year}"),
            ("marketer", f"/reports/marketing/?{year}"),
            ("sales_rep", f"/reports/sales/?{year}"),
            ("manager", f"/reports/manager/?{year}&format=csv&table=campaigns"),
        ]
        rows = [("manager", url, API_TARGET_MS) for url in api] + [
            (role, url, PAGE_TARGET_MS) for role, url in pages
        ]
        trees = [("this tree", ROOT)]
        if options.baseline_tree is not None:
            trees.append(("baseline", options.baseline_tree.resolve()))
        missed = 0
        measured: dict[tuple[str, str], dict[str, list[float]]] = {}
        rates: dict[str, float] = {}
        header = (
            f"{options.requests} GETs per URL, one at a time, gunicorn with "
            f"{options.workers} workers (after {WARM_UP * options.workers} warm-up requests each)"
        )
        for number, (name, root) in enumerate(trees):
            if number:
                # The previous tree's ingest load left the aggregates behind the ledger:
                # each tree is measured from aggregates brought up to date, as the first is.
                print(manage(database, "update_report_aggregates").strip())
            if options.cached:
                with gunicorn(
                    database, workers=options.workers, root=root, REPORT_CACHE_SECONDS="3600"
                ) as (base, _):
                    openers = {role: logged_in(base, user) for role, user in users.items()}
                    cached = measure(base, openers, rows, options.requests, options.workers)
                print_table(f"{name}, cached: {header}", rows, year, cached)
            with gunicorn(
                database, workers=options.workers, root=root, REPORT_CACHE_SECONDS="0"
            ) as (base, _):
                openers = {role: logged_in(base, user) for role, user in users.items()}
                alone = measure(base, openers, rows, options.requests, options.workers)
                missed += print_table(f"{name}, cold (cache off): {header}", rows, year, alone)
                measured[(name, "alone")] = alone
                with ingest_load(
                    base,
                    database,
                    clients=options.load_clients,
                    prefix=f"load-{int(time.time())}-{number}",
                    root=root,
                    # Any tree that keeps the aggregates keeps them under load too.
                    update=(
                        root / "reports/management/commands/update_report_aggregates.py"
                    ).exists(),
                    every=options.rollup_seconds,
                ) as rate:
                    loaded = measure(base, openers, rows, options.requests, options.workers)
                    rates[name] = rate()
                missed += print_table(
                    f"{name}, cold, under ingest load ({options.load_clients} clients posting "
                    f"events/, {rates[name]:,.0f} events/s achieved): {header}",
                    rows,
                    year,
                    loaded,
                )
                measured[(name, "load")] = loaded
        if len(trees) > 1:
            print("\np95 ms, cold: this tree against the baseline")
            print(f"{'URL':<66} {'this':>8} {'loaded':>8} {'base':>8} {'loaded':>8}")
            for _, url, _ in rows:
                figures = [
                    percentile(measured[(name, mode)][url], 0.95)
                    for name, _ in trees
                    for mode in ("alone", "load")
                ]
                print(
                    f"{url.replace(year, '<year>'):<66} " + " ".join(f"{f:>8.1f}" for f in figures)
                )
            print(
                "ingest under the report load, events/s: "
                + ", ".join(f"{name} {rate:,.0f}" for name, rate in rates.items())
            )
        total = len(rows) * 2 * len(trees)
        print(f"\n{total - missed} of {total} cold measurements within their p95 target")


if __name__ == "__main__":
    main()
