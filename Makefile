# Segment x Amazon Personalize activation bundle.
# Every target calls .venv/bin/... directly: make has no `source`.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BUILD ?= build
# The functions' import roots (common/ and each function's package), for the docs tools.
FUNCTIONS_PATH := functions:functions/recommendations:functions/update_traits:functions/batch_traits
LAMBDA_PYTHON_VERSION ?= 3.13
LAMBDA_ARCH ?= arm64
# Provider mirror used by `terraform init` in tests and the sandbox (no network).
TF_PLUGIN_MIRROR ?= /opt/tf-plugins
# Options for pytest in every test target, e.g. PYTEST_ARGS='-m "not slow"' (skips the tests that
# build artifacts or run Terraform) or PYTEST_ARGS='-k profiles -x'.
PYTEST_ARGS ?=
SANDBOX_ARGS ?=
# Read before any recipe runs: empty when this make is about to create .venv from nothing,
# which tests/e2e/test_makefile.py takes as its fresh-clone check (no second venv build).
VENV_BEFORE := $(wildcard $(VENV)/.installed)
# Test files run on this many pytest-xdist workers (0: in this process); each file's tests stay
# on one worker. A line per finished file (tests/tiers.py), then the 20 slowest steps.
TEST_WORKERS ?= 2
PYTEST := TF_PLUGIN_MIRROR=$(TF_PLUGIN_MIRROR) BUNDLE_FRESH_VENV=$(if $(VENV_BEFORE),,1) \
  $(BIN)/python -m pytest --file-progress --durations=20 --durations-min=1
PARALLEL = -n $(TEST_WORKERS) --dist loadfile

export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help package test test-unit test-integration test-e2e lint fmt lock clean sandbox bench

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  make %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: requirements/dev.txt requirements/runtime.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade 'pip>=24'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements/dev.txt
	touch $@

$(VENV)/checkov/.installed: requirements/checkov.txt
	test -x $(VENV)/checkov/bin/python || $(PYTHON) -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements/checkov.txt
	touch $@

$(VENV): $(VENV)/.installed $(VENV)/checkov/.installed

package: $(VENV) ## build build/<function>/function.zip and build/layer.zip (deterministic)
	$(BIN)/python scripts/package.py --out $(BUILD) --python-version $(LAMBDA_PYTHON_VERSION) --arch $(LAMBDA_ARCH)

test: $(VENV) ## set up .venv if needed, then run every test (the three tiers below)
	$(PYTEST) $(PARALLEL) $(PYTEST_ARGS)

test-unit: $(VENV)/.installed ## unit tier: in-process, no subprocess or socket (seconds)
	$(PYTEST) tests/unit $(PYTEST_ARGS)

test-integration: $(VENV)/.installed ## integration tier: emulators and moto on 127.0.0.1
	$(PYTEST) $(PARALLEL) tests/integration $(PYTEST_ARGS)

test-e2e: $(VENV) ## end-to-end tier: sandbox, CLI, Terraform on moto, checkov, bench smoke
	$(PYTEST) $(PARALLEL) tests/e2e $(PYTEST_ARGS)

lint: $(VENV) ## ruff check, ruff format --check, mypy (functions/, scripts/), terraform fmt -check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	MYPYPATH=functions $(BIN)/mypy --explicit-package-bases functions/common
	for app in functions/*/app.py; do \
	  dir=$$(dirname "$$app"); MYPYPATH=functions:$$dir $(BIN)/mypy --explicit-package-bases "$$dir"; \
	done
	MYPYPATH=scripts:functions:functions/recommendations:functions/update_traits:functions/batch_traits $(BIN)/mypy --explicit-package-bases scripts scripts/bundle
	if [ -n "$$(find terraform -name '*.tf' 2>/dev/null | head -n1)" ]; then TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive terraform; fi
	PYTHONPATH=scripts $(BIN)/python -m tf.module_docs --check
	PYTHONPATH=scripts:$(FUNCTIONS_PATH) $(BIN)/python -m docs.env_tables --check
	PYTHONPATH=scripts $(BIN)/python -m docs.links

fmt: $(VENV) ## fix formatting and autofixable lint (Python and Terraform)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	if [ -d terraform ]; then TF_CLI_CONFIG_FILE=/dev/null terraform fmt -recursive terraform; fi
	PYTHONPATH=scripts $(BIN)/python -m tf.module_docs
	PYTHONPATH=scripts:$(FUNCTIONS_PATH) $(BIN)/python -m docs.env_tables

lock: ## re-pin requirements/*.txt with pip-tools (hashes)
	test -x $(BIN)/pip-compile || { $(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip install --quiet pip-tools; }
	cd requirements && ../$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links --upgrade -o runtime.txt runtime.in
	cd requirements && ../$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links --upgrade -o dev.txt dev.in
	cd requirements && ../$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links --upgrade -o checkov.txt checkov.in

sandbox: $(VENV)/.installed ## run the whole system locally on emulators (foreground, Ctrl-C stops it)
	PYTHONPATH=scripts $(BIN)/python -m sandbox $(SANDBOX_ARGS)

bench: $(VENV) ## run the benchmarks against the local emulators; tables printed, figures in build/bench.json
	rm -f $(BUILD)/bench.json
	PYTHONPATH=scripts:functions $(BIN)/python scripts/bench/recommendations.py
	PYTHONPATH=scripts:functions $(BIN)/python scripts/bench/traits.py --json $(BUILD)/bench.json
	PYTHONPATH=scripts:functions $(BIN)/python scripts/bench/sustained.py --json $(BUILD)/bench.json
	PYTHONPATH=scripts:functions $(BIN)/python scripts/bench/capacity.py --json $(BUILD)/bench.json
	PYTHONPATH=scripts:functions $(BIN)/python scripts/bench/batch.py --json $(BUILD)/bench.json

clean: ## remove build outputs, caches and .venv
	rm -rf $(BUILD) $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find terraform -name .terraform -type d -prune -exec rm -rf {} + 2>/dev/null || true
