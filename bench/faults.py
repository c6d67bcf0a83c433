"""Faults under load: gunicorn workers, Redis and the Celery worker killed while events pour in.

    .venv/bin/python bench/faults.py [--duration 60] [--clients 4] [--workers 3] [--batch 100]
        [--contacts 20000] [--touches 200000] [--conversions 4000] [--seed 1]
        [--redis-down 5] [--database-url postgres://...]

The long version of tests/reports/test_faults.py, on PostgreSQL, a throwaway
Redis (``redis-server`` on a free loopback port, no persistence, stopped
afterwards) and a real Celery worker process (``celery -A leadrecord worker``).

1. Setup: a generated record (``bench/attribution.py``'s ``generate``, so an
   attribution run takes seconds), a complete attribution run on it (timed,
   without load), Redis, the Celery worker and gunicorn (``--workers``).
2. Baseline: ``--clients`` processes post batches of ``--batch`` touch events
   (``POST events/``, unique external ids, an Idempotency-Key per batch) for
   ``--duration`` seconds. The same background work as in the fault phase is
   done, without faults: a ruleset is activated and an attribution run is
   requested through the API and completes. Prints events/s.
3. Faults: the same load and work for (at least) as long, while on a schedule
   a gunicorn worker is killed (``kill -9``, four times), Redis is stopped
   (a ruleset is activated while it is down) and started again, and the Celery
   worker is killed in the middle of an attribution run, then a new worker is
   started and the run requested again. Clients retry a batch that failed or
   got no answer (same body, same Idempotency-Key) until it is acknowledged.
4. Checks: every acknowledged event is stored exactly once (by external id,
   none missing, none twice), ``manage.py verify_ledger`` passes, the latest
   complete attribution run is whole (each model's credits sum to the revenue)
   and came after the killed run, which is marked failed and kept no credits.
   Prints events/s during faults against the baseline, the retries and how long
   each fault took to recover from; exits 1 if any check fails.

Without ``--database-url`` a throwaway PostgreSQL cluster is started and
removed; with one, a database ``leadrecord_bench_faults`` is created on that
server and dropped afterwards.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from attribution import generated_database
from common import (
    ROOT,
    free_port,
    gunicorn,
    integration_token,
    manage,
    product_env,
)

DATABASE = "leadrecord_bench_faults"
SOURCE = "faults"
PEOPLE = 2_000  # distinct senders in the load: new people at first, known ones after
ANCHOR = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
GIVE_UP_SECONDS = 180  # a batch unacknowledged this long counts as lost
REQUEST_TIMEOUT = 60
RETRY_PAUSE = 0.2
REVENUE_KINDS = ("won", "expansion", "renewal")
# reports.runs.RUN_LOCK_KEY, the attribution run's advisory lock. PostgreSQL shows a
# bigint key as two halves; the ledger's transaction locks are advisory too.
RUN_LOCK_KEY = 0x415454524942
MODELS = 8


# -- the load ------------------------------------------------------------------------------


@dataclass
class BatchRecord:
    """One batch as its client saw it (times are ``time.monotonic()``, one clock per machine)."""

    key: str
    external_ids: list[str]
    sent_at: float
    acked_at: float | None = None
    attempts: int = 0
    first_failure_at: float | None = None
    created: int = 0
    duplicate: int = 0
    rejected: int = 0
    replayed: bool = False
    error: str = ""


@dataclass
class ClientResult:
    client: int
    batches: list[BatchRecord]
    retries: int


def batch_body(phase: str, client: int, number: int, size: int) -> dict[str, Any]:
    events = []
    for index in range(size):
        serial = (client * 1_000_003 + number * size + index) * 7919
        person = serial % PEOPLE
        events.append(
            {
                "type": "touch",
                "source_system": SOURCE,
                "external_id": f"{phase}-c{client}-b{number}-e{index}",
                "occurred_at": (ANCHOR - timedelta(minutes=serial % 40_000)).isoformat(),
                "contact": {"email": f"load{person}@faults{person % 50}.example"},
                "channel": "web",
                "kind": "visit",
            }
        )
    return {"events": events}


def _post(url: str, path: str, token: str, body: bytes, key: str = "") -> tuple[int, bool, Any]:
    """One POST on a fresh connection: status, whether the answer was a replay, the body."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port, timeout=REQUEST_TIMEOUT
    )
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        replayed = response.getheader("Idempotent-Replayed") == "true"
        try:
            answer = json.loads(payload or b"null")
        except ValueError:
            answer = payload[:300].decode(errors="replace")
        return response.status, replayed, answer
    finally:
        connection.close()


