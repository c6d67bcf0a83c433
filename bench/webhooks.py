"""Webhook benchmark: the outbox's cost to ingestion, delivery throughput and delay.

    .venv/bin/python bench/webhooks.py [--events 20000] [--single 1000] [--clients 2]
                                       [--workers 2] [--rounds 4] [--database-url postgres://...]
                                       [--database-prefix leadrecord_bench_webhooks]

1. Ingest overhead: ``bench/ingest.py``'s bulk and single requests (``POST events/``
   in batches of 500, ``POST touches/`` one touch each) through gunicorn with a Redis
   broker, as in production, on a fresh database without any webhook endpoint
   (base) and on one with an endpoint subscribed to ``touch.recorded`` (every event
   then also writes its outbox message). Rounds pair base and endpoint back to
   back, in alternating order (base first in odd rounds, endpoint first in even
   ones, so a drift of the machine's speed during the run favours neither); the
   best of each is compared, and so is the median of the rounds' own ratios
   (target: the endpoint's rates within 10 % of base).
   Each round also prints the CPU time the server side (gunicorn and PostgreSQL)
   spent per event and per request, and the least of each is compared: on a machine
   that runs other work meanwhile, the rates move with it, the CPU per event much
   less. No Celery worker runs in this part (the kicks wait in Redis): the figures
   are what the requests cost, as ``bench/ingest.py``'s are; delivery is part 2.
2. Delivery throughput: the endpoint's pending messages sent by one delivery run to
   a local receiver (a threaded ``http.server`` in its own process), against the
   same receiver's raw request rate from one client sending the same bodies over a
   kept-alive connection (target: at least 50 %).
3. Delivery delay: a Celery worker delivers while ``--events`` more events are
   ingested; the p50 and p95 of each message's first successful attempt after its
   commit.

Without ``--database-url`` a throwaway PostgreSQL cluster is started and removed;
``redis-server`` must be on the PATH (or named by LEADRECORD_BENCH_REDIS_SERVER).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from common import (
    ROOT,
    CpuMeter,
    free_port,
    fresh_database,
    gunicorn,
    integration_token,
    manage,
    postmaster_pid,
    product_env,
    throwaway_postgres,
)
from faults import redis_running
from ingest import BATCH, bulk, single

RECEIVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""

DELIVER = """
import time
from webhooks.delivery import deliveries_run
from webhooks.selectors import messages_pending_count
pending = messages_pending_count()
started = time.perf_counter()
made = deliveries_run(max_seconds=3600)
print("RESULT", pending, made, time.perf_counter() - started)
"""

DELAYS = """
from django.db.models import Min
from webhooks.models import Attempt
rows = (
    Attempt.objects.filter(status="succeeded")
    .values("message_id", "message__created_at")
    .annotate(first=Min("attempted_at"))
)
delays = sorted((row["first"] - row["message__created_at"]).total_seconds() for row in rows)
print("RESULT", len(delays), delays[len(delays) // 2], delays[int(len(delays) * 0.95)])
"""


PENDING = """
from webhooks.selectors import messages_pending_count
print("RESULT", messages_pending_count())
"""


@contextmanager
def receiver_running() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)])
    url = f"http://127.0.0.1:{port}/hooks"
    import urllib3

    deadline = time.monotonic() + 30
    while True:
        try:
            urllib3.request("POST", url, body=b"{}", retries=False)
            break
        except urllib3.exceptions.HTTPError:
            if time.monotonic() > deadline:
                raise SystemExit("the receiver did not come up") from None
            time.sleep(0.1)
    try:
        yield url
    finally:
        process.terminate()
        process.wait()


def raw_rate(url: str, count: int) -> float:
    """Requests per second from one client, one kept-alive connection, webhook-sized bodies."""
    import urllib3

    pool = urllib3.HTTPConnectionPool("127.0.0.1", int(url.split(":")[2].split("/")[0]), maxsize=1)
    body = json.dumps(
        {
            "type": "touch.recorded",
            "timestamp": "2026-11-01T12:00:00.000000+00:00",
            "data": {"touch": 1, "contact": 2, "channel": "web", "kind": "visit", "sequence": 1},
        }
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "webhook-id": "msg_" + "0" * 24,
        "webhook-timestamp": "1790000000",
        "webhook-signature": "v1," + "A" * 44,
    }
    started = time.perf_counter()
    for _ in range(count):
        pool.urlopen("POST", "/hooks", body=body, headers=headers, retries=False).read()
    return count / (time.perf_counter() - started)


def shell(database: str, code: str, **env: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=product_env(database, **env),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"manage.py shell failed:\n{done.stderr}")
    # The line the code printed, after whatever start-up warnings said.
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    return lines[-1].split()[1:] if lines else []


def endpoint_add(database: str, url: str) -> None:
    shell(
        database,
        "from webhooks.services import endpoint_create\n"
        "from leadrecord.ledger import Actor\n"
        f"endpoint_create(url={url!r}, event_types=['touch.recorded'], audience='marketing',"
        " actor=Actor.system('bench'))",
        WEBHOOKS_ALLOW_LOOPBACK="1",
    )


@dataclass(frozen=True)
class Round:
    bulk_rate: float  # events/s
    single_rate: float  # requests/s
    # CPU milliseconds of the server side (gunicorn and PostgreSQL) per event and per
    # request: what the outbox costs, less sensitive to what else the machine runs.
    bulk_cpu_ms: float
    single_cpu_ms: float


def _server_ms(cpu: dict[str, float], units: int) -> float:
    return sum(seconds for name, seconds in cpu.items() if name != "clients") * 1000 / units


def ingest_round(
    database: str, receiver: str | None, broker: str, options: argparse.Namespace
) -> Round:
    """Bulk events/s and single requests/s on a freshly migrated database."""
    manage(database, "migrate", "--no-input", "-v", "0")
    token = integration_token(database)
    if receiver:
        endpoint_add(database, receiver)
    env = {"CELERY_BROKER_URL": broker, "WEBHOOKS_ALLOW_LOOPBACK": "1"}
    people = max(1, options.events // 5)
    with gunicorn(database, workers=options.workers, **env) as (url, server):
        roots = {"gunicorn": server.pid}
        postmaster = postmaster_pid(database)
        if postmaster is not None:
            roots["PostgreSQL"] = postmaster
        meter = CpuMeter(roots)
        warm = BATCH * options.clients
        bulk(url, token, events=warm, clients=options.clients, people=people, prefix="warm")
        seconds, bulk_cpu = meter.measure(
            lambda: bulk(
                url,
                token,
                events=options.events,
                clients=options.clients,
                people=people,
                prefix="b",
            )
        )
        (done, single_rate), single_cpu = meter.measure(
            lambda: single(
                url, token, requests=options.single, clients=options.clients, people=people
            )
        )
    return Round(
        options.events / seconds,
        single_rate,
        _server_ms(bulk_cpu, options.events),
        _server_ms(single_cpu, done),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--single", type=int, default=1_000)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--database-url", default="")
    parser.add_argument(
        "--database-prefix",
        default="leadrecord_bench_webhooks",
        help="names of the databases created on --database-url's server (_base, _endpoint)",
    )
    options = parser.parse_args()

    with ExitStack() as stack:
        server = options.database_url or stack.enter_context(throwaway_postgres())
        broker = stack.enter_context(redis_running()).url
        receiver = stack.enter_context(receiver_running())

        # 1. The outbox's cost to ingestion, base and endpoint in turn.
        rounds: dict[str, list[Round]] = {"base": [], "endpoint": []}
        database = ""
        for number in range(options.rounds):
            order = ("base", "endpoint") if number % 2 == 0 else ("endpoint", "base")
            for label in order:
                last = label == "endpoint" and number == options.rounds - 1
                with ExitStack() as round_stack:
                    name = f"{options.database_prefix}_{label}"
                    # The last endpoint round's database stays for parts 2 and 3.
                    round_database = (stack if last else round_stack).enter_context(
                        fresh_database(server, name)
                    )
                    if last:
                        database = round_database
                    found = ingest_round(
                        round_database, receiver if label == "endpoint" else None, broker, options
                    )
                rounds[label].append(found)
                print(
                    f"round {number + 1} {label:8}  bulk {found.bulk_rate:8.0f} events/s "
                    f"({found.bulk_cpu_ms:.3f} server CPU ms each)   single "
                    f"{found.single_rate:6.0f} requests/s ({found.single_cpu_ms:.2f} ms each)",
                    flush=True,
                )
        best = {
            label: (max(r.bulk_rate for r in rows), max(r.single_rate for r in rows))
            for label, rows in rounds.items()
        }
        # Each round's own pair was measured minutes apart at most: the median of their
        # ratios moves least with whatever else the machine ran during the whole run.
        paired = [
            (
                e.bulk_rate / b.bulk_rate,
                e.single_rate / b.single_rate,
                e.bulk_cpu_ms / b.bulk_cpu_ms,
            )
            for b, e in zip(rounds["base"], rounds["endpoint"], strict=True)
        ]
        # The least CPU of each: the round least disturbed by whatever else ran.
        least = {
            label: (min(r.bulk_cpu_ms for r in rows), min(r.single_cpu_ms for r in rows))
            for label, rows in rounds.items()
        }
        print(
            f"ingest with one endpoint on touches: bulk {best['endpoint'][0] / best['base'][0]:.1%}"
            f" of base ({best['endpoint'][0]:.0f} vs {best['base'][0]:.0f} events/s), single "
            f"{best['endpoint'][1] / best['base'][1]:.1%} ({best['endpoint'][1]:.0f} vs "
            f"{best['base'][1]:.0f} requests/s)"
        )
        print(
            "server CPU per unit with the endpoint: bulk "
            f"{least['endpoint'][0] / least['base'][0]:.1%} of base ({least['endpoint'][0]:.3f}"
            f" vs {least['base'][0]:.3f} ms per event), single "
            f"{least['endpoint'][1] / least['base'][1]:.1%} ({least['endpoint'][1]:.2f} vs "
            f"{least['base'][1]:.2f} ms per request)"
        )

        print(
            "median of the rounds' own ratios: bulk "
            f"{statistics.median(p[0] for p in paired):.1%}, single "
            f"{statistics.median(p[1] for p in paired):.1%}, server CPU per event "
            f"{statistics.median(p[2] for p in paired):.1%} "
            f"(each round: {', '.join(f'{p[0]:.1%}' for p in paired)})"
        )

        # 2. Delivery throughput against the receiver's raw rate.
        pending, made, seconds = shell(database, DELIVER, WEBHOOKS_ALLOW_LOOPBACK="1")
        delivery_rate = int(made) / float(seconds)
        raw = raw_rate(receiver, min(int(made), 20_000))
        print(
            f"delivery   {made} of {pending} pending messages in {float(seconds):.1f} s: "
            f"{delivery_rate:.0f}/s; the receiver's raw rate {raw:.0f}/s; "
            f"delivery at {delivery_rate / raw:.0%} of it"
        )

        # 3. Delay under ingest load, a Celery worker delivering. The kicks part 1 queued
        # (no worker ran then) are dropped first: their messages were sent in part 2.
        subprocess.run(
            [sys.executable, "-m", "celery", "-A", "leadrecord", "purge", "-f"],
            cwd=ROOT,
            env=product_env(database, CELERY_BROKER_URL=broker),
            capture_output=True,
            check=True,
        )
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "leadrecord", "worker", "--pool=prefork",
             "--concurrency=1", "--loglevel=WARNING", "--without-gossip", "--without-mingle",
             "--without-heartbeat"],
            cwd=ROOT,
            env=product_env(database, CELERY_BROKER_URL=broker, WEBHOOKS_ALLOW_LOOPBACK="1"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            ping = [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "leadrecord",
                "inspect",
                "ping",
                "-t",
                "1",
            ]
            deadline = time.monotonic() + 120
            while subprocess.run(
                ping, cwd=ROOT, env=product_env(database, CELERY_BROKER_URL=broker),
                capture_output=True, check=False,
            ).returncode != 0:  # fmt: skip
                if time.monotonic() > deadline:
                    raise SystemExit("the Celery worker did not answer within 120 s")
            shell(database, "from webhooks.models import Attempt; Attempt.objects.all().delete()")
            token = integration_token(database, "bench-sync-2")
            env = {"CELERY_BROKER_URL": broker, "WEBHOOKS_ALLOW_LOOPBACK": "1"}
            with gunicorn(database, workers=options.workers, **env) as (url, _):
                people = max(1, options.events // 5)
                bulk(
                    url,
                    token,
                    events=options.events,
                    clients=options.clients,
                    people=people,
                    prefix="load",
                )
            deadline = time.monotonic() + 600
            while shell(database, PENDING)[0] != "0":
                if time.monotonic() > deadline:
                    raise SystemExit("messages still pending after 600 s")
                time.sleep(1)
        finally:
            worker.terminate()
            worker.wait()
        count, p50, p95 = shell(database, DELAYS)
        print(
            f"delay      {count} messages delivered by a Celery worker under ingest load: "
            f"p50 {float(p50):.2f} s, p95 {float(p95):.2f} s"
        )


if __name__ == "__main__":
    main()
