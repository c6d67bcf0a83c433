"""Buyer-side benchmark: form submissions and visits through gunicorn, against GET health/.

    .venv/bin/python bench/forms.py [--forms 3000] [--visits 5000] [--health 5000]
        [--rounds 5] [--clients 4] [--workers 4] [--database-url postgres://...]
        [--database-name ...] [--baseline-tree PATH]

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
before any timing. Each kind's CPU per request is the whole machine's busy time
(server, database, clients and kernel) over its requests.

With ``--baseline-tree`` (a checkout of another commit, e.g. made by ``git worktree
add``), that tree is served too, on a database of its own, and the two take turns
within every round (which goes first alternates): both see the same spells of a
shared machine, which a comparison of separate runs cannot promise.

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
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from common import (
    ROOT,
    fresh_database,
    gunicorn,
    machine_cpu_seconds,
    manage,
    throwaway_postgres,
)

FORM_TARGET = 0.25
VISIT_TARGET = 0.50
SLUG = "bench-demo-request"


class _Connection(http.client.HTTPConnection):
    """A client connection that writes a request's headers and small body at once, as
    browsers and curl do; http.client writes them apart, which costs the server one more
    read and wake-up per form post that no browser would cause."""

    def _send_output(self, message_body: Any = None, encode_chunked: bool = False) -> None:
        if isinstance(message_body, bytes) and not encode_chunked:
            self._buffer.extend((b"", message_body))  # type: ignore[attr-defined]
            message = b"\r\n".join(self._buffer)  # type: ignore[attr-defined]
            del self._buffer[:]  # type: ignore[attr-defined]
            self.send(message)
            return
        super()._send_output(message_body, encode_chunked)  # type: ignore[misc]


def _connection(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return _Connection(parts.hostname or "127.0.0.1", parts.port, timeout=60)


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


class _Tally:
    """Requests, seconds and the machine's busy CPU seconds of one kind on one tree."""

    def __init__(self) -> None:
        self.sent = 0
        self.seconds = 0.0
        self.cpu = 0.0

    def add(self, sent: int, seconds: float, cpu: float) -> None:
        self.sent += sent
        self.seconds += seconds
        self.cpu += cpu

    @property
    def rate(self) -> float:
        return self.sent / self.seconds

    @property
    def cpu_ms(self) -> float:
        return self.cpu / self.sent * 1000


KINDS: dict[str, Callable[[Any], int]] = {
    "forms": _form_client,
    "visits": _visit_client,
    "health": _health_client,
}


def _serve(stack: ExitStack, server: str, name: str, workers: int, root: Path) -> tuple[str, str]:
    """A fresh database with a published form, served by ``root``'s gunicorn: the
    server's URL and the database's."""
    database = stack.enter_context(fresh_database(server, name))
    manage(database, "migrate", "--no-input", "-v", "0", root=root)
    manage(database, "add_user", "bench-marketer", "--role", "marketer", root=root)
    token = manage(database, "issue_token", "bench-marketer", root=root).strip()
    url, _ = stack.enter_context(
        gunicorn(
            database,
            workers=workers,
            root=root,
            BUYER_FORM_RATE_LIMIT="100000000/hour",
            VISIT_RATE_LIMIT="100000000/hour",
            BUYER_FORM_MIN_SECONDS="0",
        )
    )
    form_create(url, token)
    return url, database


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
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        default=None,
        help="a checkout of another commit, served beside this one and measured in turns",
    )
    options = parser.parse_args()
    trees = [("this tree", ROOT)]
    if options.baseline_tree is not None:
        trees.append(("baseline", options.baseline_tree.resolve()))
    totals = {"forms": options.forms, "visits": options.visits, "health": options.health}

    with ExitStack() as stack:
        server = options.database_url or stack.enter_context(throwaway_postgres())
        urls, databases = {}, {}
        for index, (tree, root) in enumerate(trees):
            name = f"{options.database_name}_{index}" if index else options.database_name
            urls[tree], databases[tree] = _serve(stack, server, name, options.workers, root)
        pool = stack.enter_context(multiprocessing.Pool(options.clients))
        # Warm-up, not counted: each worker's first requests pay for imports.
        for url in urls.values():
            for worker in KINDS.values():
                in_clients(pool, worker, url, options.clients * 50, options.clients)
        before = {tree: stored(databases[tree]) for tree in urls}
        tallies = {(tree, kind): _Tally() for tree in urls for kind in KINDS}
        rounds: list[dict[tuple[str, str], float]] = []
        for number in range(options.rounds):
            rates = {}
            # With a baseline, the trees take turns kind by kind, first one then the other.
            order = list(urls) if number % 2 == 0 else list(reversed(urls))
            for kind, worker in KINDS.items():
                for tree in order:
                    cpu = machine_cpu_seconds()
                    sent, seconds = in_clients(
                        pool,
                        worker,
                        urls[tree],
                        max(1, totals[kind] // options.rounds),
                        options.clients,
                    )
                    tallies[tree, kind].add(sent, seconds, machine_cpu_seconds() - cpu)
                    rates[tree, kind] = sent / seconds
            rounds.append(rates)
        after = {tree: stored(databases[tree]) for tree in urls}

    for tree in urls:
        sent_forms = tallies[tree, "forms"].sent
        made = tuple(b - a for a, b in zip(before[tree], after[tree], strict=True))
        if made != (sent_forms, sent_forms, sent_forms):
            raise SystemExit(
                f"{tree}: expected {sent_forms} people, touches and submissions; found {made}"
            )
    print(
        f"{options.clients} clients, gunicorn {options.workers} workers, {options.rounds} "
        f"rounds; CPU: the whole machine's busy time per request"
    )
    for tree in urls:
        health, forms, visits = (tallies[tree, kind] for kind in ("health", "forms", "visits"))
        print(f"{tree}:")
        for number, rates in enumerate(rounds, 1):
            print(
                f"  round {number}: health {rates[tree, 'health']:6.0f}/s, "
                f"forms {rates[tree, 'forms'] / rates[tree, 'health']:4.0%}, "
                f"visits {rates[tree, 'visits'] / rates[tree, 'health']:4.0%} of it"
            )
        print(
            f"  GET health/     {health.rate:8.0f} requests/s (baseline), "
            f"CPU {health.cpu_ms:.2f} ms"
        )
        for label, tally, target in (
            ("form submission", forms, FORM_TARGET),
            ("visit          ", visits, VISIT_TARGET),
        ):
            share = tally.rate / health.rate
            print(
                f"  {label} {tally.rate:8.0f} /s   {share:6.1%} of health "
                f"(target {target:.0%}): {'ok' if share >= target else 'MISSED'}, "
                f"CPU {tally.cpu_ms:.2f} ms"
            )


if __name__ == "__main__":
    main()
