#!/usr/bin/env bash
# The whole gate (what `make test` and CI run), failing fast:
#   1. lint (ruff check, ruff format --check), types (mypy) and the architecture
#      contract (lint-imports), before any service starts;
#   2. the whole pytest suite, in parallel (pytest-xdist, one test database per
#      worker), against a throwaway PostgreSQL cluster + Redis + Celery workers +
#      headless Chromium;
#   3. the tests of what the embedded default database (SQLite, make run's) really
#      runs: those marked `embedded` (tests/conftest.py's EMBEDDED_MODULES).
# Extra arguments are passed to both pytest runs. TEST_WORKERS sets the number of
# pytest workers (default: one per core, at most 8; 0 runs in one process).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

START_SECONDS=$SECONDS
banner() { printf '\n==> [%4ss] %s\n' "$((SECONDS - START_SECONDS))" "$*"; }
die() { printf 'test.sh: error: %s\n' "$*" >&2; exit 1; }

IS_ROOT=0
[ "$(id -u)" -eq 0 ] && IS_ROOT=1

# --- Python environment ---------------------------------------------------
banner "bootstrap: .venv"
scripts/bootstrap.sh
export PATH="$ROOT/.venv/bin:$PATH"

# --- Static checks first: no service is started for a tree that fails them ----
banner "lint: ruff check ."
.venv/bin/ruff check .

banner "format: ruff format --check ."
.venv/bin/ruff format --check .

banner "types: mypy ."
DEBUG=1 .venv/bin/mypy .  # the django-stubs plugin loads settings

if ! command -v lint-imports >/dev/null 2>&1; then
  banner "architecture: lint-imports is not installed; contract not checked"
elif ! grep -q '^\[tool\.importlinter\]' pyproject.toml; then
  banner "architecture: no [tool.importlinter] contract in pyproject.toml; not checked"
else
  banner "architecture: lint-imports"
  lint-imports
fi

