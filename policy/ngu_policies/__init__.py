"""The ngu-points guardrails, one module per area; `POLICIES` is what the pack enforces."""

from . import alarms, data, ec2, functions, iam, kinesis, mappings, tags

POLICIES = [
    *kinesis.POLICIES,
    *functions.POLICIES,
    *mappings.POLICIES,
    *alarms.POLICIES,
    *data.POLICIES,
    *iam.POLICIES,
    *ec2.POLICIES,
    *tags.POLICIES,
]
