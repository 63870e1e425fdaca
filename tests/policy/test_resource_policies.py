"""Every violation branch of the resource policies, one row each: the mutated input and the message."""

import copy
from typing import Any

import pytest
from ngu_policies import data, ec2, functions, iam, kinesis, mappings, tags
from pulumi_policy.proxy import UNKNOWN_BOOLEAN_VALUE, UNKNOWN_NUMBER_VALUE, UNKNOWN_STRING_VALUE

from tests.policy.cases import policy_config, stack
from tests.policy.harness import resource_messages

STREAM = "aws:kinesis/stream:Stream"
FUNCTION = "aws:lambda/function:Function"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
TABLE = "aws:dynamodb/table:Table"
INSTANCE = "aws:ec2/instance:Instance"


def baseline(name: str) -> tuple[str, dict[str, Any]]:
    resource = next(r for r in stack("prod") if r.name == name)
    return resource.type, resource.inputs


def _set(path: str, value: Any):
    def change(inputs: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        target = inputs
        for key in parents:
            target = target.setdefault(key, {})
        if value is _DELETE:
            target.pop(leaf, None)
        else:
            target[leaf] = value

    return change


_DELETE = object()

# (policy, baseline resource, change, expected fragment of the one message)
VIOLATIONS = [
    (
        kinesis.kinesis_retention,
        "events-stream",
        _set("retentionPeriod", 12),
        "retentionPeriod is 12 h; this stack requires at least 24 h",
    ),
    (
        kinesis.kinesis_encryption,
        "events-stream",
        _set("encryptionType", _DELETE),
        'encryptionType is "NONE"; set it to "KMS"',
    ),
    (
        kinesis.kinesis_encryption,
        "events-stream",
        _set("kmsKeyId", ""),
        'encryptionType is "KMS" but kmsKeyId is empty',
    ),
    (
        kinesis.kinesis_on_demand_shards,
        "events-stream",
        _set("shardCount", 4),
        "streamMode is ON_DEMAND but shardCount is 4",
    ),
    (
        functions.lambda_tracing,
        "consumer-function",
        _set("tracingConfig.mode", "PassThrough"),
        'tracingConfig.mode is "PassThrough"',
    ),
    (
        functions.lambda_tracing,
        "consumer-function",
        _set("tracingConfig", _DELETE),
        'tracingConfig.mode is "PassThrough"',
    ),
    (
        functions.lambda_reserved_concurrency,
        "consumer-function",
        _set("reservedConcurrentExecutions", _DELETE),
        "reservedConcurrentExecutions is not set",
    ),
    (
        functions.lambda_reserved_concurrency,
        "consumer-function",
        _set("reservedConcurrentExecutions", -1),
        "reservedConcurrentExecutions is not set",
    ),
    (
        functions.lambda_reserved_concurrency,
        "consumer-function",
        _set("reservedConcurrentExecutions", 0),
        "reservedConcurrentExecutions is 0, which throttles every invocation",
    ),
    (
        functions.lambda_reserved_concurrency,
        "consumer-function",
        _set("reservedConcurrentExecutions", 20),
        "reservedConcurrentExecutions is 20; this stack requires at least 40",
    ),
    (
        mappings.mapping_failure_handling,
        "consumer-mapping",
        _set("functionResponseTypes", []),
        'functionResponseTypes lacks "ReportBatchItemFailures"',
    ),
    (
        mappings.mapping_failure_handling,
        "consumer-mapping",
        _set("bisectBatchOnFunctionError", False),
        "bisectBatchOnFunctionError is not true",
    ),
    (
        mappings.mapping_failure_handling,
        "consumer-mapping",
        _set("maximumRetryAttempts", -1),
        "maximumRetryAttempts is not set (infinite)",
    ),
    (
        mappings.mapping_failure_handling,
        "consumer-mapping",
        _set("maximumRetryAttempts", 4),
        "maximumRetryAttempts is 4; this stack allows at most 3",
    ),
    (
        mappings.mapping_failure_handling,
        "consumer-mapping",
        _set("destinationConfig", _DELETE),
        "destinationConfig.onFailure.destinationArn is not set",
    ),
    (
        mappings.mapping_failure_handling,
        "consumer-mapping",
        _set("metricsConfig", _DELETE),
        'metricsConfig.metrics lacks "EventCount"',
    ),
    (
        data.dynamodb_recovery,
        "tables-points",
        _set("pointInTimeRecovery.enabled", False),
        "pointInTimeRecovery.enabled is not true",
    ),
    (
        data.dynamodb_recovery,
        "tables-points",
        _set("serverSideEncryption", _DELETE),
        "serverSideEncryption.enabled is not true",
    ),
    (
        data.queue_topic_encryption,
        "consumer-quarantine",
        _set("sqsManagedSseEnabled", False),
        "neither sqsManagedSseEnabled nor kmsMasterKeyId is set",
    ),
    (data.queue_topic_encryption, "alarms-page", _set("kmsMasterKeyId", _DELETE), "kmsMasterKeyId is not set"),
    (
        ec2.ec2_imdsv2,
        "monitor-host",
        _set("metadataOptions.httpTokens", "optional"),
        'metadataOptions.httpTokens is "optional"; set it to "required"',
    ),
    (ec2.ec2_imdsv2, "monitor-host", _set("metadataOptions", _DELETE), 'metadataOptions.httpTokens is "optional"'),
    (ec2.ec2_no_public_ip, "monitor-host", _set("associatePublicIpAddress", True), "associatePublicIpAddress is true"),
    (
        ec2.ec2_no_public_ip,
        "monitor-host",
        _set("associatePublicIpAddress", _DELETE),
        "associatePublicIpAddress is not set to false",
    ),
    (
        ec2.ec2_no_open_ingress,
        "monitor-sg",
        _set("ingress", [{"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0"]}]),
        "ingress[0] admits 0.0.0.0/0 on ports 22",
    ),
    (
        ec2.ec2_no_open_ingress,
        "monitor-sg",
        _set("ingress", [{"protocol": "-1", "ipv6CidrBlocks": ["::/0"]}]),
        "ingress[0] admits ::/0 on ports all",
    ),
    (tags.required_tags, "events-stream", _set("tags", {"Environment": "prod"}), "tags lack Service"),
    (tags.required_tags, "events-stream", _set("tags", _DELETE), "tags lack Environment, Service"),
    (
        tags.required_tags,
        "events-stream",
        _set("tags.Environment", "staging"),
        'tag Environment is "staging"; this stack requires "prod"',
    ),
]


