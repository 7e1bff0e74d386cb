# Real Dispatch: the two commands are `make run` and `make test`; the rest are their steps.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null || echo python3)
VENV := .venv
VENV_PY := $(VENV)/bin/python
# Written after a successful install; pip runs again only when pyproject.toml is newer.
INSTALL_STAMP := $(VENV)/.installed
PYTEST_ARGS ?= -q --durations=15
# Each pass runs on two pytest-xdist workers, one per core (each with its own test database and
# Chromium); worksteal hands a worker that runs out part of the other's queue. PYTEST_WORKERS=0
# runs a pass in one process.
PYTEST_WORKERS ?= 2
PYTEST_XDIST := -n $(PYTEST_WORKERS) --dist worksteal
PORT ?= 8000
export PORT
# Links in the demo's messages and pages must point at the server `make run` starts.
DISPATCH_PUBLIC_URL ?= http://127.0.0.1:$(PORT)
run demo: export DISPATCH_PUBLIC_URL := $(DISPATCH_PUBLIC_URL)

.PHONY: help run test lint test-sqlite test-postgres test-scaleout venv system-deps migrate demo check-deploy clean

help:
	@echo "make run            install, migrate, load the demo data, serve on PORT (default 8000) with the worker"
	@echo "make test           the whole suite on SQLite, then on a throwaway PostgreSQL server"
	@echo "make lint           ruff (lint and format check) and the import contracts (import-linter)"
	@echo "make test-sqlite    the SQLite pass only        (PYTEST_ARGS='tests/common -x' to narrow)"
	@echo "make test-postgres  the PostgreSQL pass only"
	@echo "make test-scaleout  two web and two worker processes on PostgreSQL, Redis and S3, driven over HTTP"
	@echo "make venv           create .venv and install the pinned dependencies"
	@echo "make system-deps    install postgresql, chromium, fonts-dejavu-core, poppler-utils, zbar-tools if missing"
	@echo "make migrate        apply migrations to the development database"
	@echo "make demo           load the demo company (idempotent)"
	@echo "make clean          remove .venv and the development database and files"

$(INSTALL_STAMP): pyproject.toml
	scripts/ensure_venv.sh "$(PYTHON)" "$(VENV)"
	$(VENV_PY) -m pip install --quiet -e ".[test]"
	touch $@

venv: $(INSTALL_STAMP)

system-deps:
	scripts/ensure_system_deps.sh

migrate: venv
	$(VENV_PY) manage.py migrate --noinput

demo: migrate
	$(VENV_PY) manage.py load_demo

run: demo
	scripts/run_dev.sh

# Both passes always run, so one report shows failures on either database.
test: venv system-deps
	@status=0; \
	start=$$SECONDS; \
	$(MAKE) --no-print-directory lint || status=1; \
	$(MAKE) --no-print-directory test-sqlite || status=1; \
	sqlite_seconds=$$((SECONDS - start)); \
	$(MAKE) --no-print-directory test-postgres || status=1; \
	postgres_seconds=$$((SECONDS - start - sqlite_seconds)); \
	$(MAKE) --no-print-directory test-scaleout || status=1; \
	echo "make test: SQLite pass $${sqlite_seconds}s, PostgreSQL pass $${postgres_seconds}s, scale-out run $$((SECONDS - start - sqlite_seconds - postgres_seconds))s, total $$((SECONDS - start))s"; \
	if [[ $$status -ne 0 ]]; then echo "make test: FAILED"; else echo "make test: passed on SQLite, on PostgreSQL and as a scale-out deployment"; fi; \
	exit $$status

# Lint, formatting and the allowed import graph (pyproject.toml's [tool.importlinter]).
lint: venv
	@echo "== lint =="
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

test-sqlite: venv
	@echo "== tests on SQLite =="
	env -u DATABASE_URL $(VENV)/bin/pytest $(PYTEST_XDIST) $(PYTEST_ARGS)

test-postgres: venv
	@echo "== tests on PostgreSQL =="
	scripts/with_postgres.sh $(VENV)/bin/pytest $(PYTEST_XDIST) $(PYTEST_ARGS)

# A whole deployment on this machine (scaleout/deployment.py): PostgreSQL, Redis, S3 (moto),
# two gunicorn web processes and two django-q2 worker clusters; torn down whatever happens.
test-scaleout: venv
	@echo "== scale-out run =="
	$(VENV)/bin/pytest -c scaleout/pytest.ini scaleout -q --durations=10

check-deploy: venv
	DJANGO_SETTINGS_MODULE=config.settings.production \
	SECRET_KEY="$$($(VENV_PY) -c 'import secrets; print(secrets.token_urlsafe(64))')" \
	ALLOWED_HOSTS=example.com $(VENV_PY) manage.py check --deploy

clean:
	rm -rf $(VENV) var db.sqlite3 db.sqlite3-wal db.sqlite3-shm
