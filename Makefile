# medsum — the two commands: `make run` (the whole service, offline) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install run test test-unit test-integration test-e2e lint typecheck cfn-lint check bench bench-batch eval clean

help:
	@echo "make run     start the whole service offline (API on http://127.0.0.1:3000)"
	@echo "make test    install (if needed) and run every test suite"
	@echo "make check   ruff, ruff format --check, mypy, cfn-lint and the tests (the CI gate)"
	@echo "make bench   benchmarks (results go in BENCHMARKS.md)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/medsum-local --allow-localhost-webhooks

test: $(STAMP)
	$(BIN)/pytest -q

test-unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

test-integration: $(STAMP)
	$(BIN)/pytest -q tests/integration tests/template

test-e2e: $(STAMP)
	$(BIN)/pytest -q tests/e2e

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

cfn-lint: $(STAMP)
	$(BIN)/cfn-lint template.yaml

check: lint typecheck cfn-lint test

bench: $(STAMP)
	$(BIN)/python bench/cold_start.py
	$(BIN)/python bench/eval_local_model.py
	$(BIN)/python bench/batch_calls.py inline:1000 upload:1000 upload:10000

bench-batch: $(STAMP)
	$(BIN)/python bench/batch_cli_local.py 1000 1500

clean:
	rm -rf $(VENV) .medsum .pytest_cache .mypy_cache .ruff_cache .aws-sam
