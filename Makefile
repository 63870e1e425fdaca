# Every target works on a fresh machine: the venv and node modules are created when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP_VERSION := 26.3
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: venv node test lint clean demo policy policy-venv

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check pip==$(PIP_VERSION)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt --group dev
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --editable .
	touch $(STAMP)

# anvil (the local chain) and solc come from the npm registry, pinned by package-lock.json.
node: $(NODE_STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

test: venv node
	$(PY) -m pytest -q

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache .hypothesis policy/venv

# The whole pipeline on this machine: anvil -> monitor -> Kinesis -> consumer -> DynamoDB (moto).
demo: venv node
	$(PY) -m app demo

# The policy pack runs in its own virtualenv (policy/PulumiPolicy.yaml), created as the CLI creates it.
POLICY_VENV := policy/venv
POLICY_STAMP := $(POLICY_VENV)/.installed

policy-venv: $(POLICY_STAMP)

$(POLICY_STAMP): policy/requirements.txt
	test -x $(POLICY_VENV)/bin/python || $(PYTHON) -m venv $(POLICY_VENV)
	$(POLICY_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r policy/requirements.txt
	touch $(POLICY_STAMP)

# make policy STACK=prod: the stack program under mocks, checked by the pack as pulumi preview would.
policy: venv policy-venv
	@test -n "$(STACK)" || { echo "make policy: set STACK, e.g. make policy STACK=prod" >&2; exit 2; }
	$(PY) -m tools.policy_check --stack $(STACK) --python $(POLICY_VENV)/bin/python
