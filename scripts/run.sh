#!/usr/bin/env bash
# Local development server: migrate, seed the demo data (prints the demo users
# and their passwords), then runserver on 127.0.0.1:${PORT:-8000}.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

scripts/bootstrap.sh

export DEBUG="${DEBUG:-1}"
# The demo's webhook endpoint listens on loopback (demo/webhooks.py).
export WEBHOOKS_ALLOW_LOOPBACK="${WEBHOOKS_ALLOW_LOOPBACK:-1}"
PORT="${PORT:-8000}"

# A key that signs checkpoints of the ledger's head, made on the first run.
export LEDGER_SIGNING_KEY="${LEDGER_SIGNING_KEY:-$ROOT/data/ledger-signing.key}"
if [ ! -f "$LEDGER_SIGNING_KEY" ]; then
  echo "ledger signing key: $LEDGER_SIGNING_KEY, public key $(.venv/bin/python manage.py ledger_keygen "$LEDGER_SIGNING_KEY")"
fi

.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py seed_demo
# The first checkpoint (under data/checkpoints/); the periodic work signs the next ones.
.venv/bin/python manage.py ledger_checkpoint
exec .venv/bin/python manage.py runserver "127.0.0.1:$PORT"
