"""Buyer-side benchmark: form submissions and visits through gunicorn, against GET health/.

    .venv/bin/python bench/forms.py [--forms 3000] [--visits 5000] [--health 5000]
        [--rounds 5] [--clients 4] [--workers 4] [--database-url postgres://...]
        [--database-name ...]

1. Migrates a fresh database, makes a marketer and, through the API, a published
   form asking two disclosures and two consents (as a real one does).
2. Starts gunicorn (``--workers`` sync workers) on loopback, with the per-address
   rate limits lifted (every client here shares 127.0.0.1) and the minimum fill
   time off; everything else as in production.
3. ``--clients`` client processes each open the form once (for its timing field)
   and send their share of ``--forms`` submissions, each a new person with a
   disclosure to sales, a consent and UTM fields: each answer must be the thank-you
   page, and the people, touches and submissions are counted afterwards.
4. The same clients send ``--visits`` page views to ``POST /c/`` without a visitor
   id (the common case: a daily count), and ``--health`` requests to
   ``GET /api/v1/health/`` (no login, one query): the baseline of this machine,
   server and client for one small request.

The three kinds take turns in ``--rounds`` rounds (each a share of every count), so
that a shared machine's slow and fast spells fall on all three alike; each kind's
rate is its requests over its time summed across the rounds, and each round's
ratios are printed to show the spread. The client processes are started once,
before any timing.

Targets (issue 23): form submissions at least 25 % of the health rate, visits at
least 50 %.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import re
import time
import urllib.parse
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any
from urllib.parse import urlsplit

from common import fresh_database, gunicorn, manage, throwaway_postgres

FORM_TARGET = 0.25
VISIT_TARGET = 0.50
SLUG = "bench-demo-request"


def _connection(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)


def _request(
    url: str, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    connection = _connection(url)
    try:
        connection.request(method, path, body=body or None, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def form_create(url: str, token: str) -> None:
    body = {
        "slug": SLUG,
        "title": "Ask for a demo",
        "consents": [
            {"purpose": "marketing_email", "notice": "Send me news.", "version": "1"},
            {"purpose": "analytics", "notice": "Remember my visits.", "version": "1"},
        ],
        "disclosures": [
            {"key": "journey_stage", "label": "Where are you?"},
            {"key": "budget", "label": "Budget"},
        ],
    }
    status, answer = _request(
        url,
        "POST",
        "/api/v1/forms/",
        json.dumps(body).encode(),
        {"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    if status != 201:
        raise SystemExit(f"could not create the form: {status} {answer[:300]!r}")


def _form_client(job: tuple[str, int, int]) -> int:
    url, client, count = job
    run = time.monotonic_ns()  # new people on every run (a known email is the same person)
    status, page = _request(url, "GET", f"/f/{SLUG}/")
    timing = re.search(rb'name="lr_t" value="([^"]+)"', page)
    if status != 200 or timing is None:
        raise RuntimeError(f"the form page answered {status}")
    for number in range(count):
        body = urllib.parse.urlencode(
            {
                "lr_t": timing.group(1).decode(),
                "email": f"bench-{run}-{client}-{number}@buyers.example",
                "first_name": "Bench",
                "organization": f"Org {number % 50}",
                "journey_stage": "comparing",
                "journey_stage__audience": "all",
                "budget": "50k",
                "budget__audience": "sales",
                "consent_marketing_email": "on",
                "utm_source": "google",
                "utm_campaign": "bench",
                "page_url": f"https://www.buyers.example/demo?utm_campaign=bench&n={number}",
            }
        ).encode()
        status, answer = _request(
            url,
            "POST",
            f"/f/{SLUG}/",
            body,
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        if status != 200 or b"Thank you" not in answer:
            raise RuntimeError(f"a submission answered {status}: {answer[:200]!r}")
    return count


def _visit_client(job: tuple[str, int, int]) -> int:
    url, client, count = job
    for number in range(count):
        body = urllib.parse.urlencode(
            {
                "u": f"https://www.buyers.example/page-{number % 20}?utm_campaign=c{client}",
                "r": "https://search.example/",
            }
        ).encode()
        status, _ = _request(
            url, "POST", "/c/", body, {"Content-Type": "application/x-www-form-urlencoded"}
        )
        if status != 204:
            raise RuntimeError(f"a visit answered {status}")
    return count


def _health_client(job: tuple[str, int, int]) -> int:
    url, _, count = job
    for _ in range(count):
        status, _ = _request(url, "GET", "/api/v1/health/")
        if status != 200:
            raise RuntimeError(f"health/ answered {status}")
    return count


def in_clients(
    pool: Any, worker: Callable[[Any], int], url: str, total: int, clients: int
) -> tuple[int, float]:
    """``total`` requests shared by ``clients`` processes of ``pool``: how many were
    sent, and in how many seconds."""
    share = max(1, total // clients)
    started = time.perf_counter()
    done = sum(pool.map(worker, [(url, client, share) for client in range(clients)]))
    return done, time.perf_counter() - started


def stored(database_url: str) -> tuple[int, int, int]:
    import psycopg2

    with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:
        counts = []
        for table in ("contacts_contact", "contacts_touch", "buyers_formsubmission"):
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts.append(cursor.fetchone()[0])
        return counts[0], counts[1], counts[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--forms", type=int, default=3_000)
    parser.add_argument("--visits", type=int, default=5_000)
    parser.add_argument("--health", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--database-url", default="", help="a server to use (else a throwaway)")
    parser.add_argument("--database-name", default="leadrecord_bench_forms")
    options = parser.parse_args()

    with ExitStack() as stack:
        server = options.database_url or stack.enter_context(throwaway_postgres())
        database = stack.enter_context(fresh_database(server, options.database_name))
        manage(database, "migrate", "--no-input", "-v", "0")
        manage(database, "add_user", "bench-marketer", "--role", "marketer")
        token = manage(database, "issue_token", "bench-marketer").strip()
        url, _ = stack.enter_context(
            gunicorn(
                database,
                workers=options.workers,
                BUYER_FORM_RATE_LIMIT="100000000/hour",
                VISIT_RATE_LIMIT="100000000/hour",
                BUYER_FORM_MIN_SECONDS="0",
            )
        )
        form_create(url, token)
        pool = stack.enter_context(multiprocessing.Pool(options.clients))
        # Warm-up, not counted: each worker's first requests pay for imports.
        in_clients(pool, _form_client, url, options.clients * 50, options.clients)
        in_clients(pool, _visit_client, url, options.clients * 50, options.clients)
        in_clients(pool, _health_client, url, options.clients * 50, options.clients)
        before = stored(database)
        kinds = {"forms": _form_client, "visits": _visit_client, "health": _health_client}
        totals = {"forms": options.forms, "visits": options.visits, "health": options.health}
        sums = {kind: [0, 0.0] for kind in kinds}
        rounds = []
        for _ in range(options.rounds):
            rates = {}
            for kind, worker in kinds.items():
                sent, seconds = in_clients(
                    pool, worker, url, max(1, totals[kind] // options.rounds), options.clients
                )
                sums[kind][0] += sent
                sums[kind][1] += seconds
                rates[kind] = sent / seconds
            rounds.append(rates)
        after = stored(database)

    sent_forms = sums["forms"][0]
    people, touches, submissions = (b - a for a, b in zip(before, after, strict=True))
    if (people, touches, submissions) != (sent_forms, sent_forms, sent_forms):
        raise SystemExit(
            f"expected {sent_forms} people, touches and submissions; found {people}, "
            f"{touches}, {submissions}"
        )
    rate = {kind: count / seconds for kind, (count, seconds) in sums.items()}
    print(f"{options.clients} clients, gunicorn {options.workers} workers, {options.rounds} rounds")
    for number, rates in enumerate(rounds, 1):
        print(
            f"  round {number}: health {rates['health']:6.0f}/s, "
            f"forms {rates['forms'] / rates['health']:4.0%}, "
            f"visits {rates['visits'] / rates['health']:4.0%} of it"
        )
    form_rate, visit_rate, health_rate = rate["forms"], rate["visits"], rate["health"]
    print(f"GET health/     {health_rate:10.0f} requests/s (baseline)")
    print(
        f"form submission {form_rate:10.0f} /s   {form_rate / health_rate:6.1%} of health "
        f"(target {FORM_TARGET:.0%}): "
        f"{'ok' if form_rate >= FORM_TARGET * health_rate else 'MISSED'}"
    )
    print(
        f"visit           {visit_rate:10.0f} /s   {visit_rate / health_rate:6.1%} of health "
        f"(target {VISIT_TARGET:.0%}): "
        f"{'ok' if visit_rate >= VISIT_TARGET * health_rate else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
