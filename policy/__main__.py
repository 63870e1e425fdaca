"""The policy pack the Pulumi CLI starts: it only assembles the policies; the constructor serves forever."""

from ngu_policies import POLICIES
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(
    name="ngu-points-guardrails",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=POLICIES,
)
