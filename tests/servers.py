"""A real gunicorn serving the project against the suite's test database."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

from .workers import ROOT, test_database_url


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Gunicorn:
    process: subprocess.Popen[bytes]
    url: str

    def worker_pids(self) -> list[int]:
        """The worker processes (children of the master)."""
        children = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.process.pid)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        return [int(pid) for pid in children]


@contextmanager
def gunicorn_process(
    *, workers: int = 2, timeout: int = 60, log: IO[bytes] | None = None
) -> Iterator[Gunicorn]:
    """gunicorn with the repo's config (leadrecord/gunicorn_config.py), as docker-compose
    runs it; with ``log``, its access and error logs go there (access log on)."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": test_database_url(), "CONN_MAX_AGE": "0"}
    logging = ["--access-logfile=-", "--log-level=info"] if log else ["--log-level=warning"]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "leadrecord.wsgi",
            "--config=python:leadrecord.gunicorn_config",
            f"--bind=127.0.0.1:{port}",
            f"--workers={workers}",
            f"--timeout={timeout}",
            *logging,
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
    )
    server = Gunicorn(process, f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(server.url + "/api/v1/health/", timeout=2):  # noqa: S310
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not come up") from None
                time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
