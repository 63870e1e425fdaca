"""A stage's AWS resources on a local AWS emulator (moto), under the names the stack gives that stage.

The local stack, the integration tests and the operator commands' tests all create them here, from
app/names.py, so `ngu-points <command> --stage local` finds them exactly as it finds prod's.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app import names as n
from app.names import StageNames
from app.store import create_tables

LOCAL_ACCOUNT = "123456789012"  # moto's default account


@dataclass(frozen=True)
class StageResources:
    names: StageNames
    queue_url: str
    bucket: str


@dataclass(frozen=True)
class MappingConfig:
    """The event source mapping's knobs (the stack's `consumer` settings; DESIGN §5 values by default)."""

    batch_size: int = 100
    maximum_retry_attempts: int = 3
    bisect_batch_on_error: bool = True
    parallelization_factor: int = 10
    maximum_record_age_seconds: int = 3600
    starting_position: str = "TRIM_HORIZON"
    function_timeout_seconds: int = 30


def create_stage_resources(client: Callable[[str], Any], names: StageNames) -> StageResources:
    """Stream (ON_DEMAND), tokens / points / monitor tables, quarantine queue, on-failure bucket, and
    the SSM parameters that name them. `client(service)` returns a boto3 client for the emulator."""
    kinesis = client("kinesis")
    kinesis.create_stream(StreamName=names.stream, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    create_tables(client("dynamodb"), tokens=names.tokens_table, points=names.points_table, monitor=names.monitor_table)
    queue_url = client("sqs").create_queue(QueueName=names.quarantine_queue)["QueueUrl"]
    bucket = names.failed_batches_bucket(LOCAL_ACCOUNT)
    client("s3").create_bucket(Bucket=bucket)
    kinesis.get_waiter("stream_exists").wait(StreamName=names.stream, WaiterConfig={"Delay": 0.1})
    publish_parameters(
        client("ssm"),
        names,
        {
            n.STREAM_PARAMETER: names.stream,
            n.TOKENS_TABLE_PARAMETER: names.tokens_table,
            n.POINTS_TABLE_PARAMETER: names.points_table,
            n.MONITOR_TABLE_PARAMETER: names.monitor_table,
            n.QUARANTINE_PARAMETER: queue_url,
            n.FAILED_BATCHES_PARAMETER: bucket,
        },
    )
    return StageResources(names=names, queue_url=queue_url, bucket=bucket)


def publish_parameters(ssm: Any, names: StageNames, values: dict[str, str]) -> None:
    for key, value in values.items():
        ssm.put_parameter(Name=names.parameter(key), Value=value, Type="String", Overwrite=True)


def register_mapping(
    client: Callable[[str], Any],
    resources: StageResources,
    config: MappingConfig,
    environment: dict[str, str] | None = None,
) -> str:
    """The processor function and its Kinesis event source mapping, as records in the emulator.

    moto stores them but runs nothing (it would need Docker): the local mapping emulator reads this
    mapping's settings and state (`update-event-source-mapping --no-enabled` stops it), so operators and
    `verify` see the mapping as they see the real one; `environment` is the function's (operators read
    its rates there). Returns the mapping's UUID.
    """
    names = resources.names
    role = client("iam").create_role(RoleName=names.processor_role, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    functions = client("lambda")
    functions.create_function(
        FunctionName=names.function,
        Runtime="python3.12",
        Role=role,
        Handler="app.processor.handler",
        Timeout=config.function_timeout_seconds,
        Environment={"Variables": environment or {}},
        Code={"ZipFile": _empty_zip()},
    )
    stream_arn = client("kinesis").describe_stream_summary(StreamName=names.stream)["StreamDescriptionSummary"][
        "StreamARN"
    ]
    mapping = functions.create_event_source_mapping(
        EventSourceArn=stream_arn,
        FunctionName=names.function,
        BatchSize=config.batch_size,
        StartingPosition=config.starting_position,
        ParallelizationFactor=config.parallelization_factor,
        MaximumRetryAttempts=config.maximum_retry_attempts,
        BisectBatchOnFunctionError=config.bisect_batch_on_error,
        MaximumRecordAgeInSeconds=config.maximum_record_age_seconds,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        DestinationConfig={"OnFailure": {"Destination": f"arn:aws:s3:::{resources.bucket}"}},
    )
    publish_parameters(
        client("ssm"), names, {n.FUNCTION_PARAMETER: names.function, n.MAPPING_PARAMETER: mapping["UUID"]}
    )
    return mapping["UUID"]


def _empty_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README", "the local stack runs the handler in process; this archive is a placeholder")
    return buffer.getvalue()
