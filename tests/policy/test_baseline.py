"""Each policy passes the compliant stacks under their own stack's config, and the config files name only
policies the pack has."""

import json

import pytest
from ngu_policies import POLICIES

from tests.policy.cases import CONFIG_DIR, policy_config, stack
from tests.policy.harness import messages_of


@pytest.mark.parametrize("stage", ["prod", "staging"])
@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_compliant_stack_passes(policy, stage):
    assert messages_of(list(stack(stage)), policy, policy_config(stage, policy.name)) == []


def test_policy_names_are_unique():
    names = [p.name for p in POLICIES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("stage", ["prod", "staging"])
def test_config_names_only_existing_policies(stage):
    configured = set(json.loads((CONFIG_DIR / f"{stage}.json").read_text()))
    assert configured - {"all"} <= {p.name for p in POLICIES}
