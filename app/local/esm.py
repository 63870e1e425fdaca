"""A Kinesis event source mapping for the local stack (moto's needs Docker, which we do not have).

Polls every shard of a stream and invokes a handler with the Kinesis event JSON Lambda sends,
honouring the mapping settings of DESIGN §5: batch size, ReportBatchItemFailures, maximum retry
attempts, bisect on function error, maximum record age, and an S3 on-failure destination that keeps
the full records. Shards are polled in turn; within a shard, order is strict.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass(frozen=True)
class MappingSettings:
    batch_size: int = 100
    maximum_retry_attempts: int = 3
    bisect_batch_on_function_error: bool = True
    maximum_record_age_seconds: int = 21_600
    starting_position: str = "TRIM_HORIZON"
    function_timeout_seconds: int = 30
    report_batch_item_failures: bool = True


@dataclass
class ShardCursor:
    shard_id: str
    pending: list[dict[str, Any]] = field(default_factory=list)  # fetched, not yet done
    iterator: str | None = None
    attempts: int = 0  # failed invocations of the batch now at the head of `pending`


@dataclass
class InvocationContext:
    """What the handler reads from a Lambda context."""

    deadline: float
    function_name: str = "local-processKinesisEvents"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:local-processKinesisEvents"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@dataclass
class Counters:
    invocations: int = 0
    function_errors: int = 0
    records_delivered: int = 0
    batches_sent_to_destination: int = 0
    records_sent_to_destination: int = 0


class EventSourceMapping:
    def __init__(
        self,
        *,
        kinesis: Any,
        s3: Any,
        stream_name: str,
        handler: Handler,
        settings: MappingSettings,
        failure_bucket: str,
        mapping_id: str | None = None,
    ) -> None:
        self.kinesis = kinesis
        self.s3 = s3
        self.stream_name = stream_name
        self.handler = handler
        self.settings = settings
        self.failure_bucket = failure_bucket
        self.mapping_id = mapping_id or str(uuid.uuid4())
        description = kinesis.describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"]
        self.stream_arn = description["StreamARN"]
        self.region = self.stream_arn.split(":")[3]
        shards = kinesis.list_shards(StreamName=stream_name)["Shards"]
        self.cursors = [ShardCursor(s["ShardId"]) for s in shards]
        self.counters = Counters()

    def poll_once(self) -> int:
        """One pass over every shard; returns how many records were completed (applied or sent away)."""
        return sum(self._poll_shard(cursor) for cursor in self.cursors)

    def run_until_idle(self, idle_passes: int = 2, max_seconds: float = 120.0) -> None:
        deadline = time.monotonic() + max_seconds
        quiet = 0
        while quiet < idle_passes and time.monotonic() < deadline:
            quiet = quiet + 1 if self.poll_once() == 0 else 0

    # -- one shard ---------------------------------------------------------------------------------

    def _poll_shard(self, cursor: ShardCursor) -> int:
        self._fetch(cursor)
        if not cursor.pending:
            return 0
        batch = cursor.pending[: self.settings.batch_size]
        done = self._deliver(cursor, batch)
        del cursor.pending[:done]
        return done

    def _fetch(self, cursor: ShardCursor) -> None:
        if len(cursor.pending) >= self.settings.batch_size:
            return
        if cursor.iterator is None:
            cursor.iterator = self.kinesis.get_shard_iterator(
                StreamName=self.stream_name, ShardId=cursor.shard_id, ShardIteratorType=self.settings.starting_position
            )["ShardIterator"]
        response = self.kinesis.get_records(ShardIterator=cursor.iterator, Limit=10_000)
        cursor.iterator = response.get("NextShardIterator") or cursor.iterator
        cursor.pending.extend(self._lambda_record(cursor.shard_id, r) for r in response["Records"])

    def _deliver(self, cursor: ShardCursor, batch: list[dict[str, Any]]) -> int:
        """Invoke once for the batch at the head of the shard; returns how many records are done."""
        fresh = self._drop_expired(cursor, batch)
        if fresh is not batch:
            return len(batch) - len(fresh)
        try:
            failed_from = self._invoke(batch)
        except Exception as error:
            self.counters.function_errors += 1
            log.warning("function error on %d records of %s: %s", len(batch), cursor.shard_id, error)
            return self._after_function_error(cursor, batch, error)
        if failed_from is None:
            cursor.attempts = 0
            self.counters.records_delivered += len(batch)
            return len(batch)
        self.counters.records_delivered += failed_from
        cursor.attempts = cursor.attempts + 1 if failed_from == 0 else 1
        if cursor.attempts > self.settings.maximum_retry_attempts:
            self._send_to_destination(cursor, batch[failed_from:], "RetryAttemptsExhausted")
            cursor.attempts = 0
            return len(batch)
        return failed_from  # the rest comes again, from the lowest failed record

    def _after_function_error(self, cursor: ShardCursor, batch: list[dict[str, Any]], error: Exception) -> int:
        if self.settings.bisect_batch_on_function_error and len(batch) > 1:
            # Retry the first half alone: a poisoned half is isolated without counting an attempt.
            half = batch[: len(batch) // 2]
            return self._deliver(cursor, half)
        cursor.attempts += 1
        if cursor.attempts > self.settings.maximum_retry_attempts:
            self._send_to_destination(cursor, batch, f"FunctionError: {error}")
            cursor.attempts = 0
            return len(batch)
        return 0

    def _drop_expired(self, cursor: ShardCursor, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        oldest_allowed = time.time() - self.settings.maximum_record_age_seconds
        expired = [r for r in batch if r["kinesis"]["approximateArrivalTimestamp"] < oldest_allowed]
        if not expired:
            return batch
        self._send_to_destination(cursor, expired, "RecordAgeExceeded")
        return batch[len(expired) :]

    def _invoke(self, batch: list[dict[str, Any]]) -> int | None:
        """Returns the index of the first failed record, or None when every record succeeded."""
        self.counters.invocations += 1
        context = InvocationContext(deadline=time.monotonic() + self.settings.function_timeout_seconds)
        response = self.handler({"Records": batch}, context)
        if not self.settings.report_batch_item_failures:
            return None
        failures = (response or {}).get("batchItemFailures") or []
        if not failures:
            return None
        positions = {r["kinesis"]["sequenceNumber"]: i for i, r in enumerate(batch)}
        indexes = [positions.get(str(f.get("itemIdentifier"))) for f in failures]
        if any(i is None for i in indexes):
            return 0  # Lambda treats an unknown or empty identifier as a failure of the whole batch
        return min(indexes)

    def _send_to_destination(self, cursor: ShardCursor, records: list[dict[str, Any]], condition: str) -> None:
        now = datetime.now(UTC)
        first, last = records[0]["kinesis"], records[-1]["kinesis"]
        document = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": InvocationContext(0).invoked_function_arn,
                "condition": condition,
                "approximateInvokeCount": cursor.attempts,
            },
            "version": "1.0",
            "timestamp": now.isoformat(),
            "KinesisBatchInfo": {
                "shardId": cursor.shard_id,
                "startSequenceNumber": first["sequenceNumber"],
                "endSequenceNumber": last["sequenceNumber"],
                "approximateArrivalOfFirstRecord": first["approximateArrivalTimestamp"],
                "approximateArrivalOfLastRecord": last["approximateArrivalTimestamp"],
                "batchSize": len(records),
                "streamArn": self.stream_arn,
            },
            "payload": json.dumps({"Records": records}),
        }
        key = f"aws/lambda/{self.mapping_id}/{cursor.shard_id}/{now:%Y/%m/%d/%Y-%m-%dT%H.%M.%S}-{uuid.uuid4()}"
        self.s3.put_object(Bucket=self.failure_bucket, Key=key, Body=json.dumps(document).encode())
        self.counters.batches_sent_to_destination += 1
        self.counters.records_sent_to_destination += len(records)
        log.error(
            "sent %d records of %s to s3://%s/%s (%s)",
            len(records),
            cursor.shard_id,
            self.failure_bucket,
            key,
            condition,
        )

    def _lambda_record(self, shard_id: str, record: dict[str, Any]) -> dict[str, Any]:
        arrival = record["ApproximateArrivalTimestamp"]
        sequence = record["SequenceNumber"]
        return {
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": record["PartitionKey"],
                "sequenceNumber": sequence,
                "data": base64.b64encode(record["Data"]).decode(),
                "approximateArrivalTimestamp": arrival.timestamp() if hasattr(arrival, "timestamp") else arrival,
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": f"{shard_id}:{sequence}",
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": "arn:aws:iam::000000000000:role/local",
            "awsRegion": self.region,
            "eventSourceARN": self.stream_arn,
        }
