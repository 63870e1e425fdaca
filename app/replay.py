"""`replay --stage S --since TIME [--until TIME]`: re-apply what the stream still holds in a window.

Reads every shard (closed ones too: an on-demand stream splits its shards) from an AT_TIMESTAMP
iterator at --since, in order, up to records that arrived after --until (default: now), and hands
them in batches to the consumer's own code (app/processor.py: the same apply path, duplicate skips
and poison quarantine as the Lambda). Applying is idempotent, so a replay is safe on live tables:
what the tables already hold is counted as duplicates. Prints applied / duplicates / poison.

TIME is ISO 8601 (2026-11-29T20:00:00Z), unix seconds, or an age such as 90m, 2h or 1d.
Tables, the quarantine queue and the rates come from the stage's processor function configuration
(falling back to the stage's SSM parameters and the POINTS_PER_DAY / DEFAULT_POINTS_PER_DAY
environment). Exit 1 when a record could not be applied (it stays in the stream; nothing is lost).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app import aws
from app import names as n
from app.errors import OperatorError
from app.progress import progress_bar
from app.stage import environment_rates, function_environment, resolve, stage_argument

BATCH = 100
_AGE = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass
class ReplayReport:
    shards: int = 0
    records: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, counts: dict[str, int]) -> None:
        for name, value in counts.items():
            self.counts[name] = self.counts.get(name, 0) + value

    def to_json(self) -> dict[str, int]:
        c = self.counts
        return {
            "shards": self.shards,
            "records": self.records,
            "applied": c.get("EventsApplied", 0),
            "duplicates": c.get("DuplicatesSkipped", 0),
            "poison": c.get("PoisonRecords", 0),
            "gaps": c.get("OwnershipGaps", 0),
            "failed": c.get("RecordsFailed", 0),
        }


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    stage_argument(parser)
    parser.add_argument(
        "--since", required=True, type=moment, metavar="TIME", help="replay records that arrived from here"
    )
    parser.add_argument("--until", type=moment, metavar="TIME", help="up to here (default: now)")
    parser.add_argument("--stream", help="overrides --stage's stream")
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")


def moment(text: str) -> float:
    """A point in time as unix seconds: ISO 8601, unix seconds, or an age (`2h` = two hours ago)."""
    if age := _AGE.fullmatch(text):
        return time.time() - int(age[1]) * _UNITS[age[2]]
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ISO 8601, unix seconds or an age like 2h, got {text!r}") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def run(args: argparse.Namespace) -> int:
    until = args.until if args.until is not None else time.time()
    if until < args.since:
        raise OperatorError("--until: before --since")
    stream = resolve(args, n.STREAM_PARAMETER, "--stream")
    consumer = _consumer(args)
    kinesis = aws.client("kinesis")
    report = ReplayReport()
    with progress_bar("replaying records") as advance:
        for shard in _shards(kinesis, stream):
            report.shards += 1
            for batch in _batches(kinesis, stream, shard, args.since, until):
                report.records += len(batch)
                advance(len(batch))
                if not _apply(consumer, batch, report):
                    print(f"error: shard {shard}: a record failed to apply; stopped this shard there", file=sys.stderr)
                    break
    totals = report.to_json()
    if args.json:
        print(json.dumps(totals))
    else:
        print(
            f"replayed {totals['records']} records from {totals['shards']} shards: {totals['applied']} applied, "
            f"{totals['duplicates']} duplicates, {totals['poison']} poison, {totals['failed']} failed"
        )
    return 1 if totals["failed"] else 0


def _consumer(args: argparse.Namespace) -> Any:
    from app import processor
    from app.store import Store

    environment = function_environment(args)

    def setting(key: str, variable: str) -> str:
        return environment.get(variable) or resolve(args, key)

    tokens = setting(n.TOKENS_TABLE_PARAMETER, "TOKENS_TABLE")
    points = setting(n.POINTS_TABLE_PARAMETER, "POINTS_TABLE")
    queue = setting(n.QUARANTINE_PARAMETER, "QUARANTINE_QUEUE_URL")
    rates = environment_rates(environment)
    if not rates.by_contract and rates.default is None:
        raise OperatorError("POINTS_PER_DAY: no rates (set it, or deploy the function with its rates)")
    settings = processor.Settings(tokens, points, queue, rates, getattr(args, "stage", None) or "dev", 0)
    return processor.Consumer(settings, Store(tokens, points), aws.client("sqs"))


def _shards(kinesis: Any, stream: str) -> Iterator[str]:
    for page in kinesis.get_paginator("list_shards").paginate(StreamName=stream):
        for shard in page["Shards"]:
            yield shard["ShardId"]


def _batches(kinesis: Any, stream: str, shard: str, since: float, until: float) -> Iterator[list[dict[str, Any]]]:
    """The shard's records that arrived in [since, until], in order, as Lambda's Kinesis records."""
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard, ShardIteratorType="AT_TIMESTAMP", Timestamp=datetime.fromtimestamp(since, UTC)
    )["ShardIterator"]
    pending: list[dict[str, Any]] = []
    while iterator:
        response = kinesis.get_records(ShardIterator=iterator, Limit=1000)
        done = False
        for record in response["Records"]:
            if _arrival(record) > until:
                done = True
                break
            pending.append(_lambda_record(stream, shard, record))
            if len(pending) == BATCH:
                yield pending
                pending = []
        if done or (not response["Records"] and response.get("MillisBehindLatest", 0) == 0):
            break
        iterator = response.get("NextShardIterator")
    if pending:
        yield pending


def _apply(consumer: Any, batch: list[dict[str, Any]], report: ReplayReport) -> bool:
    from app import processor

    # The handler's logs and metrics are the Lambda's: keep them off this command's stdout.
    with contextlib.redirect_stdout(sys.stderr):
        response = consumer.process(batch, lambda: 10**9)
    processor.metrics.clear_metrics()
    report.add(consumer.counts)
    return not response["batchItemFailures"]


def _arrival(record: dict[str, Any]) -> float:
    arrival = record["ApproximateArrivalTimestamp"]
    return arrival.timestamp() if hasattr(arrival, "timestamp") else float(arrival)


def _lambda_record(stream: str, shard: str, record: dict[str, Any]) -> dict[str, Any]:
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": record["PartitionKey"],
            "sequenceNumber": record["SequenceNumber"],
            "data": base64.b64encode(record["Data"]).decode(),
            "approximateArrivalTimestamp": _arrival(record),
        },
        "eventSource": "aws:kinesis",
        "eventID": f"{shard}:{record['SequenceNumber']}",
        "eventName": "aws:kinesis:record",
        "eventSourceARN": f"replay:{stream}",
    }
