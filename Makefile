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

demo: install  ## Run the main job on the embedded SQLite database (demo/metrics.db)
	$(BIN)/metrics-toolkit db upgrade
	$(BIN)/metrics-toolkit policy set --retention-days 30 --downsample-after-days 3 --interval 1h --archive
	$(BIN)/metrics-toolkit config set collector.interval '"10s"'
	$(BIN)/metrics-toolkit status

test: install  ## Run the whole test suite (PostgreSQL tests skip without a server, except in CI)
	$(BIN)/pytest

lint: install  ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fix: install  ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install  ## Run the benchmarks (not part of CI)
	@for b in benchmarks/bench_*.py; do m=$${b%.py}; echo "== $${m//\//.}"; $(BIN)/python -m $${m//\//.} || exit 1; done

clean:  ## Remove the virtual environment and generated files
	rm -rf $(VENV) demo .pytest_cache .ruff_cache .mypy_cache

.PHONY: help install demo test lint fix bench clean
