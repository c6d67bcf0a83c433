#!/usr/bin/env bash
# Idempotent Python environment setup: .venv in the repo root with the
# project installed editable plus its dev extras, at the exact versions of
# constraints.txt (so a fresh machine gets what was tested). The install is
# skipped when a stamp for the current pyproject.toml and constraints.txt
# already exists.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> bootstrap: creating .venv with $("$PYTHON" --version 2>&1)"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
fi

hash="$("$VENV/bin/python" -c 'import hashlib,sys; print(hashlib.sha256(b"".join(open(name, "rb").read() for name in sys.argv[1:])).hexdigest())' pyproject.toml constraints.txt)"
stamp="$VENV/.installed-$hash"

if [ ! -e "$stamp" ]; then
  echo "==> bootstrap: installing .[dev] into .venv (pyproject.toml or constraints.txt changed, or fresh venv)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[dev]"
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi
