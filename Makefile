# FlowPay developer commands. On a fresh machine you need only two:
#   make run    virtualenv + install + migrate + demo data, then web (:3000), Celery worker and beat
#   make test   the whole suite against PostgreSQL and Redis on 127.0.0.1
# See README.md (and bench/README.md for make bench).

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
VENV_PYTHON := $(VENV)/bin/python
# Python 3.11: python3.11 when it is on PATH, else python3 (checked to be 3.11 below).
PYTHON ?= $(shell command -v python3.11 2>/dev/null || echo python3)

.PHONY: help venv run migrate test test-deps lint clean bench bench-smoke bench-sweep bench-deps k8s-rules

help:
	@echo "make run      create the virtualenv, migrate, seed demo data, serve http://127.0.0.1:3000 with a Celery worker and beat"
	@echo "make test     install what the tests need and run the whole suite (PostgreSQL and Redis on 127.0.0.1)"
	@echo "make migrate  apply migrations to the make-run database (SQLite under .run unless FLOWPAY_USE_ENV=1)"
	@echo "make venv     create $(VENV) and install requirements-dev.txt (again only when requirements change)"
	@echo "make lint     ruff, the import-linter layer contracts and a missing-migration check (part of make test)"
	@echo "make k8s-rules  regenerate deploy/k8s/prometheus-rule.yaml from docker/prometheus/alerts.yml"
	@echo "make clean    remove .run (the demo database, broker, cache, logs and demo credentials)"
	@echo "make bench    the benchmarks (bench/README.md), 20-30 minutes; results in bench/results/"
	@echo "make bench-smoke  every benchmark at a tiny size, under a minute (part of make test)"
	@echo "make bench-sweep  gunicorn workers x threads for the create-payment row (once, by hand)"

# --- virtualenv ------------------------------------------------------------------------
$(VENV_PYTHON):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { \
		echo "FlowPay needs Python 3.11: '$(PYTHON)' is $$($(PYTHON) --version 2>&1). Install python3.11 or run 'make PYTHON=/path/to/python3.11 ...'." >&2; \
		exit 1; }
	$(PYTHON) -m venv $(VENV)

# The stamp is newer than both requirements files once they are installed.
$(VENV)/.installed: requirements.txt requirements-dev.txt | $(VENV_PYTHON)
	$(VENV_PYTHON) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.installed

# --- running ---------------------------------------------------------------------------
run: venv
	scripts/run_dev.sh

migrate: venv
	scripts/run_dev.sh migrate

# --- tests -----------------------------------------------------------------------------
# Defaults for the suite; a variable already set in the environment (or on the make
# command line) wins.
test: export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/flowpay
test: export REDIS_URL ?= redis://127.0.0.1:6379/15
test: export DEBUG ?= 0
test: export SECRET_KEY ?= test-only-secret-key

# System packages the suite needs beyond the virtualenv, installed only when missing:
# promtool (Debian's prometheus package) for the alert-rule tests, and Debian's chromium for
# the browser tests (Playwright drives /usr/bin/chromium; it never downloads a browser).
test-deps:
	@command -v promtool >/dev/null || { \
		echo "Installing Debian's prometheus package (promtool, for the alert-rule tests)..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
	@command -v chromium >/dev/null || { \
		echo "Installing Debian's chromium package (for the browser tests)..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

# collectstatic: the suite runs with DEBUG off, like production, so pages reference the
# hashed files of the whitenoise manifest.
# ruff (unused or undefined names, import order, bug-prone patterns), import-linter (the
# layer contracts in .importlinter) and a check that every model change has its migration.
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	DEBUG=1 SECRET_KEY=lint-only DATABASE_URL=sqlite://:memory: $(VENV_PYTHON) manage.py makemigrations --check --dry-run --verbosity 1

# After the suite, the benchmark harness at a tiny size: it checks that every row still
# runs (it exits 0 whatever the ratios; goals are reported, never asserted).
test: venv test-deps lint
	$(VENV_PYTHON) manage.py collectstatic --noinput --verbosity 0
	$(VENV_PYTHON) -m pytest -n auto -p no:cacheprovider
	$(MAKE) --no-print-directory bench-smoke

# --- benchmarks (bench/README.md) --------------------------------------------------------
# Their own PostgreSQL database and Redis DB on 127.0.0.1 (never the suite's or make run's:
# the harness wipes them), overridable like the test variables above.
bench bench-smoke bench-sweep: export BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/flowpay_bench
bench bench-smoke bench-sweep: export BENCH_REDIS_URL ?= redis://127.0.0.1:6379/11

# wrk (Debian's package) generates the HTTP load, installed only when missing.
bench-deps:
	@command -v wrk >/dev/null || { \
		echo "Installing Debian's wrk package (HTTP load generator for the benchmarks)..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null; }

bench: venv bench-deps
	$(VENV_PYTHON) -m bench

bench-smoke: venv bench-deps
	$(VENV_PYTHON) -m bench --smoke

bench-sweep: venv bench-deps
	$(VENV_PYTHON) -m bench sweep

# --- housekeeping ----------------------------------------------------------------------
# The PrometheusRule of deploy/k8s is generated from the alert rules (a test checks it).
k8s-rules: venv
	$(VENV_PYTHON) scripts/generate_prometheus_rule.py

clean:
	rm -rf .run
