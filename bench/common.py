"""What the benchmarks share: a throwaway PostgreSQL cluster, a migrated database, gunicorn.

Nothing here is imported by the product. Each benchmark is a script run with
the project's virtualenv (``.venv/bin/python bench/<name>.py``); without
``--database-url`` it starts its own PostgreSQL cluster under a temporary
folder (as the ``postgres`` system user when run as root, since PostgreSQL
refuses root) and removes it afterwards.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
BENCH_SECRET_KEY = "bench-only-secret-key-not-for-production-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _pg_bin() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not found:
        raise SystemExit("no PostgreSQL under /usr/lib/postgresql/*/bin")
    return found[-1]


def _as_postgres(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A PostgreSQL cluster on a free loopback port; yields the URL of database ``leadrecord``.

    Durability is off (fsync, synchronous_commit), as in the test suite: the
    benchmarks measure the product's work, not the disk's.
    """
    pg_bin = _pg_bin()
    folder = Path(tempfile.mkdtemp(prefix="leadrecord-bench-"))
    folder.chmod(0o711)
    data = folder / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
    port = free_port()
    subprocess.run(
        _as_postgres(
            [f"{pg_bin}/initdb", "-D", str(data), "-U", "leadrecord", "-A", "trust", "--no-sync"]
        ),
        check=True,
        capture_output=True,
        cwd=folder,
    )
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={data} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
        "-c shared_buffers=256MB"
    )
    log = data / "server.log"
    subprocess.run(
        _as_postgres(
            [f"{pg_bin}/pg_ctl", "start", "-D", str(data), "-w", "-l", str(log), "-o", options]
        ),
        check=True,
        capture_output=True,
        cwd=folder,
    )
    try:
        subprocess.run(
            [
                f"{pg_bin}/createdb",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "leadrecord",
                "leadrecord",
            ],
            check=True,
        )
        yield f"postgres://leadrecord@127.0.0.1:{port}/leadrecord"
    finally:
        subprocess.run(
            _as_postgres([f"{pg_bin}/pg_ctl", "stop", "-D", str(data), "-m", "immediate"]),
            capture_output=True,
            cwd=folder,
            check=False,
        )
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def fresh_database(server_url: str, name: str) -> Iterator[str]:
    """Database ``name`` on the server of ``server_url``, created empty and dropped after."""
    import psycopg2

    parts = urlsplit(server_url)
    admin = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def product_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a production-like process of the product on loopback."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "SECRET_KEY": BENCH_SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "SECURE_COOKIES": "0",
        "LOG_LEVEL": "WARNING",
        "CELERY_BROKER_URL": "",
        **extra,
    }


def manage(database_url: str, *args: str, root: Path = ROOT) -> str:
    """Run ``manage.py`` (of the checkout at ``root``) against the database; returns its
    standard output."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=root,
        env=product_env(database_url),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def integration_token(database_url: str, username: str = "bench-sync") -> str:
    manage(database_url, "add_user", username, "--role", "integration")
    return manage(database_url, "issue_token", username).strip()


@contextmanager
def gunicorn(
    database_url: str, *, workers: int, root: Path = ROOT, **extra_env: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The real WSGI server on a free loopback port; yields its base URL and process.

    ``extra_env`` is added to the product's environment (a broker URL, say); ``root`` is
    the checkout served (another commit's, to compare).
    """
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "leadrecord.wsgi",
            "--config=python:leadrecord.gunicorn_config",
            f"--bind=127.0.0.1:{port}",
            f"--workers={workers}",
            "--timeout=120",
            "--log-level=warning",
        ],
        cwd=root,
        # The figures are what requests cost: periodic jobs (an attribution run after the
        # benchmark's own changes) run on a worker in production, not in these processes.
        env=product_env(
            database_url, CONN_MAX_AGE="600", **{"LEADRECORD_PERIODIC_IN_WEB": "0", **extra_env}
        ),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/api/v1/health/", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("gunicorn did not come up") from None
                time.sleep(0.2)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def rss_peak_mib() -> float:
    """This process's peak resident memory (Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
T = TypeVar("T")


def machine_cpu_seconds() -> float:
    """CPU seconds the whole machine spent busy so far (every process, the kernel too):
    /proc/stat's first line without its idle and iowait times."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / _CLOCK_TICKS


def _proc_stat(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name (state, ppid, ...), or []."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return []


class CpuMeter:
    """CPU seconds (user + system) used by process families on this machine, read
    from /proc: each named root with every descendant, live or already reaped.

    The clients are this process's own children (``resource.RUSAGE_CHILDREN``:
    the pool processes, counted once they are joined).
    """

    def __init__(self, roots: dict[str, int]) -> None:
        self.roots = roots

    def _family(self, root: int, children: dict[int, list[int]]) -> float:
        ticks = 0
        stat = _proc_stat(root)
        if stat:
            # The root's reaped descendants (a finished autovacuum worker, a
            # restarted gunicorn worker) are in its cutime and cstime.
            ticks += int(stat[13]) + int(stat[14])
        todo = [root]
        while todo:
            pid = todo.pop()
            stat = _proc_stat(pid)
            if stat:
                ticks += int(stat[11]) + int(stat[12])
            todo.extend(children.get(pid, ()))
        return ticks / _CLOCK_TICKS

    def read(self) -> dict[str, float]:
        import resource

        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                stat = _proc_stat(int(entry))
                if stat:
                    children.setdefault(int(stat[1]), []).append(int(entry))
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        reading = {name: self._family(root, children) for name, root in self.roots.items()}
        reading["clients"] = usage.ru_utime + usage.ru_stime
        return reading

    def measure(self, call: Callable[[], T]) -> tuple[T, dict[str, float]]:
        """``call``'s result and the CPU seconds each family spent while it ran."""
        before = self.read()
        result = call()
        after = self.read()
        return result, {name: after[name] - before[name] for name in after}


def postmaster_pid(database_url: str) -> int | None:
    """The PID of the PostgreSQL server behind this URL, if it runs on this machine."""
    import psycopg2

    with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    stat = _proc_stat(backend)
    return int(stat[1]) if stat else None
