# metrics-toolkit: `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DB ?= sqlite:///demo/metrics.db
export METRICS_TOOLKIT_DATABASE_URL ?= $(DEMO_DB)

.DEFAULT_GOAL := help

help:  ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-8s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed-dev  ## Create .venv and install the project with everything

# make explore PORT=8600 / make lab PORT=8890: the port to serve on (defaults 8501 and 8888).
EXPLORE_PORT = $(or $(PORT),8501)
DEMO_DAYS ?= 30
DEMO_INTERVAL ?= 60s

demo: install  ## Run the main job on the embedded SQLite database (demo/metrics.db), afresh each time
	@if [ "$(METRICS_TOOLKIT_DATABASE_URL)" = "$(DEMO_DB)" ]; then \
		echo "== resetting demo/ (every make demo starts from an empty demo/metrics.db)"; \
		rm -rf demo; \
	else \
		echo "== the database of METRICS_TOOLKIT_DATABASE_URL is not reset: a second run adds to it"; \
	fi
	mkdir -p demo
	$(BIN)/metrics-toolkit db upgrade
	$(BIN)/metrics-toolkit config set archive.path '"demo/archive"'
	$(BIN)/metrics-toolkit config set spool.path '"demo/spool.db"'
	$(BIN)/metrics-toolkit policy set --retention-days 30 --downsample-after-days 3 --interval 1h --archive
	@echo "== live snapshots of this machine (a sparse host in the report: listed apart, not charted)"
	$(BIN)/metrics-toolkit collect --interval 2s --count 3
	@echo "== $(DEMO_DAYS) days of generated history (2 hosts, every $(DEMO_INTERVAL))"
	$(BIN)/metrics-toolkit generate --days $(DEMO_DAYS) --interval $(DEMO_INTERVAL) --hosts 2 --seed 42
	@echo "== the archive policy: roll up after 3 days, archive to demo/archive"
	$(BIN)/metrics-toolkit archive run
	@echo "== a $(DEMO_DAYS)-day report"
	$(BIN)/metrics-toolkit report --period 30d --end latest --format html,pdf,json --out reports
	$(BIN)/metrics-toolkit status
	@echo "== next: create a user (the first one is an admin), then open the explorer"
	@echo "   $(BIN)/metrics-toolkit users add NAME"
	@echo "   make explore            # http://127.0.0.1:$(EXPLORE_PORT)/ (make explore PORT=8600 for another port)"

test: install  ## Run the whole test suite (PostgreSQL tests skip without a server, except in CI)
	$(BIN)/pytest

lint: install  ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fix: install  ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

load: install  ## Full load suite: 50 collectors into PostgreSQL, 10 into SQLite, 5 min each
	METRICS_TOOLKIT_LOAD=full $(BIN)/pytest tests/load -m load -v; status=$$?; \
	$(BIN)/python -m tests.load.figures benchmarks/results/load-full.json; exit $$status

.PHONY: load

bench: install  ## Run the benchmarks (not part of CI)
	@for b in benchmarks/bench_*.py; do m=$${b%.py}; echo "== $${m//\//.}"; $(BIN)/python -m $${m//\//.} || exit 1; done

# The demo database as an absolute URL: notebooks run from notebooks/, not the repository root.
LAB_DB_URL = $(if $(filter $(DEMO_DB),$(METRICS_TOOLKIT_DATABASE_URL)),sqlite:///$(CURDIR)/demo/metrics.db,$(METRICS_TOOLKIT_DATABASE_URL))

lab: install  ## Open JupyterLab on notebooks/ against the demo database (make lab PORT=8888; runs make demo if missing)
	@if [ "$(LAB_DB_URL)" = "sqlite:///$(CURDIR)/demo/metrics.db" ] && [ ! -f demo/metrics.db ]; then $(MAKE) demo; fi
	METRICS_TOOLKIT_DATABASE_URL='$(LAB_DB_URL)' $(BIN)/jupyter lab --notebook-dir=notebooks $(if $(PORT),--port=$(PORT)) $(if $(filter 0,$(shell id -u)),--allow-root)

explore: install  ## Open the web explorer on the demo database (make explore PORT=8600; log in as a user made by `users add`)
	@if [ "$(LAB_DB_URL)" = "sqlite:///$(CURDIR)/demo/metrics.db" ] && [ ! -f demo/metrics.db ]; then $(MAKE) demo; fi
	$(BIN)/metrics-toolkit explore --port $(EXPLORE_PORT)

.PHONY: lab explore

clean:  ## Remove the virtual environment and generated files
	rm -rf $(VENV) demo .pytest_cache .ruff_cache .mypy_cache

.PHONY: help install demo test lint fix bench clean
