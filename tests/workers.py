"""A real Celery worker process, against the suite's Redis and test database."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import redis.exceptions
from django.db import connection
from kombu.exceptions import OperationalError

from leadrecord import celery_app

ROOT = Path(__file__).resolve().parents[1]


def test_database_url() -> str:
    """The URL of the database this test run uses (pytest-django's test_ name)."""
    db = connection.settings_dict
    auth = quote(db["USER"] or "")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


# A helper, not a test, wherever it is imported.
test_database_url.__test__ = False  # type: ignore[attr-defined]


def _ping() -> bool:
    """Whether a worker answers, over a fresh broker connection (one from the pool may
    have been dropped by a Redis restart)."""
    try:
        with celery_app.connection_for_write() as broker:
            return bool(celery_app.control.ping(timeout=0.5, connection=broker))
    except (ConnectionError, OSError, OperationalError, redis.exceptions.ConnectionError):
        return False


@contextmanager
def celery_worker_process(
    *, concurrency: int = 1, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``celery worker`` as its own process (``env`` added to its environment);
    wait until it answers a ping."""
    broker = os.environ.get("CELERY_BROKER_URL")
    if not broker:
        raise RuntimeError("worker tests need CELERY_BROKER_URL (make test starts Redis)")
    env = {**os.environ, "DATABASE_URL": test_database_url(), "CONN_MAX_AGE": "0", **(env or {})}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "leadrecord",
            "worker",
            "--pool=prefork",
            f"--concurrency={concurrency}",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while not _ping():
            if process.poll() is not None:
                raise RuntimeError(f"celery worker exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError("celery worker did not answer within 60 s")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def celery_beat_process(
    schedule_file: Path, *, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``celery beat`` as its own process (it sends the schedule's tasks to the broker)."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "leadrecord",
            "beat",
            "--loglevel=WARNING",
            f"--schedule={schedule_file}",
            "--max-interval=1",
        ],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": test_database_url(), **(env or {})},
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
