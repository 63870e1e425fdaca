"""`verify --stage S`: the seed's pre- and post-deployment checks of one stage, one line each.

  stream        ACTIVE, with its mode and retention (red when they differ from Pulumi.S.yaml)
  mapping       Enabled, with its last processing result (a PROBLEM is red)
  alarms        none of the stage's alarms in ALARM
  quarantine    the quarantine queue is empty
  failures      the on-failure bucket holds no failed batch (aws/lambda/...)
  tokens/points both tables ACTIVE, with their item counts (DynamoDB's, refreshed about every 6 hours)
  checkpoint    the monitor's checkpoint is recent, and its BlocksBehind metric is low

Every name comes from the stage's SSM parameters. Green lines start with `ok`, red ones with `FAIL`;
the exit status is 1 when any line is red, 0 when all are green.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app import aws
from app import names as n
from app.errors import describe
from app.monitor.telemetry import NAMESPACE as MONITOR_NAMESPACE
from app.stack_file import stack_file, stack_settings
from app.stage import parameters, stage_argument, stage_names


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


class Red(Exception):
    """A check that failed; the message is its line."""


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    stage_argument(parser, required=True)
    parser.add_argument(
        "--max-checkpoint-age",
        type=int,
        default=600,
        metavar="SECONDS",
        help="red when the monitor's checkpoint is older (default 600)",
    )
    parser.add_argument(
        "--max-blocks-behind",
        type=int,
        default=50,
        metavar="N",
        help="red when the monitor's latest BlocksBehind is higher (default 50, prod's alarm threshold)",
    )
    parser.add_argument("--json", action="store_true", help="print the checks as one JSON document")


def run(args: argparse.Namespace) -> int:
    names = stage_names(args)
    stage = parameters(args)
    checks = [_run(name, check, stage, args) for name, check in CHECKS]
    if args.json:
        print(
            json.dumps({"stage": names.stage, "ok": all(c.ok for c in checks), "checks": [c.__dict__ for c in checks]})
        )
    else:
        from rich.console import Console

        console = Console(highlight=False, soft_wrap=True)
        for check in checks:
            mark = "[green]ok  [/green]" if check.ok else "[bold red]FAIL[/bold red]"
            console.print(f"{mark} {check.name:<11} {check.detail}", markup=True)
    return 0 if all(c.ok for c in checks) else 1


def _run(name: str, check: Callable[..., str], stage: Any, args: argparse.Namespace) -> Check:
    try:
        return Check(name, True, check(stage, args))
    except Red as red:
        return Check(name, False, str(red))
    except Exception as error:
        described = describe(error)  # a missing parameter, table or queue is a red line, not a crash
        if described is None:
            raise
        return Check(name, False, described[0])


def stream(stage: Any, _: argparse.Namespace) -> str:
    name = stage.get(n.STREAM_PARAMETER)
    summary = aws.client("kinesis").describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    mode = summary.get("StreamModeDetails", {}).get("StreamMode", "PROVISIONED")
    detail = (
        f"{name} {summary['StreamStatus']}, {mode}, {summary['OpenShardCount']} shards, "
        f"retention {summary['RetentionPeriodHours']} h"
    )
    if summary["StreamStatus"] != "ACTIVE":
        raise Red(detail)
    path = stack_file(stage.names.stage)
    if path.is_file():
        declared = stack_settings(path).stream
        if (mode, summary["RetentionPeriodHours"]) != (declared.mode, declared.retention_hours):
            raise Red(f"{detail}; {path.name} says {declared.mode}, retention {declared.retention_hours} h")
    return detail


def mapping(stage: Any, _: argparse.Namespace) -> str:
    uuid = stage.get(n.MAPPING_PARAMETER)
    found = aws.client("lambda").get_event_source_mapping(UUID=uuid)
    state = found.get("State", "?")
    result = found.get("LastProcessingResult") or "no result yet"
    detail = f"{uuid} {state}, last processing result: {result}"
    if state != "Enabled" or result.startswith("PROBLEM"):
        raise Red(detail)
    return detail


def alarms(stage: Any, _: argparse.Namespace) -> str:
    names = stage.names
    firing = []
    pages = aws.client("cloudwatch").get_paginator("describe_alarms").paginate(StateValue="ALARM")
    for page in pages:
        for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
            if alarm["AlarmName"].startswith((f"{names.prefix}-", f"{names.stream}-")):
                firing.append(alarm["AlarmName"])
    if firing:
        raise Red(f"{len(firing)} in ALARM: {', '.join(sorted(firing))}")
    return "none in ALARM"


def quarantine(stage: Any, _: argparse.Namespace) -> str:
    url = stage.get(n.QUARANTINE_PARAMETER)
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    waiting = sum(int(v) for v in attributes.values())
    if waiting:
        raise Red(f"{waiting} messages in {url} (see `redrive --queue-url --stage {stage.names.stage}`)")
    return f"{url} empty"


def failures(stage: Any, _: argparse.Namespace) -> str:
    bucket = stage.get(n.FAILED_BATCHES_PARAMETER)
    listed = aws.client("s3").list_objects_v2(Bucket=bucket, Prefix="aws/lambda/", MaxKeys=1000)
    count = listed.get("KeyCount", 0)
    if count:
        more = "+" if listed.get("IsTruncated") else ""
        raise Red(f"{count}{more} failed batches in s3://{bucket}/aws/lambda/ (see `redrive --bucket`)")
    return f"s3://{bucket} holds no failed batch"


def _table(key: str) -> Callable[[Any, argparse.Namespace], str]:
    def check(stage: Any, _: argparse.Namespace) -> str:
        name = stage.get(key)
        table = aws.client("dynamodb").describe_table(TableName=name)["Table"]
        detail = f"{name} {table['TableStatus']}, {table.get('ItemCount', 0)} items"
        if table["TableStatus"] != "ACTIVE":
            raise Red(detail)
        return detail

    return check


def checkpoint(stage: Any, args: argparse.Namespace) -> str:
    table = stage.get(n.MONITOR_TABLE_PARAMETER)
    client = aws.client("dynamodb")
    items = client.scan(
        TableName=table,
        ConsistentRead=True,
        FilterExpression="begins_with(id, :p)",
        ExpressionAttributeValues={":p": {"S": "checkpoint:"}},
    ).get("Items", [])
    if not items:
        raise Red(f"{table} holds no checkpoint: the monitor never published")
    lines, red = [], False
    now = int(time.time())
    for item in items:
        age = now - int(item.get("updatedAt", {"N": "0"})["N"])
        red |= age > args.max_checkpoint_age
        lines.append(f"{item['id']['S']} at block {item['block']['N']}, {age} s old")
    behind = _latest_blocks_behind(stage.names.stage)
    if behind is None:
        red = True
        lines.append("no BlocksBehind metric in the last 15 minutes")
    else:
        red |= behind > args.max_blocks_behind
        lines.append(f"{behind:g} blocks behind")
    if red:
        raise Red("; ".join(lines))
    return "; ".join(lines)


def _latest_blocks_behind(stage: str) -> float | None:
    now = datetime.now(UTC)
    points = aws.client("cloudwatch").get_metric_statistics(
        Namespace=MONITOR_NAMESPACE,
        MetricName="BlocksBehind",
        Dimensions=[{"Name": "Stage", "Value": stage}],
        StartTime=now - timedelta(minutes=15),
        # a minute ahead: a datapoint stamped by a host whose clock runs a little fast is recent too
        EndTime=now + timedelta(minutes=1),
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    if not points:
        return None
    return max(points, key=lambda p: p["Timestamp"])["Maximum"]


CHECKS: tuple[tuple[str, Callable[[Any, argparse.Namespace], str]], ...] = (
    ("stream", stream),
    ("mapping", mapping),
    ("alarms", alarms),
    ("quarantine", quarantine),
    ("failures", failures),
    ("tokens", _table(n.TOKENS_TABLE_PARAMETER)),
    ("points", _table(n.POINTS_TABLE_PARAMETER)),
    ("checkpoint", checkpoint),
)
