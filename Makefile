# interp4d_lite: the two set-up-and-run commands are `make tutorial` and `make test`.
# Each creates .venv on first use (CPU torch unless an NVIDIA GPU is present),
# installs the package, then runs. Re-runs skip the install unless pyproject.toml changed.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.interp4d_lite-installed
RUN_DIR ?= runs/tutorial
PYTEST_ARGS ?=

.PHONY: tutorial test test-fast lint benchmarks env clean-runs

$(STAMP): pyproject.toml scripts/setup_env.sh
	bash scripts/setup_env.sh $(VENV)
	@touch $@

env: $(STAMP)

## Main job: execute every tutorial notebook (papermill, phantom data) into $(RUN_DIR)
tutorial: $(STAMP)
	$(PY) -m interp4d_lite.tutorial --run-dir $(RUN_DIR)

## All tests (unit, training, notebooks, browser); CI runs exactly this
test: $(STAMP)
	bash scripts/setup_browser.sh $(VENV)
	$(PY) -m pytest $(PYTEST_ARGS)

## Fast unit tests only
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

## Lint and format check (ruff, configured in pyproject.toml); `make lint FIX=1` applies the fixes and formats
lint: $(STAMP)
	$(VENV)/bin/ruff check $(if $(FIX),--fix,) .
	$(VENV)/bin/ruff format $(if $(FIX),,--check) .

benchmarks: $(STAMP)
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean-runs:
	rm -rf runs
