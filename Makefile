# medsum — the two commands: `make run` (the whole service, offline) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install run test test-unit test-integration test-e2e lint typecheck cfn-lint check deploy-lint deploy-check bench bench-batch bench-chaos eval clean

help:
	@echo "make run     start the whole service offline (API on http://127.0.0.1:3000; ARGS=--verbose: JSON logs)"
	@echo "make test    install (if needed) and run every test suite"
	@echo "make check   ruff, ruff format --check, mypy, cfn-lint and the tests (the CI gate)"
	@echo "make deploy-lint   sam validate --lint and checkov on template.yaml (own venvs, no AWS calls)"
	@echo "make deploy-check  deploy-lint, then sam build (needs python3.13 on PATH, the Lambda runtime)"
	@echo "make bench   benchmarks (results go in BENCHMARKS.md)"
	@echo "make eval    medsum eval on the IU dev set against a local stack (EVAL_ARGS: more medsum eval options)"
	@echo "make bench-chaos   faulty model + killed workers on the offline stack (CHAOS_ARGS='--scale 0.2 --reports 40': quick)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# One readable line per request and worker outcome; `make run ARGS=--verbose` (or MEDSUM_LOG_FORMAT=json)
# prints every JSON record instead. ARGS takes any other medsum-local option too.
ARGS ?=
run: $(STAMP)
	$(BIN)/medsum-local --allow-localhost-webhooks $(ARGS)

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

# Deployment tools, each in its own venv (aws-sam-cli and checkov pin conflicting versions). Neither
# target needs AWS credentials or calls AWS: sam validate --lint and sam build are local, checkov reads
# the file. SAM_CLI_TELEMETRY=0 keeps sam from reporting usage.
DEPLOY_VENV ?= .venv-deploy
DEPLOY_PYTHON ?= $(PYTHON)
SAM := SAM_CLI_TELEMETRY=0 AWS_EC2_METADATA_DISABLED=true $(DEPLOY_VENV)/sam/bin/sam

$(DEPLOY_VENV)/%/.installed: deploy/requirements-%.txt
	$(DEPLOY_PYTHON) -m venv $(DEPLOY_VENV)/$*
	$(DEPLOY_VENV)/$*/bin/python -m pip install --quiet -r $<
	touch $@

deploy-lint: $(DEPLOY_VENV)/sam/.installed $(DEPLOY_VENV)/checkov/.installed
	$(SAM) validate --lint --template template.yaml --region us-east-1
	$(DEPLOY_VENV)/checkov/bin/checkov --file template.yaml --framework cloudformation --compact --quiet --skip-download

# The functions and the layer are built for the template's runtime (python3.13, arm64 wheels): sam build
# runs python3.13's pip, so python3.13 must be on PATH (or run `sam build --use-container`).
deploy-check: deploy-lint
	@python3.13 --version >/dev/null 2>&1 || { echo "sam build needs python3.13 on PATH (the Lambda runtime)"; exit 1; }
	$(SAM) build --template template.yaml --region us-east-1

bench: $(STAMP)
	$(BIN)/python bench/cold_start.py
	$(BIN)/python bench/batch_calls.py inline:1000 upload:1000 upload:10000

# `medsum eval` in stack mode on ../shared/data/iu-cxr/dev.jsonl (skipped when absent), on a local stack of
# its own: full text, then with the IMPRESSION section removed. Markdown tables for BENCHMARKS.md.
EVAL_ARGS ?=
eval: $(STAMP)
	$(BIN)/python bench/eval_local_model.py -- $(EVAL_ARGS)

bench-batch: $(STAMP)
	$(BIN)/python bench/batch_cli_local.py 1000 1500

# 200 reports, 8 worker kills, throttling/5xx/slow/over-long model replies; 10-20 minutes. Exits non-zero
# when a target fails (lost reports, sandbox timeouts, slow recovery, duplicate model calls).
CHAOS_ARGS ?=
bench-chaos: $(STAMP)
	$(BIN)/python bench/chaos_local.py $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) $(DEPLOY_VENV) .medsum .pytest_cache .mypy_cache .ruff_cache .aws-sam
