"""EventConsumer: the Lambda that applies Kinesis records to the tables, and its mapping (DESIGN §5).

Nothing is dropped silently: poison records go to the quarantine queue (with their body), batches
that exhaust their retries go whole to the on-failure bucket (S3 is the only destination that
keeps the records), records expire from the mapping well before the stream drops them, and the
mapping's own metrics show what `Errors` cannot (a batch with item failures is a success there).
"""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.alarm_catalog import MEMORY_METRIC, PROCESSOR, PROCESSOR_MEMORY
from components.buckets import private_bucket
from components.iam import Statement, service_role
from components.packaging import HANDLER_MODULE, lambda_archive
from components.settings import Settings
from components.stream import EventStream
from components.tables import Tables

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = "python3.12"
ARCHITECTURE = "arm64"
# Lambda publishes no memory metric: the REPORT line of each invocation carries it.
_REPORT_PATTERN = (
    '[report="REPORT", request_label="RequestId:", request_id, duration_label="Duration:", duration, duration_unit, '
    'billed_label1="Billed", billed_label2="Duration:", billed, billed_unit, size_label1="Memory", '
    'size_label2="Size:", memory_size, size_unit="MB", max_label1="Max", max_label2="Memory", max_label3="Used:", '
    "max_memory_used, max_unit, ...]"
)


def powertools_layer(settings: Settings, parent: pulumi.Resource) -> pulumi.Input[str]:
    """The AWS-managed Powertools layer of the pinned version, from AWS's public SSM parameter."""
    if settings.consumer.powertools_layer_arn:
        return settings.consumer.powertools_layer_arn
    name = f"/aws/service/powertools/python/{ARCHITECTURE}/{RUNTIME}/{settings.consumer.powertools_version}"
    return aws.ssm.get_parameter_output(name=name, opts=pulumi.InvokeOutputOptions(parent=parent)).value


def _parameter(name: str, parent: pulumi.Resource) -> pulumi.Output[str]:
    return aws.ssm.get_parameter_output(name=name, opts=pulumi.InvokeOutputOptions(parent=parent)).value