# --- System dependencies: Redis, Chromium, chromedriver -------------------
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1 \
   || [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  if [ "$IS_ROOT" -eq 1 ]; then
    banner "apt: installing redis-server chromium chromium-driver"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      redis-server chromium chromium-driver >/dev/null
  else
    die "redis-server, /usr/bin/chromium and /usr/bin/chromedriver are required; install them with:
  sudo apt-get install --no-install-recommends redis-server chromium chromium-driver"
  fi
fi

PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
[ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] \
  || die "no PostgreSQL found under /usr/lib/postgresql/*/bin (apt-get install postgresql)"

# --- Throwaway services, torn down on any exit ----------------------------
TMP="$(mktemp -d -t leadrecord-test.XXXXXX)"
PG_DATA="$TMP/pg/data"
PG_STARTED=0
REDIS_PORT=""
REDIS_PIDFILE="$TMP/redis/redis.pid"

# PostgreSQL refuses to run as root: run its tools as the postgres system user.
PG_USER=""
if [ "$IS_ROOT" -eq 1 ]; then
  if id -u postgres >/dev/null 2>&1; then PG_USER=postgres; else PG_USER=nobody; fi
fi
as_pg() {
  if [ -n "$PG_USER" ]; then
    (cd "$TMP" && runuser -u "$PG_USER" -- "$@")
  else
    "$@"
  fi
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if [ "$PG_STARTED" -eq 1 ]; then
    as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m immediate -s >/dev/null 2>&1
  fi
  if [ -s "$REDIS_PIDFILE" ]; then
    local pid
    pid="$(cat "$REDIS_PIDFILE")"
    kill "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  fi
  # Tests may have restarted Redis on the same port (new pid): stop that too.
  if [ -n "$REDIS_PORT" ] && redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1
  fi
  rm -rf "$TMP"
  if [ "$rc" -eq 0 ]; then
    printf '\n==> OK: all steps passed in %ss\n' "$((SECONDS - START_SECONDS))"
  else
    printf '\n==> FAILED (exit %s) after %ss\n' "$rc" "$((SECONDS - START_SECONDS))" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# --- PostgreSQL -----------------------------------------------------------
banner "services: PostgreSQL ($PG_BIN), Redis"
chmod 711 "$TMP"          # let the postgres user traverse into its folder
mkdir -p "$TMP/pg"
if [ -n "$PG_USER" ]; then chown "$PG_USER:" "$TMP/pg"; fi
PGPORT="$(free_port)"

as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U leadrecord -A trust --no-sync -E UTF8 \
  >"$TMP/pg/initdb.log" 2>&1 || { cat "$TMP/pg/initdb.log" >&2; die "initdb failed"; }

PG_STARTED=1
as_pg "$PG_BIN/pg_ctl" start -D "$PG_DATA" -w -t 60 -s -l "$TMP/pg/server.log" \
  -o "-c listen_addresses=127.0.0.1 -p $PGPORT -c unix_socket_directories=$TMP/pg \
      -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
  || { cat "$TMP/pg/server.log" >&2; die "PostgreSQL failed to start"; }

for _ in $(seq 100); do
  "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT" && break
  sleep 0.1
done
"$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT" \
  || { cat "$TMP/pg/server.log" >&2; die "PostgreSQL not ready on port $PGPORT"; }

"$PG_BIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U leadrecord leadrecord
export DATABASE_URL="postgres://leadrecord@127.0.0.1:$PGPORT/leadrecord"
# Two roles, as in production: the owner (initdb's superuser; the suite migrates and
# flushes as it) and the application's role, which owns nothing: tests act as it after
# grant_app_role to prove it cannot rewrite the ledger and that every write path works.
"$PG_BIN/psql" -q -h 127.0.0.1 -p "$PGPORT" -U leadrecord -d leadrecord \
  -c "CREATE ROLE leadrecord_app LOGIN NOSUPERUSER"
export LEADRECORD_TEST_APP_ROLE=leadrecord_app

# --- Redis ----------------------------------------------------------------
mkdir -p "$TMP/redis"
REDIS_PORT="$(free_port)"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
  --daemonize yes --pidfile "$REDIS_PIDFILE" --dir "$TMP/redis" \
  --logfile "$TMP/redis/redis.log" \
  || die "redis-server failed to start"
for _ in $(seq 100); do
  [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ] && break
  sleep 0.1
done
[ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ] \
  || { cat "$TMP/redis/redis.log" >&2 2>/dev/null; die "Redis not answering on port $REDIS_PORT"; }

export CELERY_BROKER_URL="redis://127.0.0.1:$REDIS_PORT/0"
export LEADRECORD_TEST_REDIS_PORT="$REDIS_PORT"
export LEADRECORD_TEST_REDIS_SERVER="$(command -v redis-server)"
export LEADRECORD_TEST_CHROMIUM=/usr/bin/chromium
export LEADRECORD_TEST_PG_BIN="$PG_BIN"
echo "    PostgreSQL on 127.0.0.1:$PGPORT, Redis on 127.0.0.1:$REDIS_PORT (up in $((SECONDS - START_SECONDS))s total)"

# --- The suite --------------------------------------------------------------
WORKERS="${TEST_WORKERS:-auto}"
PARALLEL=(-n "$WORKERS" --maxprocesses=8 --dist loadscope)
[ "$WORKERS" = "0" ] && PARALLEL=(-p no:xdist)

banner "pytest: whole suite (PostgreSQL, Redis, Celery, Chromium; $WORKERS workers)"
.venv/bin/pytest "${PARALLEL[@]}" "$@"

banner "pytest: what the embedded default database runs (SQLite, marker embedded)"
env -u DATABASE_URL -u CELERY_BROKER_URL \
  .venv/bin/pytest "${PARALLEL[@]}" -m "embedded and not postgres and not browser and not worker" \
  -p no:cacheprovider "$@"
