"""IAM documents: no wildcard action anywhere, and Resource "*" only for the allow-listed actions."""

import json

import pytest
from ngu_policies import iam

from tests.policy.harness import resource_messages

ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/s"


def document(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action, resource, **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (allow("*", STREAM_ARN), "statement 0 allows '*'"),
        (allow(["kinesis:GetRecords", "kinesis:*"], STREAM_ARN, Sid="Read"), "statement 'Read' allows 'kinesis:*'"),
        ({"Effect": "Allow", "NotAction": "iam:*", "Resource": STREAM_ARN}, "allows NotAction"),
    ],
)
def test_wildcard_actions_are_rejected(statement, expected):
    [message] = resource_messages(iam.iam_no_wildcard_action, ROLE_POLICY, {"policy": document(statement)})
    assert message.startswith("policy ") and expected in message


def test_deny_with_a_wildcard_is_fine():
    statement = {"Effect": "Deny", "Action": "*", "Resource": "*"}
    assert resource_messages(iam.iam_no_wildcard_action, ROLE_POLICY, {"policy": document(statement)}) == []
    assert resource_messages(iam.iam_wildcard_resource, ROLE_POLICY, {"policy": document(statement)}) == []


def test_role_inline_policies_are_checked_by_name():
    role = {"inlinePolicies": [{"name": "publish", "policy": document(allow("kinesis:*", STREAM_ARN))}]}
    [message] = resource_messages(iam.iam_no_wildcard_action, "aws:iam/role:Role", role)
    assert message.startswith("inlinePolicies[publish] statement 0 allows 'kinesis:*'")


def test_invalid_json_is_reported_once():
    inputs = {"policy": "{not json"}
    [message] = resource_messages(iam.iam_no_wildcard_action, ROLE_POLICY, inputs)
    assert message.startswith("policy is not valid JSON")
    assert resource_messages(iam.iam_wildcard_resource, ROLE_POLICY, inputs) == []


def test_resource_wildcard_for_allow_listed_actions_passes():
    statement = allow(["xray:PutTraceSegments", "cloudwatch:PutMetricData"], "*")
    assert resource_messages(iam.iam_wildcard_resource, ROLE_POLICY, {"policy": document(statement)}) == []


def test_resource_wildcard_for_other_actions_names_them():
    statement = allow(["xray:PutTraceSegments", "dynamodb:PutItem", "kinesis:GetRecords"], ["*"])
    [message] = resource_messages(iam.iam_wildcard_resource, "aws:iam/policy:Policy", {"policy": document(statement)})
    assert 'grants dynamodb:PutItem, kinesis:GetRecords on Resource "*"' in message


def test_resource_wildcard_allow_list_comes_from_config():
    statement = allow("logs:CreateLogGroup", "*")
    inputs = {"policy": document(statement)}
    assert resource_messages(iam.iam_wildcard_resource, ROLE_POLICY, inputs) != []
    config = {"allowedActions": ["logs:CreateLogGroup"]}
    assert resource_messages(iam.iam_wildcard_resource, ROLE_POLICY, inputs, config) == []


def test_not_resource_is_rejected():
    statement = {"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::secret/*"}
    [message] = resource_messages(iam.iam_wildcard_resource, ROLE_POLICY, {"policy": document(statement)})
    assert "allows NotResource" in message
