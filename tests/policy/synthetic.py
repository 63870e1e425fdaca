"""A recorded stack built by hand in the seam format of tools.record_stack (RecordedResource), shaped like
what pulumi-aws 7.51.1 sends: camelCase inputs, numbers where the provider takes numbers, policy
documents as JSON strings, a mapping's UUID unknown (it exists only after creation).

It stands in for the real program where that is not available and gives the direct tests a compliant
baseline to mutate.
"""

import copy
import json
from collections.abc import Callable
from typing import Any

from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from tools.policy_check import Resource

PROJECT = "ngu-points-event-processor"
ACCOUNT = "123456789012"
REGION = "us-east-1"
SERVICE = "ngu-points-event-processor"

# Per-stage knobs, as the two stacks' config would set them; staging is laxer than prod allows.
STAGES = {
    "prod": {
        "iterator_age_page_ms": 3_600_000,
        "error_rate_percent": 5,
        "log_retention_days": 30,
        "reserved_concurrency": 50,
        "max_retries": 3,
    },
    "staging": {
        "iterator_age_page_ms": 7_200_000,
        "error_rate_percent": 10,
        "log_retention_days": 7,
        "reserved_concurrency": 10,
        "max_retries": 3,
    },
}


class _Stack:
    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.resources: list[Resource] = []
        self.root = self._urn("pulumi:pulumi:Stack", f"{PROJECT}-{stage}", None)
        self.provider_urn = self._urn("pulumi:providers:aws", "aws", None)
        self.provider = f"{self.provider_urn}::00000000-0000-0000-0000-000000000000"

    def _urn(self, type_: str, name: str, parent_type: str | None) -> str:
        qualified = f"{parent_type}${type_}" if parent_type else type_
        return f"urn:pulumi:{self.stage}::{PROJECT}::{qualified}::{name}"

    def tags(self) -> dict[str, str]:
        return {"Environment": self.stage, "Service": SERVICE}

    def add(
        self,
        type_: str,
        name: str,
        inputs: dict[str, Any],
        *,
        parent: Resource | None = None,
        depends: tuple[Resource, ...] = (),
        delete_before_replace: bool | None = None,
        protect: bool = False,
    ) -> Resource:
        custom = not type_.startswith("ngu:")
        resource = Resource(
            type=type_,
            name=name,
            urn=self._urn(type_, name, parent.type if parent else None),
            inputs=inputs,
            parent=parent.urn if parent else self.root,
            protect=protect,
            delete_before_replace=delete_before_replace,
            provider=self.provider if custom and not type_.startswith("pulumi:") else None,
            dependencies=[d.urn for d in depends],
        )
        self.resources.append(resource)
        return resource

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def build(stage: str) -> list[Resource]:
    knobs = STAGES[stage]
    s = _Stack(stage)
    tags = s.tags()
    s.resources.append(Resource("pulumi:pulumi:Stack", f"{PROJECT}-{stage}", s.root, {}, parent=None))
    s.add("pulumi:providers:aws", "aws", {"region": REGION, "defaultTags": json.dumps({"tags": tags})})

    stream_name = f"ngu-points-core-v5-events-{stage}-v5"
    stream_arn = s.arn("kinesis", f"stream/{stream_name}")
    events = s.add("ngu:pipeline:EventStream", "events", {})
    stream = s.add(
        "aws:kinesis/stream:Stream",
        "events-stream",
        {
            "name": stream_name,
            "retentionPeriod": 24,
            "encryptionType": "KMS",
            "kmsKeyId": "alias/aws/kinesis",
            "streamModeDetails": {"streamMode": "ON_DEMAND"},
            "tags": tags,
        },
        parent=events,
        protect=stage == "prod",
    )

    tables = s.add("ngu:pipeline:Tables", "tables", {})
    for kind, key in (("tokens", "token"), ("points", "holder"), ("monitor", "id")):
        s.add(
            "aws:dynamodb/table:Table",
            f"tables-{kind}",
            {
                "name": f"ngu-points-core-v5-{kind}-{stage}",
                "billingMode": "PAY_PER_REQUEST",
                "hashKey": key,
                "attributes": [{"name": key, "type": "S"}],
                "pointInTimeRecovery": {"enabled": True},
                "serverSideEncryption": {"enabled": True},
                "tags": tags,
            },
            parent=tables,
            protect=stage == "prod",
        )

    alarms_component = s.add("ngu:pipeline:AlarmSet", "alarms", {})
    topics = {}
    for severity in ("page", "notify"):
        topics[severity] = s.add(
            "aws:sns/topic:Topic",
            f"alarms-{severity}",
            {"name": f"ngu-points-{severity}-{stage}", "kmsMasterKeyId": "alias/aws/sns", "tags": tags},
            parent=alarms_component,
        )
    topic_arn = {sev: s.arn("sns", f"ngu-points-{sev}-{stage}") for sev in topics}

    consumer = s.add("ngu:pipeline:EventConsumer", "consumer", {})
    function_name = f"ngu-points-event-processor-{stage}-processKinesisEvents"
    quarantine = s.add(
        "aws:sqs/queue:Queue",
        "consumer-quarantine",
        {
            "name": f"ngu-points-quarantine-{stage}",
            "sqsManagedSseEnabled": True,
            "messageRetentionSeconds": 1209600,
            "tags": tags,
        },
        parent=consumer,
    )
    failures = s.add(
        "aws:s3/bucket:Bucket",
        "consumer-failures",
        {"bucket": f"ngu-points-failures-{stage}", "forceDestroy": False, "tags": tags},
        parent=consumer,
    )
    s.add(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "consumer-failures-sse",
        {
            "bucket": f"ngu-points-failures-{stage}",
            "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}],
        },
        parent=consumer,
        depends=(failures,),
    )
    s.add(
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "consumer-failures-private",
        {
            "bucket": f"ngu-points-failures-{stage}",
            "blockPublicAcls": True,
            "blockPublicPolicy": True,
            "ignorePublicAcls": True,
            "restrictPublicBuckets": True,
        },
        parent=consumer,
        depends=(failures,),
    )
    log_group = s.add(
        "aws:cloudwatch/logGroup:LogGroup",
        "consumer-logs",
        {"name": f"/aws/lambda/{function_name}", "retentionInDays": knobs["log_retention_days"], "tags": tags},
        parent=consumer,
    )
    role = s.add(
        "aws:iam/role:Role",
        "consumer-role",
        {
            "name": f"ngu-points-event-processor-{stage}",
            "assumeRolePolicy": _policy(
                {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ),
            "tags": tags,
        },
        parent=consumer,
    )
    s.add(
        "aws:iam/rolePolicy:RolePolicy",
        "consumer-access",
        {
            "role": f"ngu-points-event-processor-{stage}",
            "policy": _policy(
                {
                    "Sid": "ReadStream",
                    "Effect": "Allow",
                    "Action": [
                        "kinesis:GetRecords",
                        "kinesis:GetShardIterator",
                        "kinesis:DescribeStream",
                        "kinesis:ListShards",
                    ],
                    "Resource": stream_arn,
                },
                {
                    "Sid": "Tables",
                    "Effect": "Allow",
                    "Action": [
                        "dynamodb:GetItem",
                        "dynamodb:UpdateItem",
                        "dynamodb:PutItem",
                        "dynamodb:ConditionCheckItem",
                    ],
                    "Resource": [
                        s.arn("dynamodb", f"table/ngu-points-core-v5-{k}-{stage}") for k in ("tokens", "points")
                    ],
                },
                {
                    "Sid": "Quarantine",
                    "Effect": "Allow",
                    "Action": "sqs:SendMessage",
                    "Resource": s.arn("sqs", f"ngu-points-quarantine-{stage}"),
                },
                {
                    "Sid": "Failures",
                    "Effect": "Allow",
                    "Action": "s3:PutObject",
                    "Resource": f"arn:aws:s3:::ngu-points-failures-{stage}/*",
                },
                {
                    "Sid": "Logs",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": s.arn("logs", f"log-group:/aws/lambda/{function_name}:*"),
                },
                {
                    "Sid": "Telemetry",
                    "Effect": "Allow",
                    "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "cloudwatch:PutMetricData"],
                    "Resource": "*",
                },
            ),
        },
        parent=consumer,
        depends=(role,),
    )
    function = s.add(
        "aws:lambda/function:Function",
        "consumer-function",
        {
            "name": function_name,
            "runtime": "python3.12",
            "handler": "app.processor.handler",
            "role": s.arn("iam", f"role/ngu-points-event-processor-{stage}").replace(f":{REGION}:", "::"),
            "memorySize": 256,
            "timeout": 60,
            "reservedConcurrentExecutions": knobs["reserved_concurrency"],
            "tracingConfig": {"mode": "Active"},
            "loggingConfig": {"logFormat": "JSON", "logGroup": f"/aws/lambda/{function_name}"},
            "environment": {"variables": {"STAGE": stage, "TOKENS_TABLE": f"ngu-points-core-v5-tokens-{stage}"}},
            "tags": tags,
        },
        parent=consumer,
        depends=(role, log_group, quarantine),
    )
    mapping = s.add(
        "aws:lambda/eventSourceMapping:EventSourceMapping",
        "consumer-mapping",
        {
            "eventSourceArn": stream_arn,
            "functionName": function_name,
            "startingPosition": "TRIM_HORIZON",
            "batchSize": 100,
            "parallelizationFactor": 10,
            "maximumRetryAttempts": knobs["max_retries"],
            "bisectBatchOnFunctionError": True,
            "maximumRecordAgeInSeconds": 21600,
            "functionResponseTypes": ["ReportBatchItemFailures"],
            "destinationConfig": {"onFailure": {"destinationArn": f"arn:aws:s3:::ngu-points-failures-{stage}"}},
            "metricsConfig": {"metrics": ["EventCount"]},
            "tags": tags,
        },
        parent=consumer,
        depends=(stream, function, failures),
        delete_before_replace=True,
    )

    def alarm(name: str, severity: str, spec: dict[str, Any], *, depends: tuple[Resource, ...] = ()) -> Resource:
        inputs = {
            "name": f"ngu-points-{stage}-{name}",
            "comparisonOperator": "GreaterThanThreshold",
            "evaluationPeriods": 2,
            "alarmActions": [topic_arn[severity]],
            "okActions": [topic_arn[severity]],
            "treatMissingData": "notBreaching",
            "tags": tags,
            **spec,
        }
        return s.add(
            "aws:cloudwatch/metricAlarm:MetricAlarm",
            f"alarms-{name}",
            inputs,
            parent=alarms_component,
            depends=(topics[severity], *depends),
        )

    def metric(namespace: str, name: str, dimensions: dict[str, str], statistic: str) -> dict[str, Any]:
        return {
            "namespace": namespace,
            "metricName": name,
            "dimensions": dimensions,
            "statistic": statistic,
            "period": 300,
        }

    on_stream = {"StreamName": stream_name}
    on_function = {"FunctionName": function_name}
    alarm(
        "iterator-age",
        "page",
        {
            **metric("AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", on_stream, "Maximum"),
            "threshold": knobs["iterator_age_page_ms"],
        },
    )
    alarm(
        "iterator-age-early",
        "notify",
        {**metric("AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", on_stream, "Maximum"), "threshold": 900_000},
    )
    alarm(
        "write-throttles",
        "page",
        {**metric("AWS/Kinesis", "WriteProvisionedThroughputExceeded", on_stream, "Sum"), "threshold": 10},
    )
    alarm(
        "error-rate",
        "page",
        {
            "threshold": knobs["error_rate_percent"],
            "metricQueries": [
                {
                    "id": "errors",
                    "metric": {
                        "namespace": "AWS/Lambda",
                        "metricName": "Errors",
                        "dimensions": on_function,
                        "period": 300,
                        "stat": "Sum",
                    },
                    "returnData": False,
                },
                {
                    "id": "invocations",
                    "metric": {
                        "namespace": "AWS/Lambda",
                        "metricName": "Invocations",
                        "dimensions": on_function,
                        "period": 300,
                        "stat": "Sum",
                    },
                    "returnData": False,
                },
                {
                    "id": "rate",
                    "expression": "100 * errors / MAX([errors, invocations])",
                    "label": "Error rate (%)",
                    "returnData": True,
                },
            ],
        },
    )
    alarm("duration", "page", {**metric("AWS/Lambda", "Duration", on_function, "Maximum"), "threshold": 48_000})
    alarm("duration-half", "notify", {**metric("AWS/Lambda", "Duration", on_function, "Maximum"), "threshold": 30_000})
    alarm("throttles", "page", {**metric("AWS/Lambda", "Throttles", on_function, "Sum"), "threshold": 10})
    alarm(
        "dropped-events",
        "page",
        {
            **metric("AWS/Lambda", "DroppedEventCount", {"EventSourceMappingUUID": UNKNOWN_STRING_VALUE}, "Sum"),
            "threshold": 0,
        },
        depends=(mapping,),
    )

    host = s.add("ngu:pipeline:MonitorHost", "monitor", {})
    monitor_role = s.add(
        "aws:iam/role:Role",
        "monitor-role",
        {
            "name": f"ngu-points-event-monitor-{stage}",
            "assumeRolePolicy": _policy(
                {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ),
            "inlinePolicies": [
                {
                    "name": "publish",
                    "policy": _policy(
                        {
                            "Effect": "Allow",
                            "Action": ["kinesis:PutRecords", "kinesis:DescribeStream"],
                            "Resource": stream_arn,
                        },
                        {
                            "Effect": "Allow",
                            "Action": "ssm:GetParameter",
                            "Resource": s.arn("ssm", f"parameter/ngu-points-system-v2/{stage}/*"),
                        },
                    ),
                }
            ],
            "tags": tags,
        },
        parent=host,
    )
    group = s.add(
        "aws:ec2/securityGroup:SecurityGroup",
        "monitor-sg",
        {
            "description": "event monitor: egress only",
            "vpcId": "vpc-0123456789abcdef0",
            "egress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}],
            "tags": tags,
        },
        parent=host,
    )
    s.add(
        "aws:ec2/instance:Instance",
        "monitor-host",
        {
            "ami": "ami-0123456789abcdef0",
            "instanceType": "t3.small",
            "subnetId": "subnet-0123456789abcdef0",
            "associatePublicIpAddress": False,
            "metadataOptions": {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1},
            "vpcSecurityGroupIds": [UNKNOWN_STRING_VALUE],
            "tags": tags,
        },
        parent=host,
        depends=(monitor_role, group),
    )
    alarm(
        "monitor-heartbeat",
        "page",
        {
            **metric("NGUPoints/EventMonitor", "WebSocketConnected", {"Stage": stage}, "Minimum"),
            "comparisonOperator": "LessThanThreshold",
            "threshold": 1,
            "treatMissingData": "breaching",
        },
    )
    return s.resources


def mutate(resources: list[Resource], name: str, change: Callable[[dict[str, Any]], None]) -> list[Resource]:
    """A copy of the stack where the inputs of resource `name` are changed in place by `change`."""
    names = {r.name for r in resources}
    if name not in names:
        raise KeyError(f"no resource {name!r} in the stack")
    result = []
    for resource in resources:
        if resource.name == name:
            inputs = copy.deepcopy(resource.inputs)
            change(inputs)
            resource = Resource(**{**resource.__dict__, "inputs": inputs})
        result.append(resource)
    return result


def without(resources: list[Resource], *names: str) -> list[Resource]:
    missing = set(names) - {r.name for r in resources}
    if missing:
        raise KeyError(f"no resources {sorted(missing)} in the stack")
    return [r for r in resources if r.name not in names]
