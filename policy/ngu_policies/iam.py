"""IAM: no statement allows every action, and `Resource: "*"` only for actions that take no resource ARN."""

import json
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from .props import UNKNOWN, elements, get, is_unknown, known_strings, schema, settings

# Identity policies: each type and the input that holds its JSON document.
POLICY_DOCUMENT_INPUTS = {
    "aws:iam/policy:Policy": "policy",
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/userPolicy:UserPolicy": "policy",
    "aws:iam/groupPolicy:GroupPolicy": "policy",
}
ROLE = "aws:iam/role:Role"


def _documents(args: ResourceValidationArgs) -> Iterator[tuple[str, Any]]:
    """(where, document) for every policy document of the resource; documents not known yet are skipped."""
    if args.resource_type in POLICY_DOCUMENT_INPUTS:
        key = POLICY_DOCUMENT_INPUTS[args.resource_type]
        yield key, get(args.props, key)
    elif args.resource_type == ROLE:
        inline = elements(get(args.props, "inlinePolicies"))
        for i, policy in enumerate([] if inline is UNKNOWN else inline):
            name = get(policy, "name")
            yield f"inlinePolicies[{name if isinstance(name, str) else i}]", get(policy, "policy")


def _statements(document: Any) -> list[Any] | str:
    """The document's statements, or an error message when it is not a policy document."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError as error:
            return f"is not valid JSON ({error.msg} at line {error.lineno} column {error.colno})"
    if not isinstance(document, Mapping):
        return "is not a JSON object"
    statements = elements(get(document, "Statement"))
    return [] if statements is UNKNOWN else [s for s in statements if isinstance(s, Mapping)]


def _allow_statements(
    args: ResourceValidationArgs, report_invalid: ReportViolation | None
) -> Iterator[tuple[str, Mapping]]:
    for where, document in _documents(args):
        if document is None or is_unknown(document):
            continue
        statements = _statements(document)
        if isinstance(statements, str):
            if report_invalid is not None:
                report_invalid(f"{where} {statements}")
            continue
        for index, statement in enumerate(statements):
            if get(statement, "Effect") == "Allow":
                sid = get(statement, "Sid")
                yield (
                    (f"{where} statement {sid!r}" if isinstance(sid, str) and sid else f"{where} statement {index}"),
                    statement,
                )


def _is_wildcard_action(action: str) -> bool:
    return action == "*" or action.endswith(":*")


def _no_wildcard_action(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for where, statement in _allow_statements(args, report):
        if get(statement, "NotAction") is not None:
            report(f"{where} allows NotAction, which grants every other action; list the actions instead")
        wildcards = sorted({a for a in known_strings(get(statement, "Action")) if _is_wildcard_action(a)})
        if wildcards:
            report(f"{where} allows {', '.join(repr(a) for a in wildcards)}; list the actions it needs")


RESOURCE_WILDCARD_CONFIG = schema(
    allowedActions={
        "type": "array",
        "items": {"type": "string", "pattern": "^[a-zA-Z0-9-]+:[a-zA-Z0-9]+$"},
        "uniqueItems": True,
        "default": [
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
            "cloudwatch:PutMetricData",
            "ec2:CreateNetworkInterface",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DeleteNetworkInterface",
            "ec2:AssignPrivateIpAddresses",
            "ec2:UnassignPrivateIpAddresses",
        ],
    },
)


def _resource_wildcard(args: ResourceValidationArgs, report: ReportViolation) -> None:
    allow_list = settings(args, RESOURCE_WILDCARD_CONFIG)["allowedActions"]
    allowed = {a.lower() for a in allow_list}
    # An invalid document is reported once, by iam-no-wildcard-action.
    for where, statement in _allow_statements(args, None):
        if get(statement, "NotResource") is not None:
            report(f"{where} allows NotResource, which grants every other resource; name the resources instead")
        if "*" not in set(known_strings(get(statement, "Resource"))):
            continue
        outside = sorted({a for a in known_strings(get(statement, "Action")) if a.lower() not in allowed})
        if outside:
            report(
                f'{where} grants {", ".join(outside)} on Resource "*"; only {", ".join(allow_list)} may use "*" — '
                "scope the rest to ARNs"
            )


iam_no_wildcard_action = ResourceValidationPolicy(
    name="iam-no-wildcard-action",
    description='IAM policies allow no "*" or "service:*" action (nor NotAction).',
    validate=_no_wildcard_action,
)

iam_wildcard_resource = ResourceValidationPolicy(
    name="iam-wildcard-resource-allowlist",
    description='IAM policies use Resource "*" only for the allow-listed actions that take no resource ARN.',
    validate=_resource_wildcard,
    config_schema=RESOURCE_WILDCARD_CONFIG,
)

POLICIES = [iam_no_wildcard_action, iam_wildcard_resource]
