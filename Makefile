# Every target works on a fresh machine: the venv and node modules are created when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP_VERSION := 26.3
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: venv node test lint typecheck clean demo policy policy-venv requirements wheelhouse ami preview up

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

lint: venv typecheck
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# components/ and __main__.py against the pulumi-aws SDK's types ([tool.mypy] in pyproject.toml).
typecheck: venv
	$(VENV)/bin/mypy

# requirements.txt, for `pulumi install` and the CLI's own venv creation, from pyproject's infra group.
requirements:
	$(PYTHON) -m tools.requirements

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache .mypy_cache .hypothesis policy/venv build

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

# The monitor's dependencies as wheels for its host (python3.12, the stack's architecture); the stack
# uploads the archive and the host installs offline. Downloads once per pin change.
wheelhouse: venv
	@test -n "$(STACK)" || { echo "make wheelhouse: set STACK, e.g. make wheelhouse STACK=prod" >&2; exit 2; }
	$(PY) -m tools.wheelhouse --stack $(STACK)

# The current latest AL2023 image for the stack's architecture: put it in monitor.amiId deliberately.
ami:
	@test -n "$(STACK)" || { echo "make ami: set STACK, e.g. make ami STACK=prod" >&2; exit 2; }
	aws ssm get-parameter --query Parameter.Value --output text --name \
	  /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-$$(grep -m1 'architecture:' Pulumi.$(STACK).yaml | awk '{print $$2}')

# Every preview and every deploy runs the policy pack with the stack's own config, from a laptop or CI.
POLICY_FLAGS = --policy-pack policy --policy-pack-config policy/config/$(STACK).json

preview: venv policy-venv wheelhouse
	pulumi preview -s $(STACK) $(POLICY_FLAGS) --diff

up: venv policy-venv wheelhouse
	pulumi up -s $(STACK) $(POLICY_FLAGS)