@pytest.mark.parametrize(("policy", "name", "change", "expected"), VIOLATIONS, ids=lambda v: getattr(v, "name", None))
def test_violation_is_reported_with_a_clear_message(policy, name, change, expected):
    type_, inputs = baseline(name)
    inputs = copy.deepcopy(inputs)
    change(inputs)
    messages = resource_messages(policy, type_, inputs, policy_config("prod", policy.name))
    assert len(messages) == 1, messages
    assert expected in messages[0]


UNKNOWN_AT_PREVIEW = [
    (kinesis.kinesis_retention, STREAM, {"retentionPeriod": UNKNOWN_NUMBER_VALUE}),
    (kinesis.kinesis_encryption, STREAM, {"encryptionType": UNKNOWN_STRING_VALUE}),
    (kinesis.kinesis_encryption, STREAM, {"encryptionType": "KMS", "kmsKeyId": UNKNOWN_STRING_VALUE}),
    (functions.lambda_tracing, FUNCTION, {"tracingConfig": UNKNOWN_STRING_VALUE}),
    (functions.lambda_reserved_concurrency, FUNCTION, {"reservedConcurrentExecutions": UNKNOWN_NUMBER_VALUE}),
    (
        mappings.mapping_failure_handling,
        MAPPING,
        {
            "eventSourceArn": UNKNOWN_STRING_VALUE,
            "startingPosition": "TRIM_HORIZON",
            "functionResponseTypes": UNKNOWN_STRING_VALUE,
            "bisectBatchOnFunctionError": UNKNOWN_BOOLEAN_VALUE,
            "maximumRetryAttempts": UNKNOWN_NUMBER_VALUE,
            "destinationConfig": {"onFailure": {"destinationArn": UNKNOWN_STRING_VALUE}},
            "metricsConfig": UNKNOWN_STRING_VALUE,
        },
    ),
    (
        data.dynamodb_recovery,
        TABLE,
        {"pointInTimeRecovery": UNKNOWN_STRING_VALUE, "serverSideEncryption": {"enabled": UNKNOWN_BOOLEAN_VALUE}},
    ),
    (ec2.ec2_imdsv2, INSTANCE, {"metadataOptions": {"httpTokens": UNKNOWN_STRING_VALUE}}),
    (ec2.ec2_no_open_ingress, "aws:ec2/securityGroup:SecurityGroup", {"ingress": UNKNOWN_STRING_VALUE}),
    (
        ec2.ec2_no_open_ingress,
        "aws:ec2/securityGroup:SecurityGroup",
        {"ingress": [{"cidrBlocks": [UNKNOWN_STRING_VALUE]}]},
    ),
    (iam.iam_no_wildcard_action, "aws:iam/rolePolicy:RolePolicy", {"policy": UNKNOWN_STRING_VALUE}),
    (tags.required_tags, STREAM, {"tags": UNKNOWN_STRING_VALUE}),
    (
        tags.required_tags,
        STREAM,
        {"tags": {"Environment": UNKNOWN_STRING_VALUE, "Service": "ngu-points-event-processor"}},
    ),
]


