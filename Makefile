# Two commands on a fresh machine: `make demo` and `make test`.
# Each creates .venv if missing and installs the pinned set (requirements.lock).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
RUN ?= data/runs/demo
DASHBOARD_ARGS ?=

.PHONY: demo test lint venv clean-cache help dashboard

help:
	@echo "make demo   - run the pipeline on the embedded synthetic cohort (creates .venv)"
	@echo "make test   - run the test suite (creates .venv)"
	@echo "make lint   - ruff"
	@echo "make dashboard [RUN=data/runs/demo] - serve the Panel dashboard on 127.0.0.1:5006"

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 required, found {sys.version.split()[0]} at {sys.executable}; set PYTHON=/path/to/python3.11"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" wheel
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[test]"
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/workbench demo --config configs/demo.yaml

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests apps

dashboard: $(STAMP)
	$(BIN)/workbench dashboard $(RUN) $(DASHBOARD_ARGS)

clean-cache:
	rm -rf data/interim/* data/runs/*