def client_main(
    url: str,
    token: str,
    phase: str,
    client: int,
    size: int,
    stop: Any,
    results: Any,
) -> None:
    """Post batches until told to stop; each one is retried until it is acknowledged."""
    batches: list[BatchRecord] = []
    retries = 0
    number = 0
    while not stop.is_set():
        body = batch_body(phase, client, number, size)
        encoded = json.dumps(body).encode()
        record = BatchRecord(
            key=f"{phase}-c{client}-b{number}",
            external_ids=[event["external_id"] for event in body["events"]],
            sent_at=time.monotonic(),
        )
        while True:
            record.attempts += 1
            try:
                status, replayed, answer = _post(url, "/api/v1/events/", token, encoded, record.key)
            except (OSError, http.client.HTTPException) as error:
                status, replayed, answer = 0, False, f"{type(error).__name__}: {error}"
            if status == 200:
                record.acked_at = time.monotonic()
                record.created = int(answer["created"])
                record.duplicate = int(answer["duplicate"])
                record.rejected = int(answer["rejected"])
                record.replayed = replayed
                break
            if 400 <= status < 500:
                # A refusal is not a fault to wait out: the same body would be refused again.
                record.error = f"{status} {str(answer)[:300]}"
                break
            retries += 1
            if record.first_failure_at is None:
                record.first_failure_at = time.monotonic()
            if time.monotonic() - record.sent_at > GIVE_UP_SECONDS:
                record.error = f"unacknowledged after {GIVE_UP_SECONDS} s: {str(answer)[:300]}"
                break
            time.sleep(RETRY_PAUSE)
        batches.append(record)
        number += 1
    results.put(ClientResult(client, batches, retries))


@dataclass
class Load:
    phase: str
    batch_size: int
    started: float
    stopped: float = 0.0
    clients: list[ClientResult] = field(default_factory=list)

    @property
    def batches(self) -> list[BatchRecord]:
        return [batch for client in self.clients for batch in client.batches]

    @property
    def seconds(self) -> float:
        return self.stopped - self.started

    def acked_events(self, start: float, stop: float) -> int:
        return sum(
            len(batch.external_ids)
            for batch in self.batches
            if batch.acked_at is not None and start <= batch.acked_at <= stop
        )

    @property
    def rate(self) -> float:
        return self.acked_events(self.started, self.stopped) / self.seconds

    @property
    def retries(self) -> int:
        return sum(client.retries for client in self.clients)


@contextmanager
def load_running(
    url: str, token: str, *, phase: str, clients: int, batch_size: int
) -> Iterator[Load]:
    """``clients`` processes posting batches while the block runs; their records after it."""
    stop = multiprocessing.Event()
    results: Any = multiprocessing.Queue()
    processes = [
        multiprocessing.Process(
            target=client_main,
            args=(url, token, phase, client, batch_size, stop, results),
            daemon=True,
        )
        for client in range(clients)
    ]
    for process in processes:
        process.start()
    load = Load(phase=phase, batch_size=batch_size, started=time.monotonic())
    try:
        yield load
    finally:
        stop.set()
        load.stopped = time.monotonic()
        deadline = time.monotonic() + GIVE_UP_SECONDS + 2 * REQUEST_TIMEOUT
        while len(load.clients) < clients and time.monotonic() < deadline:
            with suppress(queue.Empty):
                load.clients.append(results.get(timeout=1))
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
        if len(load.clients) < clients:
            raise SystemExit(f"{phase}: {clients - len(load.clients)} clients never reported")
        load.clients.sort(key=lambda result: result.client)