@pytest.mark.parametrize(("policy", "type_", "inputs"), UNKNOWN_AT_PREVIEW, ids=lambda v: getattr(v, "name", None))
def test_values_unknown_at_preview_are_skipped_not_crashed_on(policy, type_, inputs):
    assert resource_messages(policy, type_, inputs, policy_config("prod", policy.name)) == []


def test_mapping_from_a_queue_is_not_held_to_stream_rules():
    inputs = {"eventSourceArn": "arn:aws:sqs:us-east-1:123456789012:jobs", "functionName": "f"}
    assert resource_messages(mappings.mapping_failure_handling, MAPPING, inputs) == []


def test_mapping_from_a_dynamodb_stream_is_held_to_stream_rules():
    inputs = {"eventSourceArn": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-01-01T00:00:00.000"}
    assert len(resource_messages(mappings.mapping_failure_handling, MAPPING, inputs)) == 5


def test_launch_template_public_interface_and_elastic_ip_and_public_subnet_are_public_addresses():
    template = {
        "networkInterfaces": [{"associatePublicIpAddress": "true"}],
        "metadataOptions": {"httpTokens": "required"},
    }
    assert resource_messages(ec2.ec2_no_public_ip, "aws:ec2/launchTemplate:LaunchTemplate", template) == [
        "networkInterfaces[0].associatePublicIpAddress is true; the host needs no public address"
    ]
    assert "Elastic IP" in resource_messages(ec2.ec2_no_public_ip, "aws:ec2/eip:Eip", {"instance": "i-1"})[0]
    subnet = resource_messages(ec2.ec2_no_public_ip, "aws:ec2/subnet:Subnet", {"mapPublicIpOnLaunch": True})
    assert "mapPublicIpOnLaunch is true" in subnet[0]


def test_instance_from_a_launch_template_defers_to_the_template():
    inputs = {"launchTemplate": {"id": "lt-1"}}
    assert resource_messages(ec2.ec2_no_public_ip, INSTANCE, inputs) == []
    assert resource_messages(ec2.ec2_imdsv2, INSTANCE, inputs) == []


def test_imds_disabled_needs_no_tokens():
    assert resource_messages(ec2.ec2_imdsv2, INSTANCE, {"metadataOptions": {"httpEndpoint": "disabled"}}) == []


@pytest.mark.parametrize(
    ("type_", "rule"),
    [
        (
            "aws:ec2/securityGroupRule:SecurityGroupRule",
            {"type": "ingress", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]},
        ),
        (
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            {"fromPort": 0, "toPort": 65535, "cidrIpv6": "::/0"},
        ),
    ],
)
def test_standalone_ingress_rules_from_anywhere_are_rejected(type_, rule):
    [message] = resource_messages(ec2.ec2_no_open_ingress, type_, rule)
    assert "ingress rule admits" in message


def test_egress_rule_to_anywhere_is_fine():
    rule = {"type": "egress", "cidrBlocks": ["0.0.0.0/0"]}
    assert resource_messages(ec2.ec2_no_open_ingress, "aws:ec2/securityGroupRule:SecurityGroupRule", rule) == []


def test_autoscaling_group_tag_blocks_are_read_as_tags():
    group = "aws:autoscaling/group:Group"
    blocks = [{"key": "Environment", "value": "prod", "propagateAtLaunch": True}]
    [message] = resource_messages(tags.required_tags, group, {"tags": blocks}, policy_config("prod", "required-tags"))
    assert "tags lack Service" in message
    blocks.append({"key": "Service", "value": "ngu-points-event-processor", "propagateAtLaunch": True})
    assert resource_messages(tags.required_tags, group, {"tags": blocks}, policy_config("prod", "required-tags")) == []


def test_untaggable_types_need_no_tags():
    assert resource_messages(tags.required_tags, "aws:iam/rolePolicy:RolePolicy", {"policy": "{}"}) == []
    assert resource_messages(tags.required_tags, "ngu:pipeline:EventStream", {}) == []


def test_tag_values_are_free_when_the_stack_does_not_pin_them():
    inputs = {"tags": {"Environment": "anything", "Service": "x"}}
    assert resource_messages(tags.required_tags, STREAM, inputs) == []
