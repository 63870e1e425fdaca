"""Least privilege: every role policy the program writes, read back as the engine would send it."""

from __future__ import annotations

import fnmatch
import json

import pytest

from tests.pulumi.conftest import STACKS, as_list, policy_documents, statements
from tools.record_stack import RecordedStack

# The only actions AWS lets no resource narrow (DESIGN §7, the seed's `Resource: "*"` cut down to these).
STAR_RESOURCE_ACTIONS = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "cloudwatch:PutMetricData",
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}


def _role_statements(stack: RecordedStack) -> list[tuple[str, dict]]:
    return [(name, s) for name, doc in policy_documents(stack).items() for s in statements(doc)]


@pytest.mark.parametrize("stack", STACKS)
def test_no_policy_grants_a_wildcard_action(recorded: dict[str, RecordedStack], stack: str) -> None:
    found = _role_statements(recorded[stack])
    assert found, "the program declares role policies"
    for name, statement in found:
        for action in as_list(statement["Action"]):
            assert action != "*" and not action.endswith(":*"), f"{name}: {action}"


@pytest.mark.parametrize("stack", STACKS)
def test_star_resource_only_for_actions_that_take_no_arn(recorded: dict[str, RecordedStack], stack: str) -> None:
    for name, statement in _role_statements(recorded[stack]):
        if "*" in as_list(statement["Resource"]):
            assert set(as_list(statement["Action"])) <= STAR_RESOURCE_ACTIONS, f"{name}: {statement}"


@pytest.mark.parametrize("stack", STACKS)
def test_put_metric_data_is_bound_to_our_namespaces(recorded: dict[str, RecordedStack], stack: str) -> None:
    seen = 0
    for name, statement in _role_statements(recorded[stack]):
        if "cloudwatch:PutMetricData" in as_list(statement["Action"]):
            seen += 1
            namespaces = as_list(statement["Condition"]["StringEquals"]["cloudwatch:namespace"])
            assert namespaces and all(n.startswith("NGUPoints/") for n in namespaces), name
    assert seen == 2  # the processor and the monitor


def test_processor_policies_name_exactly_what_the_handler_uses(prod: RecordedStack) -> None:
    documents = policy_documents(prod)
    dynamodb = statements(documents["processor-DynamoDBAccess"])
    assert [set(s["Action"]) for s in dynamodb] == [
        {"dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:UpdateItem"}
    ]
    assert sorted(dynamodb[0]["Resource"]) == [
        "arn:aws:dynamodb:us-east-1:123456789012:table/ngu-points-core-v5-points-prod",
        "arn:aws:dynamodb:us-east-1:123456789012:table/ngu-points-core-v5-tokens-prod",
    ]
    (quarantine,) = statements(documents["processor-QuarantineAccess"])
    assert quarantine["Action"] == ["sqs:SendMessage"]
    assert quarantine["Resource"].endswith(":ngu-points-prod-quarantine")
    kinesis = {s["Sid"]: s for s in statements(documents["processor-KinesisAccess"])}
    assert kinesis["ReadStream"]["Resource"].endswith(":stream/ngu-points-core-v5-events-prod-v5")
    assert kinesis["DecryptStream"]["Action"] == ["kms:Decrypt"]
    failures = {s["Sid"]: s for s in statements(documents["processor-OnFailureDestination"])}
    assert failures["WriteFailedBatches"]["Resource"] == "arn:aws:s3:::ngu-points-prod-failed-batches-123456789012/*"


def test_monitor_role_publishes_reads_its_parameters_and_keeps_its_checkpoint(prod: RecordedStack) -> None:
    documents = policy_documents(prod)
    monitor = {name.removeprefix("monitor-") for name in documents if name.startswith("monitor-")}
    assert monitor == {"KinesisAccess", "SSMAccess", "StateTableAccess", "MetricsAccess", "BundleAccess"}
    (ssm,) = statements(documents["monitor-SSMAccess"])
    assert ssm["Resource"] == "arn:aws:ssm:us-east-1:123456789012:parameter/ngu-points-system-v2/prod/*"
    (state,) = statements(documents["monitor-StateTableAccess"])
    assert state["Resource"].endswith(":table/ngu-points-core-v5-monitor-prod")
    assert set(state["Action"]) == {"dynamodb:GetItem", "dynamodb:PutItem"}
    kinesis = {s["Sid"]: s for s in statements(documents["monitor-KinesisAccess"])}
    assert "kinesis:PutRecords" in kinesis["PublishEvents"]["Action"]
    assert kinesis["EncryptRecords"]["Action"] == ["kms:GenerateDataKey"]


def test_direct_sink_rollback_grants_the_ledger_only_when_configured() -> None:
    from tests.pulumi.conftest import project_config
    from tools.record_stack import record_stack

    monitor = {**project_config("staging", "monitor"), "sink": "dynamodb"}
    stack = record_stack("staging", {"ngu-points-event-processor:monitor": json.dumps(monitor)})
    sink, quarantine = statements(policy_documents(stack)["monitor-DirectSinkAccess"])
    assert set(sink["Action"]) == {"dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:UpdateItem"}
    # An event that can never apply goes to the consumer's quarantine queue, and nowhere else.
    assert set(quarantine["Action"]) == {"sqs:GetQueueAttributes", "sqs:SendMessage"}
    assert quarantine["Resource"].endswith(":ngu-points-staging-quarantine")


@pytest.mark.parametrize("stack", STACKS)
def test_alarm_topic_key_lets_cloudwatch_publish(recorded: dict[str, RecordedStack], stack: str) -> None:
    keys = {k.name: json.loads(k.inputs["policy"]) for k in recorded[stack].of_type("aws:kms/key:Key")}
    cloudwatch = [
        s for s in statements(keys["alarms-key"]) if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    # The SNS documentation's statement for CloudWatch alarms, with the confused-deputy conditions.
    assert cloudwatch and set(cloudwatch[0]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert cloudwatch[0]["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    alarm_arns = [a.inputs["name"] for a in recorded[stack].of_type("aws:cloudwatch/metricAlarm:MetricAlarm")]
    patterns = cloudwatch[0]["Condition"]["ArnLike"]["aws:SourceArn"]
    prefix = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:"
    assert all(p.startswith(prefix) and p.endswith("-*") for p in patterns)
    assert len(alarm_arns) > 30
    for alarm in alarm_arns:
        assert any(fnmatch.fnmatchcase(prefix + alarm, p) for p in patterns), alarm
    for document in keys.values():
        for statement in statements(document):
            assert "kms:*" not in as_list(statement["Action"])


@pytest.mark.parametrize("stack", STACKS)
def test_no_allow_anywhere_uses_a_wildcard_action(recorded: dict[str, RecordedStack], stack: str) -> None:
    """Key and bucket policies too. The one wildcard is the buckets' TLS-only Deny, which grants nothing."""
    documents = [
        json.loads(r.inputs["policy"])
        for r in recorded[stack].resources
        if r.type in ("aws:kms/key:Key", "aws:s3/bucketPolicy:BucketPolicy", "aws:iam/rolePolicy:RolePolicy")
    ]
    assert len(documents) > 10
    for document in documents:
        for statement in statements(document):
            wildcard = [a for a in as_list(statement["Action"]) if a == "*" or a.endswith(":*")]
            assert not wildcard or (statement["Effect"] == "Deny" and "aws:SecureTransport" in json.dumps(statement))
