"""Report endpoints and dashboard pages through gunicorn, on the attribution benchmark's record.

    .venv/bin/python bench/report_latency.py [--contacts 100000] [--touches 1000000]
        [--conversions 20000] [--seed 1] [--requests 200] [--workers 2]
        [--database-url postgres://...]

1. Generates the record as ``bench/attribution.py`` does (same ``generate()``,
   same seed, so the same rows), runs attribution as the product does
   (``manage.py recompute_attribution``), and gives one in ten deals to the
   benchmark's sales rep so the rep's dashboard has deals to show.
2. Starts gunicorn, logs in a manager, a marketer and a sales rep through the
   login form (a session cookie each, as a browser would), and sends
   ``--requests`` GETs, one after another, to each report API endpoint and each
   dashboard page, over the whole year of the record. Five warm-up requests per
   URL are not counted (each worker's first request pays for imports and empty
   caches).
3. Prints p50, p95 and the slowest request per URL, and checks each answered 200;
   then again with the report cache off (``REPORT_CACHE_SECONDS=0``): the cost
   of each request while the record changes between requests.

Targets (issue 7): p95 at most 150 ms for every report endpoint and 250 ms for
every page.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import re
import statistics
import time
import urllib.parse
import urllib.request
from contextlib import ExitStack
from datetime import date, timedelta

from attribution import full_run, generated_database
from common import gunicorn, manage

PASSWORD = "bench-only-password-0123"  # a throwaway database
WARM_UP = 5
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--touches", type=int, default=1_000_000)
    parser.add_argument("--conversions", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default="")
    parser.add_argument(
        "--prepared-database",
        default="",
        help="URL of a database this script prepared before (kept, e.g. a copy): skip step 1",
    )
    options = parser.parse_args()
    users = {"manager": "bench-manager", "marketer": "bench-marketer", "sales_rep": "bench-rep"}

    with ExitStack() as stack:
        if options.prepared_database:
            database = options.prepared_database
        else:
            database, generated = generated_database(stack, options, "leadrecord_bench_reports")
            print(
                f"record: {options.contacts:,} contacts, {options.touches:,} touches, "
                f"{options.conversions:,} won deals ({generated:.1f} s)"
            )
            seconds, _, output = full_run(database)
            print(f"attribution: {output} ({seconds:.1f} s with the process)")
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
        missed = 0
        # Twice: as served (reports cached per state of the record, so a quiet
        # record answers from the cache) and with the cache off, which is what
        # every request costs while the record changes between requests.
        for mode, cache_seconds in (("cached", "3600"), ("computed (cache off)", "0")):
            with gunicorn(
                database, workers=options.workers, REPORT_CACHE_SECONDS=cache_seconds
            ) as (base, _):
                openers = {role: logged_in(base, username) for role, username in users.items()}
                print(
                    f"\n{mode}: {options.requests} GETs per URL, one at a time, gunicorn with "
                    f"{options.workers} workers (after {WARM_UP} warm-up requests each)"
                )
                print(f"{'URL':<72} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  target")
                for role, url, target in rows:
                    opener = openers[role]
                    timed(opener, base + url, WARM_UP)
                    times = timed(opener, base + url, options.requests)
                    p95 = percentile(times, 0.95)
                    missed += p95 > target
                    shown = url.replace(year, "<year>")
                    print(
                        f"{shown:<72} {statistics.median(times):>8.1f} {p95:>8.1f} "
                        f"{max(times):>8.1f}  {'ok' if p95 <= target else 'MISSED'} "
                        f"(p95 <= {target})"
                    )
        rows = rows * 2
        print(f"\n{len(rows) - missed} of {len(rows)} URLs within their p95 target")


if __name__ == "__main__":
    main()
