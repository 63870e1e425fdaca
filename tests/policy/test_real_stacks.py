"""The real prod and staging programs, recorded under mocks by tools.record_stack, analysed by the real pack."""

import importlib.util

import pytest

from tests.policy.test_protocol import BREAKAGES, assert_exactly, packs, run  # noqa: F401 - packs is a fixture
from tools import policy_check

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("tools.record_stack") is None,
        reason="tools/record_stack.py (the stack program under mocks, issue 4) is not on this branch yet",
    ),
]


@pytest.fixture(scope="module")
def recorded():
    stacks = {}

    def get(stack):
        if stack not in stacks:
            stacks[stack] = policy_check.record(stack)
        return stacks[stack]

    return get


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_program_has_no_mandatory_violation(packs, recorded, stack):  # noqa: F811
    report = run(packs, recorded(stack), stack=stack)
    assert [(v.policy, v.urn, v.message) for v in report.mandatory] == []


@pytest.mark.parametrize("case", list(BREAKAGES))
def test_breakage_of_the_prod_program_yields_exactly_the_matching_violation(packs, recorded, case):  # noqa: F811
    resources, urn = BREAKAGES[case].apply(recorded("prod"))
    assert_exactly(run(packs, resources), BREAKAGES[case], urn, resources)


def test_pack_started_as_prod_rejects_the_staging_program(packs, recorded):  # noqa: F811
    report = run(packs, recorded("staging"), stack="prod")
    assert report.mandatory, "the staging program passes prod's policy config: its thresholds are not laxer"
