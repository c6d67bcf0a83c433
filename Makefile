.PHONY: help run test lint format lock clean
.DEFAULT_GOAL := help

VENV := .venv/bin

help: ## List the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

run: ## Migrate, seed demo data (prints demo logins), runserver on 127.0.0.1:PORT (default 8000)
	scripts/run.sh

test: ## Full gate: lint, mypy, contract; pytest in parallel (PostgreSQL, Redis, Celery, Chromium); SQLite's part
	scripts/test.sh

lint: ## ruff check, ruff format --check, the layers contract (lint-imports), mypy
	scripts/bootstrap.sh
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/lint-imports
	DEBUG=1 $(VENV)/mypy .

format: ## ruff format, then ruff check --fix
	scripts/bootstrap.sh
	$(VENV)/ruff format .
	$(VENV)/ruff check --fix .

lock: ## Re-resolve pyproject.toml's dependencies into constraints.txt (exact versions)
	scripts/lock.sh

clean: ## Remove .venv, the SQLite databases and collected static files
	rm -rf .venv data/*.sqlite3* staticfiles
