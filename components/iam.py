"""IAM policy documents built from ARNs (outputs), as JSON the engine and policy pack can read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class Statement:
    sid: str
    actions: Sequence[str]
    resources: Sequence[pulumi.Input[str]]
    conditions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    principals: Mapping[str, Any] | None = None
    effect: str = "Allow"

    def render(self) -> dict[str, Any]:
        rendered: dict[str, Any] = {"Sid": self.sid, "Effect": self.effect, "Action": sorted(self.actions)}
        if self.principals is not None:
            rendered["Principal"] = self.principals
        rendered["Resource"] = list(self.resources) if len(self.resources) != 1 else self.resources[0]
        if self.conditions:
            rendered["Condition"] = self.conditions
        return rendered


def document(*statements: Statement) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": [s.render() for s in statements]})


def assume_role_policy(service: str) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )


def service_role(
    name: str,
    *,
    role_name: str,
    description: str,
    service: str,
    policies: Mapping[str, Sequence[Statement]],
    tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> tuple[aws.iam.Role, list[aws.iam.RolePolicy]]:
    """A role `service` assumes, with one inline policy per purpose (named after it)."""
    child = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(
        f"{name}-role",
        name=role_name,
        description=description,
        assume_role_policy=assume_role_policy(service),
        tags=dict(tags),
        opts=child,
    )
    attached = [
        aws.iam.RolePolicy(f"{name}-{purpose}", name=purpose, role=role.id, policy=document(*statements), opts=child)
        for purpose, statements in policies.items()
    ]
    return role, attached
