# sis_pipelines: `make demo`, `make test`, `make ui`. Each sets itself up first.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { command -v $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The demo's nights start a week back, so its partitions are the nights it runs (not months
# of empty ones).
DEMO_ENV := DAGSTER_HOME=$(CURDIR)/.dagster_home \
	SIS_PIPELINES_TENANTS=$${SIS_PIPELINES_TENANTS:-$(CURDIR)/sis_pipelines/demo/tenants.yaml} \
	SIS_PIPELINES_DATA_DIR=$${SIS_PIPELINES_DATA_DIR:-$(CURDIR)/data} \
	SIS_PIPELINES_DEMO_ROLLOVER=$(ROLLOVER) \
	SIS_PIPELINES_FIRST_NIGHT=$${SIS_PIPELINES_FIRST_NIGHT:-$$(SIS_PIPELINES_DEMO_ROLLOVER=$(ROLLOVER) $(BIN)/python -m sis_pipelines.demo --first-night)}

SIZE ?= small
ROLLOVER ?=

# glibc gives each thread that allocates an arena of its own and keeps what is freed there:
# with DuckDB's, Arrow's and our writer threads that was a third of a step's peak at xl.
export MALLOC_ARENA_MAX ?= 2

.PHONY: setup demo test realdata ui canvas screenshots fleet bench lint clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is needed"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(DEMO_ENV) $(BIN)/python -m sis_pipelines.demo

# On every core (pytest-xdist), two workers a core: a third of the suite's time is spent
# waiting on loopback HTTP, subprocesses and pollers, which the second worker fills. A worker
# that finishes early steals tests from the others.
# `make test PYTEST_ARGS="-m 'not e2e'"` leaves out the Dagster end-to-end runs.
TEST_WORKERS ?= $(shell echo $$(( 2 * $$(nproc 2>/dev/null || echo 1) )))

# Lint, formatting and the layers' import contracts first (seconds), then the suite; the 15
# slowest tests are listed at the end.
test: lint
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist worksteal --durations=15 $(PYTEST_ARGS)

# The GPL-3.0 Moodle bundles a few tests read are not in the repository: fetched from their
# source at a pinned commit, each kept only if its SHA-256 is the pinned one.
realdata: setup
	$(BIN)/python -m sis_pipelines_tests.realdata

ui: setup
	@mkdir -p .dagster_home
	@test -f .dagster_home/dagster.yaml || printf 'telemetry:\n  enabled: false\npython_logs:\n  managed_python_loggers: [sis_pipelines]\n' > .dagster_home/dagster.yaml
	$(DEMO_ENV) $(BIN)/dagster dev -w workspace.yaml

# A tenant's simulated Canvas on port 8790 (after make demo): grade through Canvas's own API
# while make ui runs, and the tenant's grade_sync sensor sends the grade to the simulated SIS.
TENANT ?= demo-genesis
canvas: setup
	$(BIN)/python -m sis_pipelines.simulator canvas --tenant $(TENANT) --data $${SIS_PIPELINES_DATA_DIR:-$(CURDIR)/data}

# The UI pages a data engineer looks at, as PNGs in screenshots/ (after make demo).
screenshots: setup
	$(DEMO_ENV) $(BIN)/python -m sis_pipelines.demo.screenshots

# A fleet of N simulated districts on a real deployment on this machine: a fresh PostgreSQL
# database, dagster-daemon and the webserver, the nightly schedule's tick, every run followed.
# CELERY_HOSTS=2 runs every step on Celery workers on hosts of their own (network namespaces;
# needs root, RabbitMQ and Redis); KILL_AFTER=25 kills the first host once it has started 25 steps.
N ?= 40
CELERY_HOSTS ?= 0
KILL_AFTER ?= 0
fleet: setup
	$(BIN)/python -m bench.fleet --tenants $(N) --celery-hosts $(CELERY_HOSTS) --kill-a-worker-after $(KILL_AFTER)

# SOURCE=csv: the same district from its OneRoster CSV drop instead of REST.
SOURCE ?= rest
# GPB=0: rostering only (no night of grade passback).
GPB ?= 1
bench: setup
	$(BIN)/python -m bench.run --size $(SIZE) --source $(SOURCE) $(if $(filter 0,$(GPB)),--no-gpb,)

lint: setup
	$(BIN)/ruff check -q .
	$(BIN)/ruff format --check -q .
	$(BIN)/lint-imports --no-cache --no-logo

clean:
	rm -rf .dagster_home data