# -- the services --------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    listed = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    return [int(child) for child in listed]


def _wait_for(condition: Callable[[], bool], what: str, seconds: float) -> float:
    """Poll until ``condition()``; returns the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            raise SystemExit(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - started


class ThrowawayRedis:
    """``redis-server`` on a free loopback port, without persistence; stop and start at will."""

    def __init__(self, folder: str) -> None:
        server = os.environ.get("LEADRECORD_BENCH_REDIS_SERVER") or shutil.which("redis-server")
        if not server:
            raise SystemExit(
                "bench/faults.py needs redis-server on the PATH (Debian: apt-get install "
                "redis-server) or its path in LEADRECORD_BENCH_REDIS_SERVER"
            )
        self.server, self.folder, self.port = server, folder, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def up(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.2).ping())
        except redis.ConnectionError:
            return False

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.server, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", self.folder],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_for(self.up, "Redis to start", 30)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


@contextmanager
def redis_running() -> Iterator[ThrowawayRedis]:
    with tempfile.TemporaryDirectory(prefix="leadrecord-bench-redis-") as folder:
        server = ThrowawayRedis(folder)
        server.start()
        try:
            yield server
        finally:
            server.stop()


_celery_app: Any = None


def worker_answers(broker: str) -> bool:
    """Whether a Celery worker answers a ping, over a fresh broker connection."""
    global _celery_app
    from celery import Celery
    from kombu.exceptions import OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError

    if _celery_app is None:
        _celery_app = Celery("bench-faults", broker=broker)
    try:
        with _celery_app.connection_for_write() as connection:
            return bool(_celery_app.control.ping(timeout=0.5, connection=connection))
    except (OSError, OperationalError, RedisConnectionError):
        return False


class CeleryWorkers:
    """The Celery worker process (one at a time: a killed one is replaced by a new one)."""

    def __init__(self, database_url: str, broker: str, log: Path) -> None:
        self.database_url, self.broker, self.log = database_url, broker, log
        self.process: subprocess.Popen[bytes] | None = None

    def _failed(self, why: str) -> SystemExit:
        tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
        return SystemExit(f"{why}; the end of its log ({self.log}):\n{tail}")

    def start(self) -> float:
        """Start a worker; returns the seconds until it answered a ping."""
        started = time.monotonic()
        with self.log.open("ab") as log:  # its banner and reconnection notices, out of the way
            process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "leadrecord", "worker", "--pool=prefork",
                 "--concurrency=1", "--loglevel=WARNING", "--without-gossip", "--without-mingle",
                 "--without-heartbeat"],
                cwd=ROOT,
                env=product_env(
                    self.database_url, CELERY_BROKER_URL=self.broker, CONN_MAX_AGE="0"
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.process = process
        while not worker_answers(self.broker):
            if process.poll() is not None:
                raise self._failed(f"the Celery worker exited with {process.returncode}")
            if time.monotonic() - started > 90:
                raise self._failed("the Celery worker did not answer within 90 s")
        return time.monotonic() - started

    def kill(self) -> None:
        """``kill -9`` the worker and its pool processes, as a crash would."""
        assert self.process is not None
        for pid in [self.process.pid, *_children(self.process.pid)]:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None


# -- the record ----------------------------------------------------------------------------


class Record:
    """Reads of the benchmark's database, on a connection of its own."""

    def __init__(self, database_url: str) -> None:
        import psycopg2

        self.connection = psycopg2.connect(database_url)
        self.connection.autocommit = True

    def one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        return None if row is None else row[0]

    def all(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def run_status(self, run_id: int) -> str:
        return str(self.one("SELECT status FROM reports_attributionrun WHERE id = %s", (run_id,)))

    def latest_complete_run(self) -> int | None:
        found = self.one(
            "SELECT max(id) FROM reports_attributionrun WHERE status = 'complete'",
        )
        return None if found is None else int(found)

    def run_lock_held(self) -> bool:
        """Whether a session holds the attribution run's lock in this database."""
        return bool(
            self.one(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                "WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database() "
                "AND l.classid::bigint = %s AND l.objid::bigint = %s AND l.objsubid = 1",
                (RUN_LOCK_KEY >> 32, RUN_LOCK_KEY & 0xFFFFFFFF),
            )
        )

    def close(self) -> None:
        self.connection.close()


def unloaded_run(database_url: str) -> float:
    """A full run by ``manage.py recompute_attribution``, without load; its seconds."""
    started = time.monotonic()
    manage(database_url, "recompute_attribution")
    return time.monotonic() - started


# -- the phases ----------------------------------------------------------------------------


@dataclass
class Fault:
    kind: str
    at: float  # monotonic
    detail: dict[str, Any] = field(default_factory=dict)


class Bench:
    def __init__(
        self,
        *,
        url: str,
        gunicorn_master: subprocess.Popen[bytes],
        gunicorn_workers: int,
        integration: str,
        manager: str,
        record: Record,
        redis: ThrowawayRedis,
        celery: CeleryWorkers,
        unloaded_run_seconds: float,
        redis_down: float,
    ) -> None:
        self.url, self.master, self.gunicorn_workers = url, gunicorn_master, gunicorn_workers
        self.integration, self.manager = integration, manager
        self.record, self.redis, self.celery = record, redis, celery
        self.unloaded_run_seconds, self.redis_down = unloaded_run_seconds, redis_down
        self.faults: list[Fault] = []
        self.notes: list[str] = []
        self.doomed_run: int | None = None
        self.rulesets = 0

    def call(self, path: str, body: Any = None) -> Any:
        """POST as the manager; a non-2xx answer stops the benchmark."""
        status, _, answer = _post(
            self.url, path, self.manager, json.dumps(body).encode() if body is not None else b""
        )
        if not 200 <= status < 300:
            raise SystemExit(f"POST {path}: {status} {answer}")
        return answer

    def worker_pids(self) -> list[int]:
        return _children(self.master.pid)

    # Background work, the same in both phases.

    def ruleset_draft(self) -> int:
        self.rulesets += 1
        draft = self.call(
            "/api/v1/rulesets/",
            {"name": f"bench faults {self.rulesets}", "points": {"channel:web": 1},
             "mql_threshold": 500, "sla_hours": 24},
        )  # fmt: skip
        return int(draft["id"])

    def ruleset_activate(self, ruleset: int) -> float:
        started = time.monotonic()
        answer = self.call(f"/api/v1/rulesets/{ruleset}/activate/")
        if answer["status"] != "active":
            raise SystemExit(f"ruleset {ruleset} is {answer['status']} after activation")
        return time.monotonic() - started

    def run_request(self) -> int:
        return int(self.call("/api/v1/attribution/runs/")["id"])

    def run_timeout(self) -> float:
        return 20 * self.unloaded_run_seconds + 120

    # Faults.

    def busy_workers(self) -> list[int]:
        """The gunicorn workers holding a client's connection now: those mid-request."""
        if shutil.which("ss") is None:
            return []
        port = urlsplit(self.url).port
        listed = subprocess.run(
            ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        workers = set(self.worker_pids())
        return sorted(workers & {int(pid) for pid in re.findall(r"pid=(\d+)", listed)})

    def gunicorn_worker_kill(self, turn: int) -> None:
        """Kill a worker in the middle of a request (any worker if none is seen busy)."""
        deadline = time.monotonic() + 2
        while not (busy := self.busy_workers()) and time.monotonic() < deadline:
            time.sleep(0.01)
        pids = busy or self.worker_pids()
        victim = pids[turn % len(pids)]
        at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        replaced = _wait_for(
            lambda: victim not in (now := self.worker_pids()) and len(now) == self.gunicorn_workers,
            "gunicorn to replace its worker",
            60,
        )
        self.faults.append(
            Fault("gunicorn", at, {"pid": victim, "replaced": replaced, "busy": bool(busy)})
        )
        print(f"  kill -9 gunicorn worker {victim}{' mid-request' if busy else ''}", flush=True)

    def redis_outage(self) -> None:
        ruleset = self.ruleset_draft()
        at = time.monotonic()
        self.redis.stop()
        activation = self.ruleset_activate(ruleset)  # needs the broker: rescores in process
        time.sleep(max(0.0, self.redis_down - (time.monotonic() - at)))
        back = time.monotonic()
        self.redis.start()
        worker_back = _wait_for(
            lambda: worker_answers(self.redis.url), "the Celery worker after Redis", 120
        )
        self.faults.append(
            Fault(
                "redis",
                at,
                {
                    "down": back - at,
                    "back": back,
                    "activation": activation,
                    "worker_back": time.monotonic() - back,
                    "worker_wait": worker_back,
                },
            )
        )
        print(f"  Redis stopped for {back - at:.1f} s, a ruleset activated meanwhile", flush=True)

    def celery_kill_mid_run(self) -> None:
        requested = time.monotonic()
        doomed = self.run_request()
        self.doomed_run = doomed
        _wait_for(
            lambda: self.record.run_status(doomed) == "running",
            f"run #{doomed} to start",
            self.run_timeout(),
        )
        running_at = time.monotonic()
        time.sleep(max(0.5, 0.4 * self.unloaded_run_seconds))
        at = time.monotonic()
        self.celery.kill()
        status_at_kill = self.record.run_status(doomed)
        print(
            f"  kill -9 the Celery worker {at - running_at:.1f} s into run #{doomed} "
            f"({status_at_kill})",
            flush=True,
        )
        lock_freed = _wait_for(
            lambda: not self.record.run_lock_held(), "the dead run's lock to be released", 120
        )
        worker_up = self.celery.start()
        self.run_request()  # re-sends the unfinished run: a new one replaces it
        _wait_for(
            lambda: (latest := self.record.latest_complete_run()) is not None and latest > doomed,
            "a complete run after the killed one",
            self.run_timeout(),
        )
        replacement = self.record.latest_complete_run()
        done = time.monotonic()
        self.faults.append(
            Fault(
                "celery",
                at,
                {
                    "run": doomed,
                    "into_run": at - running_at,
                    "queued_for": running_at - requested,
                    "status_at_kill": status_at_kill,
                    "lock_freed": lock_freed,
                    "worker_up": worker_up,
                    "replacement": replacement,
                    "complete_after": done - at,
                },
            )
        )
        print(f"  run #{replacement} complete after the killed run #{doomed}", flush=True)

    # Phases.

    def phase(
        self,
        name: str,
        *,
        duration: float,
        clients: int,
        batch: int,
        faults: bool,
        background: bool = True,
    ) -> Load:
        """``duration`` seconds of load (longer if its work is not done by then)."""
        print(f"{name}: {duration:.0f} s of load{' with faults' if faults else ''}...", flush=True)
        with load_running(
            self.url, self.integration, phase=name, clients=clients, batch_size=batch
        ) as load:

            def at(share: float) -> None:
                time.sleep(max(0.0, load.started + share * duration - time.monotonic()))

            if faults:
                for turn, share in enumerate((0.10, 0.20, 0.30)):
                    at(share)
                    self.gunicorn_worker_kill(turn)
                at(0.40)
                self.redis_outage()
                at(0.55)
                self.celery_kill_mid_run()
                at(0.90)
                self.gunicorn_worker_kill(3)
            elif background:
                at(0.40)
                activation = self.ruleset_activate(self.ruleset_draft())
                at(0.55)
                requested = time.monotonic()
                run = self.run_request()
                _wait_for(
                    lambda: self.record.run_status(run) == "complete",
                    f"run #{run} to complete",
                    self.run_timeout(),
                )
                self.notes.append(
                    f"ruleset activated in {activation:.2f} s (rescored by the worker); "
                    f"attribution run #{run} complete {time.monotonic() - requested:.1f} s "
                    "after it was requested"
                )
            at(1.0)
        return load


# -- the report ----------------------------------------------------------------------------


def fault_lines(bench: Bench, load: Load) -> list[str]:
    """Each fault and how long it took to recover from."""
    batches = load.batches
    lines = []
    for index, fault in enumerate(bench.faults):
        when = f"t={fault.at - load.started:6.1f} s"
        until = bench.faults[index + 1].at if index + 1 < len(bench.faults) else load.stopped
        after = [b.acked_at for b in batches if b.acked_at is not None and b.acked_at > fault.at]
        next_ack = f"{min(after) - fault.at:.2f} s" if after else "none"
        hit = [
            b
            for b in batches
            if b.first_failure_at is not None and fault.at <= b.first_failure_at < until
        ]
        hit_acked = [b.acked_at for b in hit if b.acked_at is not None]
        if hit and len(hit_acked) == len(hit):
            interrupted = (
                f"{len(hit)} batch(es) interrupted, all acknowledged "
                f"{max(hit_acked) - fault.at:.2f} s after the fault"
            )
        elif hit:
            interrupted = f"{len(hit) - len(hit_acked)} of {len(hit)} interrupted batches LOST"
        else:
            interrupted = "no batch interrupted"
        detail = fault.detail
        if fault.kind == "gunicorn":
            lines.append(
                f"  {when}  kill -9 gunicorn worker {detail['pid']}"
                f"{' (mid-request)' if detail['busy'] else ''}: {interrupted}; next "
                f"acknowledgement {next_ack}; replaced by the master in "
                f"{detail['replaced']:.2f} s"
            )
        elif fault.kind == "redis":
            during = load.acked_events(fault.at, detail["back"])
            lines.append(
                f"  {when}  Redis stopped for {detail['down']:.1f} s: a ruleset activated "
                f"meanwhile answered in {detail['activation']:.2f} s (rescored in process); "
                f"{during:,} events acknowledged while Redis was down; {interrupted}; the "
                f"Celery worker answered again {detail['worker_back']:.2f} s after Redis was back"
            )
        else:
            lines.append(
                f"  {when}  kill -9 the Celery worker {detail['into_run']:.1f} s into "
                f"attribution run #{detail['run']} ({detail['status_at_kill']} at the kill): "
                f"its lock released after {detail['lock_freed']:.2f} s, a new worker answered "
                f"after {detail['worker_up']:.2f} s more, run #{detail['replacement']} complete "
                f"{detail['complete_after']:.1f} s after the kill; {interrupted}"
            )
    return lines


@dataclass
class Check:
    ok: bool
    text: str


def run_intact(record: Record, run: int, doomed: int) -> Check:
    """Whether each model's credits in ``run`` sum to the revenue it had to share out.

    That revenue is computed here from the record, not the engine: every sale
    event with an amount whose buying group has a touch within the run's
    lookback before it (run_input's definition; the bench has no withdrawn
    consent). Each credited conversion's credits must also sum to its amount.
    """
    lookback = int(
        record.one("SELECT lookback_days FROM reports_attributionrun WHERE id = %s", (run,))
    )
    revenue, conversions, everything = record.all(
        "SELECT coalesce(sum(s.amount) FILTER (WHERE has_path), 0), "
        "count(*) FILTER (WHERE has_path), coalesce(sum(s.amount), 0) FROM ("
        "  SELECT s.*, EXISTS (SELECT 1 FROM handoff_dealcontact m "
        "    JOIN contacts_touch t ON t.contact_id = m.contact_id "
        "    WHERE m.deal_id = s.deal_id AND t.occurred_at < s.occurred_at "
        "    AND t.occurred_at >= s.occurred_at - make_interval(days => %s)) AS has_path "
        "  FROM handoff_saleevent s WHERE s.kind = ANY(%s) AND s.amount > 0) s",
        (lookback, list(REVENUE_KINDS)),
    )[0]
    revenue, everything = float(revenue), float(everything)
    sums = dict(
        record.all(
            "SELECT model, sum(credit) FROM reports_attributioncredit WHERE run_id = %s "
            "GROUP BY model ORDER BY model",
            (run,),
        )
    )
    off = {model: total for model, total in sums.items() if abs(total - revenue) > 1e-6 * revenue}
    uneven = int(
        record.one(
            "SELECT count(*) FROM (SELECT model, sale_event_id, sum(credit) AS credit "
            "  FROM reports_attributioncredit WHERE run_id = %s GROUP BY 1, 2) c "
            "JOIN handoff_saleevent s ON s.id = c.sale_event_id "
            "WHERE abs(c.credit - CAST(s.amount AS float)) > 1e-6 * CAST(s.amount AS float)",
            (run,),
        )
    )
    return Check(
        run > doomed and len(sums) == MODELS and not off and not uneven,
        f"latest complete run #{run} (the killed run was #{doomed}): {len(sums)} models, each "
        f"summing to {revenue:,.2f}, the revenue of the {conversions:,} conversions with a touch "
        f"in the {lookback}-day lookback (of {everything:,.2f} in all); {uneven} "
        "(model, conversion) credits not summing to the conversion's amount"
        + (f"; off: {off}" if off else ""),
    )


def checks_run(database_url: str, record: Record, loads: list[Load], bench: Bench) -> list[Check]:
    checks: list[Check] = []
    batches = [batch for load in loads for batch in load.batches]
    acked = [batch for batch in batches if batch.acked_at is not None]
    unacked = [batch for batch in batches if batch.acked_at is None]
    acked_ids = {external_id for batch in acked for external_id in batch.external_ids}
    sent_ids = {external_id for batch in batches for external_id in batch.external_ids}
    rows = record.all(
        "SELECT external_id, count(*) FROM contacts_touch WHERE source_system = %s "
        "GROUP BY external_id",
        (SOURCE,),
    )
    stored = {external_id: count for external_id, count in rows}
    twice = sum(1 for count in stored.values() if count > 1)
    missing = len(acked_ids - stored.keys())
    unknown = len(stored.keys() - sent_ids)
    examples = "; ".join(sorted({batch.error for batch in unacked})[:3])
    checks.append(
        Check(
            not unacked and not twice and not missing and not unknown,
            f"every acknowledged event stored exactly once: {len(acked_ids):,} events in "
            f"{len(acked):,} batches, {sum(stored.values()):,} stored; {twice} twice, "
            f"{missing} missing, {unknown} never sent, {len(unacked)} batches unacknowledged"
            + (f" ({examples})" if examples else ""),
        )
    )
    whole = all(b.created + b.duplicate == len(b.external_ids) and not b.rejected for b in acked)
    created = sum(batch.created for batch in acked)
    duplicate = sum(batch.duplicate for batch in acked)
    replayed = sum(1 for batch in acked if batch.replayed)
    checks.append(
        Check(
            whole,
            f"answers: {created:,} events created, {duplicate:,} reported duplicate, "
            f"{replayed} batches replayed by their Idempotency-Key (stored before the answer "
            "was lost)",
        )
    )
    try:
        ledger = manage(database_url, "verify_ledger").strip()
        checks.append(Check(True, f"manage.py verify_ledger: {ledger}"))
    except SystemExit as failure:
        checks.append(Check(False, f"manage.py verify_ledger: {failure}"))

    latest = record.latest_complete_run()
    doomed = bench.doomed_run
    if latest is None or doomed is None:
        checks.append(Check(False, f"no complete run ({latest}) or no killed run ({doomed})"))
        return checks
    checks.append(run_intact(record, latest, doomed))
    status = record.run_status(doomed)
    error = record.one("SELECT error FROM reports_attributionrun WHERE id = %s", (doomed,))
    own_credits = int(
        record.one("SELECT count(*) FROM reports_attributioncredit WHERE run_id = %s", (doomed,))
    )
    killed_mid_run = bench.faults and any(
        fault.kind == "celery" and fault.detail["status_at_kill"] == "running"
        for fault in bench.faults
    )
    checks.append(
        Check(
            status == "failed" and own_credits == 0 and bool(killed_mid_run),
            f"killed run #{doomed}: {status} ({error!r}), {own_credits} credits of its own, "
            + ("killed while running" if killed_mid_run else "NOT running when killed"),
        )
    )
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60, help="seconds of load per phase")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers")
    parser.add_argument("--batch", type=int, default=100, help="events per batch")
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--touches", type=int, default=200_000)
    parser.add_argument("--conversions", type=int, default=4_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--redis-down", type=float, default=5, help="seconds Redis stays down")
    parser.add_argument("--database-url", default="")
    options = parser.parse_args()
    if options.workers < 2:
        parser.error("--workers: give at least 2 (one is killed while the others serve)")

    with ExitStack() as stack:
        database, generated = generated_database(stack, options, DATABASE)
        integration = integration_token(database)
        manage(database, "add_user", "bench-manager", "--role", "manager")
        manager = manage(database, "issue_token", "bench-manager").strip()
        unloaded = unloaded_run(database)
        print(
            f"record: {options.contacts:,} contacts, {options.touches:,} touches, "
            f"{options.conversions:,} won deals (loaded in {generated:.1f} s); "
            f"an attribution run without load: {unloaded:.1f} s",
            flush=True,
        )
        record = Record(database)
        stack.callback(record.close)

        with ExitStack() as services:
            redis = services.enter_context(redis_running())
            celery = CeleryWorkers(database, redis.url, Path(redis.folder) / "celery-worker.log")
            services.callback(celery.stop)
            celery.start()
            url, master = services.enter_context(
                gunicorn(database, workers=options.workers, CELERY_BROKER_URL=redis.url)
            )
            print(
                f"load: {options.clients} client processes, batches of {options.batch} touch "
                f"events, gunicorn {options.workers} workers, a Celery worker (concurrency 1), "
                f"Redis on port {redis.port}",
                flush=True,
            )
            bench = Bench(
                url=url,
                gunicorn_master=master,
                gunicorn_workers=options.workers,
                integration=integration,
                manager=manager,
                record=record,
                redis=redis,
                celery=celery,
                unloaded_run_seconds=unloaded,
                redis_down=options.redis_down,
            )
            shape = {"clients": options.clients, "batch": options.batch}
            warm = bench.phase("warm-up", duration=3, faults=False, background=False, **shape)
            baseline = bench.phase("baseline", duration=options.duration, faults=False, **shape)
            faulted = bench.phase("faults", duration=options.duration, faults=True, **shape)

        checks = checks_run(database, record, [warm, baseline, faulted], bench)

    print()
    for name, load in (("baseline (no faults)", baseline), ("faults", faulted)):
        print(
            f"{name:21} {load.seconds:6.1f} s  "
            f"{load.acked_events(load.started, load.stopped):9,} events acknowledged  "
            f"{load.rate:7.0f} events/s  {load.retries:4} retries"
        )
    for note in bench.notes:
        print(f"  baseline: {note}")
    print(f"events/s during faults / baseline: {faulted.rate / baseline.rate:.0%}")
    print(f"retries (a batch re-sent with the same Idempotency-Key): {faulted.retries}")
    print("faults and recovery:")
    for line in fault_lines(bench, faulted):
        print(line)
    print("checks:")
    for check in checks:
        print(f"  {'ok  ' if check.ok else 'FAIL'}  {check.text}")
    if not all(check.ok for check in checks):
        sys.exit(1)


if __name__ == "__main__":
    main()
