#!/usr/bin/env bash
# Regenerate constraints.txt: the exact versions of every package that
# pyproject.toml's ranges resolve to today, installed into a throwaway venv.
# Run it (`make lock`) after changing dependencies, then `make test`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3}"
VENV="$(mktemp -d)"
trap 'rm -rf "$VENV"' EXIT

"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[dev]"
{
  echo "# Exact versions for .venv and the image: scripts/bootstrap.sh and the Dockerfile"
  echo "# install with -c constraints.txt. Regenerate with 'make lock' after changing"
  echo "# pyproject.toml's dependencies; written by scripts/lock.sh."
  "$VENV/bin/python" -m pip freeze --exclude-editable --disable-pip-version-check
} >constraints.txt
echo "constraints.txt: $(grep -c '==' constraints.txt) packages"
