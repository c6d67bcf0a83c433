#!/usr/bin/env bash
# Idempotent Python environment setup: .venv in the repo root with the
# project installed editable plus its dev extras. The install is skipped when
# a stamp for the current pyproject.toml already exists.
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

hash="$("$VENV/bin/python" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' pyproject.toml)"
stamp="$VENV/.installed-$hash"

if [ ! -e "$stamp" ]; then
  echo "==> bootstrap: installing .[dev] into .venv (pyproject.toml changed or fresh venv)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[dev]"
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi
