# Keel — the two commands: `make demo` (run the demo) and `make test` (lint + whole suite).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo up down test test-unit lint format install clean bench

demo: $(STAMP) ## create the venv, start the stack, run the demo, stop what it started
	$(PY) -m keel demo

up: $(STAMP) ## start Temporal dev server, simulator, MCP servers and worker in the background
	$(PY) -m keel up

down: $(STAMP) ## stop exactly what `make up` started
	$(PY) -m keel down

test: lint ## lint, type-check and run the whole test suite
	$(PY) -m pytest

test-unit: $(STAMP) ## the unit tier alone: pure tests, no process started (seconds)
	$(PY) -m pytest tests/unit

lint: $(STAMP) ## style, complexity, strict types and the layer rules (pyproject.toml [tool.*])
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports --no-cache --no-logo

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Keel needs Python 3.11 or newer (set PYTHON=python3.11)")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

clean:
	-$(PY) -m keel down
	rm -rf $(VENV) .keel .mypy_cache .ruff_cache .pytest_cache
