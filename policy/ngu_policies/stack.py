"""Relations between the resources a stack validation sees."""

from collections.abc import Iterable

from pulumi_policy import PolicyResource


def of_type(resources: Iterable[PolicyResource], *types: str) -> list[PolicyResource]:
    return [r for r in resources if r.resource_type in types]


def depends_on(resource: PolicyResource, other: PolicyResource) -> bool:
    """Whether `resource` takes an input from `other` (directly: the engine records each such edge)."""
    return any(dependency.urn == other.urn for dependency in resource.dependencies)
