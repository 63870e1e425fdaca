"""Run one policy directly, on inputs prepared exactly as the analyzer runtime prepares them: through a
protobuf Struct (numbers become floats), deserialised, and wrapped in the unknown-checking proxy."""

from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import unknown_checking_proxy

from tools.policy_check import Resource, _struct


def _props(inputs: Mapping[str, Any]):
    return unknown_checking_proxy(deserialize_properties(json_format.MessageToDict(_struct(inputs))))


def _options(resource: Resource) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        resource.protect, [], resource.delete_before_replace, [], PolicyCustomTimeouts(0, 0, 0), [], resource.parent
    )


def resource_messages(
    policy: ResourceValidationPolicy, type_: str, inputs: Mapping[str, Any], config: Mapping[str, Any] | None = None
) -> list[str]:
    """The violation messages `policy` reports for one resource."""
    resource = Resource(type_, "subject", f"urn:pulumi:test::p::{type_}::subject", dict(inputs))
    args = ResourceValidationArgs(type_, _props(inputs), resource.urn, resource.name, _options(resource), None, config)
    messages: list[str] = []
    policy.validate(args, lambda message, urn=None: messages.append(message))
    return messages


def stack_messages(
    policy: StackValidationPolicy, resources: list[Resource], config: Mapping[str, Any] | None = None
) -> list[tuple[str, str]]:
    """(resource name, message) for each violation `policy` reports over the stack."""
    views = {
        r.urn: PolicyResource(r.type, _props(r.inputs), r.urn, r.name, _options(r), None, None, [], {})
        for r in resources
    }
    for r in resources:
        views[r.urn].parent = views.get(r.parent or "")
        views[r.urn].dependencies = [views[d] for d in r.dependencies if d in views]
    reported: list[tuple[str, str]] = []

    def report(message: str, urn: str | None = None) -> None:
        reported.append((views[urn].name if urn in views else "(stack)", message))

    policy.validate(StackValidationArgs(list(views.values()), config), report)
    return reported


def messages_of(resources: list[Resource], policy, config: Mapping[str, Any] | None = None) -> list[str]:
    """Every message `policy` reports over a whole stack, resource and stack policies alike."""
    if isinstance(policy, StackValidationPolicy):
        return [message for _, message in stack_messages(policy, resources, config)]
    return [m for r in resources for m in resource_messages(policy, r.type, r.inputs, config)]