class EventConsumer(pulumi.ComponentResource):
    function: aws.lambda_.Function
    role: aws.iam.Role
    mapping: aws.lambda_.EventSourceMapping
    quarantine: aws.sqs.Queue
    failed_batches: aws.s3.Bucket
    log_group: aws.cloudwatch.LogGroup

    def __init__(
        self,
        name: str,
        settings: Settings,
        stream: EventStream,
        tables: Tables,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ngu:pipeline:EventConsumer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        consumer = settings.consumer

        self.quarantine = aws.sqs.Queue(
            f"{name}-quarantine",
            name=settings.names.quarantine_queue,
            sqs_managed_sse_enabled=True,
            message_retention_seconds=14 * 24 * 3600,
            tags=settings.tags,
            opts=child,
        )
        self.failed_batches = private_bucket(
            f"{name}-failed-batches",
            "failed-batches",
            settings,
            self,
            expire_after_days=consumer.failed_batch_retention_days,
        )
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/lambda/{settings.function_name}",
            retention_in_days=consumer.log_retention_days,
            tags=settings.tags,
            opts=child,
        )
        self.role, policies = service_role(
            name,
            role_name=settings.processor_role_name,
            description="Role for processing blockchain events from Kinesis",
            service="lambda.amazonaws.com",
            policies=self._statements(settings, stream, tables),
            tags=settings.tags,
            parent=self,
        )

        archive = lambda_archive(ROOT, ROOT / "build" / "processor-lambda.zip", HANDLER_MODULE)
        variables: dict[str, pulumi.Input[str]] = {
            "TOKENS_TABLE": tables.tokens.name,
            "POINTS_TABLE": tables.points.name,
            "QUARANTINE_QUEUE_URL": self.quarantine.url,
            "POINTS_PER_DAY": settings.points_per_day_json,
            "STAGE": str(settings.stage),
            "LOG_LEVEL": settings.log_level,
            "REMAINING_TIME_GUARD_MS": str(consumer.remaining_time_guard_ms),
            # Never POWERTOOLS_SERVICE_NAME: it adds a `service` dimension the alarms do not select.
            "POWERTOOLS_LOGGER_LOG_EVENT": "false",
            "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
        }
        if settings.points.default_per_day is not None:
            variables["DEFAULT_POINTS_PER_DAY"] = str(settings.points.default_per_day)
        self.function = aws.lambda_.Function(
            f"{name}-function",
            name=settings.function_name,
            description="Processes blockchain events from Kinesis and updates DynamoDB",
            role=self.role.arn,
            runtime=RUNTIME,
            architectures=[ARCHITECTURE],
            handler=f"{HANDLER_MODULE}.handler",
            code=pulumi.FileArchive(str(archive.path)),
            layers=[powertools_layer(settings, self)],
            memory_size=consumer.memory_mb,
            timeout=consumer.timeout_seconds,
            reserved_concurrent_executions=consumer.reserved_concurrency,
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=variables),
            tracing_config=aws.lambda_.FunctionTracingConfigArgs(mode="Active"),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(log_format="Text", log_group=self.log_group.name),
            vpc_config=aws.lambda_.FunctionVpcConfigArgs(
                security_group_ids=[_parameter(settings.network.security_group_parameter, self)],
                subnet_ids=[_parameter(p, self) for p in settings.network.subnet_parameters],
            ),
            tags=settings.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.log_group, *policies]),
        )
        self.mapping = aws.lambda_.EventSourceMapping(
            f"{name}-mapping",
            event_source_arn=stream.stream.arn,
            function_name=self.function.arn,
            starting_position=consumer.starting_position,
            batch_size=consumer.batch_size,
            maximum_retry_attempts=consumer.maximum_retry_attempts,
            bisect_batch_on_function_error=consumer.bisect_batch_on_error,
            parallelization_factor=consumer.parallelization_factor,
            function_response_types=["ReportBatchItemFailures"],
            maximum_record_age_in_seconds=consumer.maximum_record_age_seconds,
            destination_config=aws.lambda_.EventSourceMappingDestinationConfigArgs(
                on_failure=aws.lambda_.EventSourceMappingDestinationConfigOnFailureArgs(
                    destination_arn=self.failed_batches.arn
                )
            ),
            metrics_config=aws.lambda_.EventSourceMappingMetricsConfigArgs(metrics=["EventCount"]),
            tags=settings.tags,
            # A replacement created before the old mapping is deleted fails with 409 (one per stream+function).
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True, depends_on=policies),
        )
        aws.cloudwatch.LogMetricFilter(
            f"{name}-max-memory",
            name=f"{settings.function_name}-{MEMORY_METRIC}",
            log_group_name=self.log_group.name,
            pattern=_REPORT_PATTERN,
            metric_transformation=aws.cloudwatch.LogMetricFilterMetricTransformationArgs(
                name=MEMORY_METRIC,
                namespace=PROCESSOR_MEMORY.format(stage=settings.stage),
                value="$max_memory_used",
                unit="Megabytes",
            ),
            opts=child,
        )
        self._warn_on_thin_concurrency(settings)
        self.register_outputs(
            {
                "functionArn": self.function.arn,
                "roleArn": self.role.arn,
                "quarantineQueueUrl": self.quarantine.url,
                "failedBatchesBucket": self.failed_batches.bucket,
                "mappingUuid": self.mapping.uuid,
            }
        )

    def _statements(self, settings: Settings, stream: EventStream, tables: Tables) -> dict[str, list[Statement]]:
        """One inline policy per purpose, each on the ARNs it needs."""
        return {
            "KinesisAccess": [
                Statement(
                    "ReadStream",
                    [
                        "kinesis:DescribeStream",
                        "kinesis:DescribeStreamSummary",
                        "kinesis:GetRecords",
                        "kinesis:GetShardIterator",
                        "kinesis:ListShards",
                        "kinesis:SubscribeToShard",
                    ],
                    [stream.stream.arn],
                ),
                Statement("DecryptStream", ["kms:Decrypt"], [stream.key.arn]),
            ],
            "DynamoDBAccess": [tables.ledger_statement()],
            "QuarantineAccess": [Statement("QuarantinePoison", ["sqs:SendMessage"], [self.quarantine.arn])],
            "OnFailureDestination": [
                Statement("ListFailedBatches", ["s3:ListBucket"], [self.failed_batches.arn]),
                Statement(
                    "WriteFailedBatches", ["s3:PutObject"], [pulumi.Output.concat(self.failed_batches.arn, "/*")]
                ),
            ],
            "CloudWatchAccess": [
                Statement(
                    "WriteLogs",
                    ["logs:CreateLogStream", "logs:PutLogEvents"],
                    [pulumi.Output.concat(self.log_group.arn, ":*")],
                ),
                # PutMetricData has no resource type; the namespace condition is the narrowing.
                Statement(
                    "PutProcessorMetrics",
                    ["cloudwatch:PutMetricData"],
                    ["*"],
                    {"StringEquals": {"cloudwatch:namespace": PROCESSOR}},
                ),
            ],
            "XRayAccess": [Statement("WriteTraces", ["xray:PutTelemetryRecords", "xray:PutTraceSegments"], ["*"])],
            # Lambda manages the function's network interfaces in the VPC; these actions take no ARN.
            "VPCAccess": [
                Statement(
                    "ManageNetworkInterfaces",
                    [
                        "ec2:AssignPrivateIpAddresses",
                        "ec2:CreateNetworkInterface",
                        "ec2:DeleteNetworkInterface",
                        "ec2:DescribeNetworkInterfaces",
                        "ec2:UnassignPrivateIpAddresses",
                    ],
                    ["*"],
                )
            ],
        }

    @staticmethod
    def _warn_on_thin_concurrency(settings: Settings) -> None:
        # settings already refuses reserved < shards x parallelization; an on-demand stream also
        # splits shards under load, and each new shard needs `parallelization` more executions.
        needed = settings.stream.shards * settings.consumer.parallelization_factor
        spare = settings.consumer.reserved_concurrency - needed
        if settings.stream.mode == "ON_DEMAND" and spare < settings.consumer.parallelization_factor:
            pulumi.log.warn(
                f"consumer.reservedConcurrency {settings.consumer.reserved_concurrency} covers {needed} concurrent "
                f"batches but not one more shard: when the on-demand stream splits, batches queue and IteratorAge grows"
            )
