"""Every value the seed's serverless.yml fixed, as the program declares it, for both stacks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.pulumi.conftest import STACKS, one, project_config
from tools.record_stack import RecordedStack


def dig(value: Any, path: str) -> Any:
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


# (resource type, input path, expected; "{stage}" is the stack's stage)
SEED = [
    ("aws:kinesis/stream:Stream", "name", "ngu-points-core-v5-events-{stage}-v5"),
    ("aws:kinesis/stream:Stream", "retentionPeriod", 24),
    ("aws:kinesis/stream:Stream", "streamModeDetails.streamMode", "ON_DEMAND"),
    ("aws:kinesis/stream:Stream", "tags.Environment", "{stage}"),
    ("aws:kinesis/stream:Stream", "tags.Service", "ngu-points-event-processor"),
    ("aws:lambda/function:Function", "name", "ngu-points-event-processor-{stage}-processKinesisEvents"),
    ("aws:lambda/function:Function", "memorySize", 256),
    ("aws:lambda/function:Function", "timeout", 30),
    ("aws:lambda/function:Function", "reservedConcurrentExecutions", 50),
    ("aws:lambda/function:Function", "tracingConfig.mode", "Active"),
    ("aws:lambda/function:Function", "environment.variables.TOKENS_TABLE", "ngu-points-core-v5-tokens-{stage}"),
    ("aws:lambda/function:Function", "environment.variables.POINTS_TABLE", "ngu-points-core-v5-points-{stage}"),
    ("aws:lambda/function:Function", "vpcConfig.securityGroupIds.0", "sg-0123456789abcdef0"),
    ("aws:lambda/function:Function", "vpcConfig.subnetIds", ["subnet-0000000000000001", "subnet-0000000000000002"]),
    ("aws:lambda/eventSourceMapping:EventSourceMapping", "batchSize", 100),
    ("aws:lambda/eventSourceMapping:EventSourceMapping", "maximumRetryAttempts", 3),
    ("aws:lambda/eventSourceMapping:EventSourceMapping", "bisectBatchOnFunctionError", True),
    ("aws:lambda/eventSourceMapping:EventSourceMapping", "parallelizationFactor", 10),
    ("aws:lambda/eventSourceMapping:EventSourceMapping", "functionResponseTypes", ["ReportBatchItemFailures"]),
    (
        "aws:lambda/eventSourceMapping:EventSourceMapping",
        "eventSourceArn",
        "arn:aws:kinesis:us-east-1:123456789012:stream/ngu-points-core-v5-events-{stage}-v5",
    ),
    ("aws:cloudwatch/logGroup:LogGroup", "retentionInDays", 14),
    ("aws:cloudwatch/logGroup:LogGroup", "name", "/aws/lambda/ngu-points-event-processor-{stage}-processKinesisEvents"),
]


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize(("type_", "path", "expected"), SEED, ids=[f"{t.split(':')[-1]}.{p}" for t, p, _ in SEED])
def test_seed_value(recorded: dict[str, RecordedStack], stack: str, type_: str, path: str, expected: Any) -> None:
    if isinstance(expected, str):
        expected = expected.format(stage=stack)
    assert dig(one(recorded[stack], type_).inputs, path) == expected


SEED_ROLES = [
    ("ngu-points-event-processor-{stage}", "lambda.amazonaws.com"),
    ("ngu-points-event-monitor-{stage}", "ec2.amazonaws.com"),
]


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize(("role_name", "principal"), SEED_ROLES)
def test_seed_roles_keep_their_names_and_principals(
    recorded: dict[str, RecordedStack], stack: str, role_name: str, principal: str
) -> None:
    roles = {r.inputs["name"]: r for r in recorded[stack].of_type("aws:iam/role:Role")}
    trust = json.loads(roles[role_name.format(stage=stack)].inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": principal}
    assert trust["Statement"][0]["Action"] == "sts:AssumeRole"


# The serverless.yml alarms: name suffix, metric, statistic, period, evaluations, prod threshold.
SEED_ALARMS = [
    ("IteratorAge", "GetRecords.IteratorAgeMilliseconds", "AWS/Kinesis", "Maximum", 300, 2, 3600000),
    ("WriteProvisioned", "WriteProvisionedThroughputExceeded", "AWS/Kinesis", "Sum", 300, 2, 1),
    ("LambdaErrors", "Errors", "AWS/Lambda", "Sum", 300, 2, 5),
    ("LambdaDuration", "Duration", "AWS/Lambda", "Maximum", 300, 2, 24000),
]


@pytest.mark.parametrize(("suffix", "metric", "namespace", "stat", "period", "evaluations", "threshold"), SEED_ALARMS)
def test_seed_alarms_keep_names_metrics_and_prod_thresholds(
    prod: RecordedStack,
    suffix: str,
    metric: str,
    namespace: str,
    stat: str,
    period: int,
    evaluations: int,
    threshold: int,
) -> None:
    alarms = {a.inputs["name"]: a.inputs for a in prod.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    alarm = alarms[f"ngu-points-core-v5-events-prod-v5-{suffix}"]
    assert (alarm["metricName"], alarm["namespace"], alarm["statistic"]) == (metric, namespace, stat)
    assert (alarm["period"], alarm["evaluationPeriods"], alarm["threshold"]) == (period, evaluations, threshold)
    assert alarm["comparisonOperator"] == "GreaterThanThreshold"


def test_seed_outputs_are_exported(prod: RecordedStack) -> None:
    assert prod.outputs["KinesisStreamArn"].endswith(":stream/ngu-points-core-v5-events-prod-v5")
    assert prod.outputs["EventProcessorRoleArn"].endswith(":role/ngu-points-event-processor-prod")
    assert prod.outputs["EventMonitorRoleArn"].endswith(":role/ngu-points-event-monitor-prod")
    for more in ("TokensTableName", "PointsTableName", "QuarantineQueueUrl", "FailedBatchesBucket", "DashboardUrl"):
        assert prod.outputs[more], more


# Each stack's own thresholds reach its alarms: (alarm suffix, config key, how the threshold derives).
OWN_THRESHOLDS = [
    ("LambdaErrorRate", "lambdaErrorRatePercent", 1),
    ("WriteThrottled", "writeThrottleEvents", 1),
    ("IteratorAgeWarning", "iteratorAgeNotifyMs", 1),
    ("MonitorBlocksBehind", "monitorBlocksBehind", 1),
    ("QuarantineNotEmpty", "quarantineMessages", 1),
    ("OwnershipGaps", "ownershipGaps", 1),
    ("DynamoDBLatency", "dynamodbLatencyMs", 1),
    ("RollbackProcessingErrorRate", "processingErrorRateRollbackPercent", 1),
    ("LambdaDurationWarning", "lambdaDurationNotifyPercent", 30_000 / 100),  # percent of the 30 s timeout, in ms
    ("LambdaMemory", "lambdaMemoryPercent", 256 / 100),  # percent of 256 MB
]


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize(("suffix", "key", "scale"), OWN_THRESHOLDS)
def test_each_stack_uses_its_own_thresholds(
    recorded: dict[str, RecordedStack], stack: str, suffix: str, key: str, scale: float
) -> None:
    alarms = {a.inputs["name"]: a.inputs for a in recorded[stack].of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    expected = project_config(stack, "thresholds")[key] * scale
    assert alarms[f"ngu-points-{stack}-{suffix}"]["threshold"] == pytest.approx(expected)


def test_staging_thresholds_differ_from_prod_where_its_stack_file_says_so() -> None:
    prod, staging = project_config("prod", "thresholds"), project_config("staging", "thresholds")
    assert prod.keys() == staging.keys()
    assert prod["lambdaErrorRatePercent"] == 5 and staging["lambdaErrorRatePercent"] == 10


# The seed's inline policy names survive (operators and its runbook refer to them), narrowed inside.
SEED_POLICIES = [
    ("processor", {"KinesisAccess", "DynamoDBAccess", "CloudWatchAccess", "VPCAccess"}),
    ("monitor", {"KinesisAccess", "SSMAccess"}),
]


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize(("component", "names"), SEED_POLICIES)
def test_seed_policy_names_are_kept(
    recorded: dict[str, RecordedStack], stack: str, component: str, names: set[str]
) -> None:
    policies = {
        p.inputs["name"]
        for p in recorded[stack].of_type("aws:iam/rolePolicy:RolePolicy")
        if p.name.startswith(f"{component}-")
    }
    assert names <= policies
