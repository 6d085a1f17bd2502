# Two commands on a fresh machine: `make demo` and `make test`.
# Each creates .venv if missing and installs the pinned set (requirements.lock).
SHELL := /bin/bash
# Supported interpreters (keep in step with requires-python and .ci/run; tests/test_setup.py checks).
PYTHON_VERSIONS := 3.11 3.12 3.13
PYTHON_RANGE := $(firstword $(PYTHON_VERSIONS))-$(lastword $(PYTHON_VERSIONS))
# PYTHON: the first of python3.11, python3.12, python3.13, python3 on the PATH that runs and is a
# supported version (a pyenv shim for a version that is not enabled does not run, so it is
# skipped). 3.11 comes first: requirements.lock and the README's demo numbers were measured on
# 3.11.7, and 3.12 changed how the builtin sum() adds floats (compensated summation).
# Override with PYTHON=/path/to/python3.x.
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell for p in $(addprefix python,$(PYTHON_VERSIONS)) python3; do \
  $$p -c 'import sys; assert "%d.%d" % sys.version_info[:2] in "$(PYTHON_VERSIONS)".split(); \
  print(sys.executable)' 2>/dev/null && break; done)
endif
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
	@test -n "$(PYTHON)" || { echo "No Python $(PYTHON_RANGE) found on the PATH (tried $(addprefix python,$(PYTHON_VERSIONS)) python3); set PYTHON=/path/to/python3.x" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; v = "%d.%d" % sys.version_info[:2]; assert v in "$(PYTHON_VERSIONS)".split(), f"Python $(PYTHON_RANGE) required, found {sys.version.split()[0]} at {sys.executable}; set PYTHON=/path/to/python3.x ($(PYTHON_VERSIONS))"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" wheel
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[test]"
	@touch $(STAMP)

venv: $(STAMP)

# The external site of the demo: the same pCR law, another case mix, prevalence and scanner
# (clinical table only: it validates the clinical model; README "External validation").
EXTERNAL ?= data/raw/synthetic-external
DEMO_MODEL := data/runs/demo/models/honest/clinical__lr.skops
DEPLOYED := data/runs/demo/deploy/honest/clinical__lr.skops

demo: $(STAMP)
	$(BIN)/workbench run --config configs/demo.yaml
	$(BIN)/workbench refit --model $(DEMO_MODEL)
	$(BIN)/workbench synth --site external --no-images --n 1000 --seed 1 --out $(EXTERNAL)
	$(BIN)/workbench validate --model $(DEPLOYED) --cohort $(EXTERNAL)/manifest.csv \
	  --run data/runs/demo --name external-site

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests apps

dashboard: $(STAMP)
	$(BIN)/workbench dashboard $(RUN) $(DASHBOARD_ARGS)

clean-cache:
	rm -rf data/interim/* data/runs/*
