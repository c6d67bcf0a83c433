"""Ingest benchmark: POST events/ through gunicorn on PostgreSQL, against COPY in the same run.

    .venv/bin/python bench/ingest.py [--events 100000] [--clients 4] [--workers 4]
                                     [--single 3000] [--database-url postgres://...]

1. Bulk: ``--events`` touch events (for a fifth as many people, created on
   first sight by email) are posted in batches of 500 by ``--clients``
   processes to gunicorn (``--workers`` sync workers) on loopback; every
   event's touch and ledger entry is written. Prints events/s.
2. Baseline: the same rows, as stored, loaded with PostgreSQL ``COPY`` into a
   fresh table of the same shape (columns, defaults, constraints, indexes).
   Prints rows/s and the bulk rate as a share of it.
3. Single: ``--single`` ``POST touches/`` requests, one touch each, from the
   same client processes. Prints requests/s, and as baselines from the same
   clients ``GET health/`` (no login, one query) and ``GET me/`` (what every
   authenticated API request pays: token, user and roles).

Each part also prints the CPU time it cost per event or request, by process
family (gunicorn and its workers, the PostgreSQL server with its background
processes, the client processes), and the rate that this machine's cores would
allow if that work kept all of them busy: a ceiling no tuning of concurrency
can pass, only less work per event.

Without ``--database-url`` a throwaway PostgreSQL cluster is started and
removed; with one, a database ``leadrecord_bench_ingest`` is created on that
server and dropped afterwards.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import multiprocessing
import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from common import (
    CpuMeter,
    fresh_database,
    gunicorn,
    integration_token,
    manage,
    postmaster_pid,
    throwaway_postgres,
)

BATCH = 500
CHANNELS = ("web", "email", "paid_search", "webinar", "content", "event")
KINDS = ("visit", "email_click", "visit", "webinar_attended", "download", "event_attended")
ANCHOR = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def touch_event(number: int, people: int, prefix: str) -> dict[str, object]:
    slot = number % len(CHANNELS)
    person = (number * 7919) % people
    return {
        "type": "touch",
        "source_system": "bench",
        "external_id": f"{prefix}-{number}",
        "occurred_at": (ANCHOR - timedelta(minutes=number % 500_000)).isoformat(),
        "contact": {"email": f"person{person}@org{person % 997}.example"},
        "channel": CHANNELS[slot],
        "kind": KINDS[slot],
    }


def _post(connection: http.client.HTTPConnection, path: str, body: bytes, token: str) -> dict:
    connection.request(
        "POST",
        path,
        body=body,
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    response = connection.getresponse()
    payload = response.read()
    if response.status >= 300:
        raise RuntimeError(f"{path}: {response.status} {payload[:300]!r}")
    return json.loads(payload)


def _bulk_client(job: tuple[str, str, list[tuple[int, int]], int, str]) -> int:
    """Post this client's batches (ranges of event numbers); returns events created."""
    url, token, ranges, people, prefix = job
    parts = urlsplit(url)
    created = 0
    for start, stop in ranges:
        events = [touch_event(n, people, prefix) for n in range(start, stop)]
        body = json.dumps({"events": events}).encode()
        connection = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=300
        )
        try:
            answer = _post(connection, "/api/v1/events/", body, token)
        finally:
            connection.close()
        created += answer["created"]
    return created


def _single_client(job: tuple[str, str, int, int, int]) -> int:
    url, token, first, count, people = job
    parts = urlsplit(url)
    for number in range(first, first + count):
        person = (number * 7919) % people
        body = json.dumps(
            {
                "contact_email": f"person{person}@org{person % 997}.example",
                "channel": "web",
                "kind": "visit",
                "source_system": "bench-single",
                "external_id": f"s-{number}",
            }
        ).encode()
        connection = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=60
        )
        try:
            _post(connection, "/api/v1/touches/", body, token)
        finally:
            connection.close()
    return count


def _get_client(job: tuple[str, str, str, int]) -> int:
    url, path, token, count = job
    parts = urlsplit(url)
    headers = {"Authorization": f"Token {token}"} if token else {}
    for _ in range(count):
        connection = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=60
        )
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{path}: {response.status}")
        finally:
            connection.close()
    return count


def gets(url: str, path: str, *, token: str = "", requests: int, clients: int) -> tuple[int, float]:
    """The same clients against a GET, for baselines: ``health/`` (no login, one
    indexed query) is the ceiling of this machine, server and client for one
    small request; ``me/`` adds what every API call pays (token, user, roles).
    Returns the requests made (a whole share per client) and their rate."""
    share = requests // clients
    done, seconds = _in_clients(_get_client, [(url, path, token, share)] * clients)
    return done, done / seconds


def _in_clients(worker: Callable[[Any], int], jobs: list) -> tuple[int, float]:
    """``worker`` over ``jobs``, a client process each: the sum of what they
    return and the seconds they took."""
    started = time.perf_counter()
    with multiprocessing.Pool(len(jobs)) as pool:
        total = sum(pool.map(worker, jobs))
    return total, time.perf_counter() - started


def _split(items: list, parts: int) -> list[list]:
    return [items[index::parts] for index in range(parts)]


def bulk(url: str, token: str, *, events: int, clients: int, people: int, prefix: str) -> float:
    ranges = [(start, min(start + BATCH, events)) for start in range(0, events, BATCH)]
    jobs = [(url, token, share, people, prefix) for share in _split(ranges, clients)]
    created, seconds = _in_clients(_bulk_client, jobs)
    if created != events:
        raise SystemExit(f"bulk: {created} of {events} events created")
    return seconds


