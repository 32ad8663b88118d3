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
LAMBDA_PYTHON_VERSION ?= 3.13
LAMBDA_ARCH ?= arm64
# Provider mirror used by `terraform init` in tests and the sandbox (no network).
TF_PLUGIN_MIRROR ?= /opt/tf-plugins
PYTEST_ARGS ?=
SANDBOX_ARGS ?=

export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help package test lint fmt lock clean sandbox bench

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

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

test: $(VENV) ## set up .venv if needed, then run every test
	TF_PLUGIN_MIRROR=$(TF_PLUGIN_MIRROR) $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV) ## ruff check, ruff format --check, mypy, terraform fmt -check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	MYPYPATH=functions $(BIN)/mypy --explicit-package-bases functions/common
	for app in functions/*/app.py; do \
	  dir=$$(dirname "$$app"); MYPYPATH=functions:$$dir $(BIN)/mypy --explicit-package-bases "$$dir"; \
	done
	if [ -n "$$(find terraform -name '*.tf' 2>/dev/null | head -n1)" ]; then TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive terraform; fi
	PYTHONPATH=scripts $(BIN)/python -m tf.module_docs --check

fmt: $(VENV) ## fix formatting and autofixable lint (Python and Terraform)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	if [ -d terraform ]; then TF_CLI_CONFIG_FILE=/dev/null terraform fmt -recursive terraform; fi
	PYTHONPATH=scripts $(BIN)/python -m tf.module_docs

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
	PYTHONPATH=scripts:functions $(BIN)/python scripts/bench/batch.py --json $(BUILD)/bench.json

clean: ## remove build outputs, caches and .venv
	rm -rf $(BUILD) $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find terraform -name .terraform -type d -prune -exec rm -rf {} + 2>/dev/null || true
