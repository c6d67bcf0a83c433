#!/usr/bin/env bash
# Local development server: migrate, seed the demo data (prints the demo users
# and their passwords), then runserver on 127.0.0.1:${PORT:-8000}.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

scripts/bootstrap.sh

export DEBUG="${DEBUG:-1}"
PORT="${PORT:-8000}"

.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py seed_demo
exec .venv/bin/python manage.py runserver "127.0.0.1:$PORT"