def single(url: str, token: str, *, requests: int, clients: int, people: int) -> tuple[int, float]:
    """Returns the requests made (a whole share per client) and their rate."""
    share = requests // clients
    jobs = [(url, token, index * share, share, people) for index in range(clients)]
    done, seconds = _in_clients(_single_client, jobs)
    return done, done / seconds


def copy_baseline(database_url: str) -> tuple[int, float]:
    """COPY the stored touches into a fresh table of the same shape; rows and seconds."""
    import psycopg2

    with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:
        columns = (
            "contact_id, channel_id, campaign_id, kind, occurred_at, recorded_at, "
            "source_system, external_id, recorded_by_id"
        )
        buffer = io.StringIO()
        cursor.copy_expert(
            f"COPY (SELECT {columns} FROM contacts_touch ORDER BY id) TO STDOUT", buffer
        )
        rows = buffer.getvalue().count("\n")
        cursor.execute("DROP TABLE IF EXISTS bench_touch_copy")
        cursor.execute("CREATE TABLE bench_touch_copy (LIKE contacts_touch INCLUDING ALL)")
        connection.commit()
        buffer.seek(0)
        started = time.perf_counter()
        cursor.copy_expert(f"COPY bench_touch_copy ({columns}) FROM STDIN", buffer)
        connection.commit()
        seconds = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_touch_copy")
    return rows, seconds


def stored_counts(database_url: str) -> tuple[int, int]:
    import psycopg2

    with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM contacts_touch")
        touches = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM leadrecord_ledgerentry")
        entries = cursor.fetchone()[0]
    return touches, entries


def cpu_line(cpu: dict[str, float], units: int, unit: str) -> str:
    """CPU milliseconds per unit by process family, and the rate all cores would allow."""
    per_unit = {name: seconds * 1000 / units for name, seconds in cpu.items()}
    total = sum(per_unit.values())
    cores = os.cpu_count() or 1
    parts = ", ".join(f"{name} {ms:.3f}" for name, ms in per_unit.items())
    ceiling = f"{cores * 1000 / total:,.0f}" if total else "-"
    return (
        f"  CPU ms per {unit}: {parts}; all {total:.3f}; "
        f"{cores} cores busy all the time: at most {ceiling} {unit}s/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--single", type=int, default=3_000)
    parser.add_argument("--database-url", default="")
    options = parser.parse_args()
    people = max(1, options.events // 5)

    with ExitStack() as stack:
        server = options.database_url or stack.enter_context(throwaway_postgres())
        database = stack.enter_context(fresh_database(server, "leadrecord_bench_ingest"))
        manage(database, "migrate", "--no-input", "-v", "0")
        token = integration_token(database)
        url, server_process = stack.enter_context(gunicorn(database, workers=options.workers))
        roots = {"gunicorn": server_process.pid}
        postmaster = postmaster_pid(database)
        if postmaster is not None:  # a server on this machine
            roots["PostgreSQL"] = postmaster
        meter = CpuMeter(roots)

        # A warm-up batch per client: connections, imports, caches; not counted.
        bulk(
            url,
            token,
            events=BATCH * options.clients,
            clients=options.clients,
            people=people,
            prefix="warm",
        )
        touches_before, entries_before = stored_counts(database)
        seconds, bulk_cpu = meter.measure(
            lambda: bulk(
                url,
                token,
                events=options.events,
                clients=options.clients,
                people=people,
                prefix="bench",
            )
        )
        touches, entries = stored_counts(database)
        if touches - touches_before != options.events:
            raise SystemExit(
                f"expected {options.events} new touches, found {touches - touches_before}"
            )
        bulk_rate = options.events / seconds

        rows, copy_seconds = copy_baseline(database)
        copy_rate = rows / copy_seconds
        (health_requests, health_rate), health_cpu = meter.measure(
            lambda: gets(url, "/api/v1/health/", requests=options.single, clients=options.clients)
        )
        (me_requests, me_rate), me_cpu = meter.measure(
            lambda: gets(
                url, "/api/v1/me/", token=token, requests=options.single, clients=options.clients
            )
        )
        (single_requests, single_rate), single_cpu = meter.measure(
            lambda: single(
                url, token, requests=options.single, clients=options.clients, people=people
            )
        )

    print(
        f"bulk ingest  {options.events} touch events in batches of {BATCH}, "
        f"{options.clients} clients, gunicorn {options.workers} workers"
    )
    print(
        f"  {seconds:8.2f} s   {bulk_rate:10.0f} events/s   "
        f"({entries - entries_before} ledger entries written)"
    )
    print(cpu_line(bulk_cpu, options.events, "event"))
    print(f"COPY         {rows} rows of the same shape")
    print(f"  {copy_seconds:8.2f} s   {copy_rate:10.0f} rows/s")
    print(f"bulk / COPY  {bulk_rate / copy_rate:8.1%}")
    print(f"single POST touches/  {options.single} requests, {options.clients} clients")
    print(f"  {single_rate:10.0f} requests/s")
    print(cpu_line(single_cpu, single_requests, "request"))
    print(f"GET health/  {options.single} requests, the same clients (baseline, no login)")
    print(
        f"  {health_rate:10.0f} requests/s   "
        f"(single touches at {single_rate / health_rate:.0%} of it)"
    )
    print(cpu_line(health_cpu, health_requests, "request"))
    print(f"GET me/      {options.single} requests, the same clients (baseline, with the token)")
    print(f"  {me_rate:10.0f} requests/s   (single touches at {single_rate / me_rate:.0%} of it)")
    print(cpu_line(me_cpu, me_requests, "request"))


if __name__ == "__main__":
    main()
