"""A stage's AWS resources on a local AWS emulator (moto), under the names the stack gives that stage.

The local stack, the integration tests and the operator commands' tests all create them here, from
app/names.py, so `ngu-points <command> --stage local` finds them exactly as it finds prod's.
"""

from __future__ import annotations

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
