"""A Kinesis event source mapping for the local stack (moto's needs Docker, which we do not have).

Polls every shard of a stream and invokes a handler with the Kinesis event JSON Lambda sends,
honouring the mapping settings of DESIGN §5: batch size, ReportBatchItemFailures, maximum retry
attempts, bisect on function error, maximum record age, and an S3 on-failure destination that keeps
the full records. The settings and the state come from the mapping registered in the emulator
(`from_registered`): a disabled mapping is not polled, as Lambda stops polling it.

Shards are polled in parallel. `parallelization_factor` is emulated as Lambda does it: a shard's
records are spread over N lanes by a hash of the partition key, and each lane has at most one batch
in flight, so up to N batches per shard run at once while one key's records stay in order.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
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
    parallelization_factor: int = 1

    @classmethod
    def from_registered(cls, mapping: dict[str, Any], function: dict[str, Any]) -> MappingSettings:
        """From `get_event_source_mapping` and the function's `get_function_configuration`."""
        return cls(
            batch_size=int(mapping["BatchSize"]),
            maximum_retry_attempts=int(mapping["MaximumRetryAttempts"]),
            bisect_batch_on_function_error=bool(mapping["BisectBatchOnFunctionError"]),
            maximum_record_age_seconds=int(mapping["MaximumRecordAgeInSeconds"]),
            starting_position=mapping.get("StartingPosition", "TRIM_HORIZON"),
            function_timeout_seconds=int(function["Timeout"]),
            report_batch_item_failures="ReportBatchItemFailures" in mapping.get("FunctionResponseTypes", []),
            parallelization_factor=int(mapping.get("ParallelizationFactor", 1)),
        )

    def describe(self) -> str:
        return ", ".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))


@dataclass
class Lane:
    """One of a shard's `parallelization_factor` ordered sub-sequences; one batch in flight at most."""

    shard_id: str
    pending: list[dict[str, Any]] = field(default_factory=list)  # fetched, not yet done
    attempts: int = 0  # failed invocations of the batch now at the head of `pending`


@dataclass
class ShardCursor:
    shard_id: str
    lanes: list[Lane]
    iterator: str | None = None

    @property
    def pending(self) -> int:
        return sum(len(lane.pending) for lane in self.lanes)


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
    records_fetched: int = 0
    invocations: int = 0
    function_errors: int = 0
    records_delivered: int = 0
    batches_sent_to_destination: int = 0
    records_sent_to_destination: int = 0
    max_batches_in_flight: int = 0
    _in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)

    def enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_batches_in_flight = max(self.max_batches_in_flight, self._in_flight)

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    @property
    def records_done(self) -> int:
        return self.records_delivered + self.records_sent_to_destination


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
        enabled: Callable[[], bool] = lambda: True,
    ) -> None:
        self.kinesis = kinesis
        self.s3 = s3
        self.stream_name = stream_name
        self.handler = handler
        self.settings = settings
        self.failure_bucket = failure_bucket
        self.mapping_id = mapping_id or str(uuid.uuid4())
        self.enabled = enabled
        description = kinesis.describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"]
        self.stream_arn = description["StreamARN"]
        self.region = self.stream_arn.split(":")[3]
        shards = kinesis.list_shards(StreamName=stream_name)["Shards"]
        factor = settings.parallelization_factor
        self.cursors = [ShardCursor(s["ShardId"], [Lane(s["ShardId"]) for _ in range(factor)]) for s in shards]
        self.counters = Counters()
        self.last_quiet_pass = float("-inf")  # when the last pass that found nothing to do began
        # Shards are fetched by one pool, lanes invoke from another: a shard waiting on its lanes
        # never holds a thread a lane needs.
        self._shards = ThreadPoolExecutor(len(self.cursors), thread_name_prefix="esm-shard")
        self._lanes = ThreadPoolExecutor(len(self.cursors) * factor, thread_name_prefix="esm-lane")

    @classmethod
    def from_registered(cls, client: Callable[[str], Any], mapping_id: str, handler: Handler) -> EventSourceMapping:
        """The mapping registered in the emulator under `mapping_id`: its stream, function settings,
        on-failure bucket and, at every pass, its state."""
        functions = client("lambda")
        mapping = functions.get_event_source_mapping(UUID=mapping_id)
        function = functions.get_function_configuration(FunctionName=mapping["FunctionArn"])
        destination = mapping["DestinationConfig"]["OnFailure"]["Destination"]
        if not destination.startswith("arn:aws:s3:::"):
            raise ValueError(f"mapping {mapping_id}: on-failure destination {destination!r} is not an S3 bucket")
        return cls(
            kinesis=client("kinesis"),
            s3=client("s3"),
            stream_name=mapping["EventSourceArn"].split(":stream/", 1)[1],
            handler=handler,
            settings=MappingSettings.from_registered(mapping, function),
            failure_bucket=destination.removeprefix("arn:aws:s3:::"),
            mapping_id=mapping_id,
            enabled=lambda: functions.get_event_source_mapping(UUID=mapping_id)["State"] == "Enabled",
        )

    def close(self) -> None:
        self._shards.shutdown(wait=True, cancel_futures=True)
        self._lanes.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> EventSourceMapping:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def poll_once(self) -> int:
        """One pass: every shard fetches and each of its lanes invokes at most one batch, all at once.
        Returns how many records were completed (applied or sent away); 0 when the mapping is disabled."""
        if not self.enabled():
            return 0
        started, fetched = time.monotonic(), self.counters.records_fetched
        done = sum(f.result() for f in [self._shards.submit(self._poll_shard, c) for c in self.cursors])
        if done == 0 and self.pending == 0 and self.counters.records_fetched == fetched:
            self.last_quiet_pass = started  # every record on the stream before `started` is done
        return done

    def run_until_idle(self, idle_passes: int = 2, max_seconds: float = 120.0) -> None:
        deadline = time.monotonic() + max_seconds
        quiet = 0
        while quiet < idle_passes and time.monotonic() < deadline:
            quiet = quiet + 1 if self.poll_once() == 0 else 0

    def run(self, stop: threading.Event, interval: float = 0.05) -> None:
        """Poll until `stop` is set, pausing `interval` after a pass with nothing to do (Lambda polls
        an idle shard about once a second; the demo wants to see records applied sooner)."""
        while not stop.is_set():
            if self.poll_once() == 0:
                stop.wait(interval)

    @property
    def pending(self) -> int:
        return sum(cursor.pending for cursor in self.cursors)

    # -- one shard ---------------------------------------------------------------------------------

    def _poll_shard(self, cursor: ShardCursor) -> int:
        self._fetch(cursor)
        busy = [lane for lane in cursor.lanes if lane.pending]
        if len(busy) == 1:
            return self._poll_lane(busy[0])
        return sum(f.result() for f in [self._lanes.submit(self._poll_lane, lane) for lane in busy])

    def _fetch(self, cursor: ShardCursor) -> None:
        if cursor.pending >= self.settings.batch_size * len(cursor.lanes):
            return
        if cursor.iterator is None:
            cursor.iterator = self.kinesis.get_shard_iterator(
                StreamName=self.stream_name, ShardId=cursor.shard_id, ShardIteratorType=self.settings.starting_position
            )["ShardIterator"]
        response = self.kinesis.get_records(ShardIterator=cursor.iterator, Limit=10_000)
        cursor.iterator = response.get("NextShardIterator") or cursor.iterator
        for record in response["Records"]:
            cursor.lanes[self._lane_of(record["PartitionKey"])].pending.append(
                self._lambda_record(cursor.shard_id, record)
            )
        self.counters.add(records_fetched=len(response["Records"]))

    def _lane_of(self, partition_key: str) -> int:
        digest = hashlib.md5(partition_key.encode(), usedforsecurity=False).digest()
        return int.from_bytes(digest[:8], "big") % self.settings.parallelization_factor

    def _poll_lane(self, lane: Lane) -> int:
        batch = lane.pending[: self.settings.batch_size]
        self.counters.enter()
        try:
            done = self._deliver(lane, batch)
        finally:
            self.counters.leave()
        del lane.pending[:done]
        return done

    def _deliver(self, lane: Lane, batch: list[dict[str, Any]]) -> int:
        """Invoke once for the batch at the head of the lane; returns how many records are done."""
        fresh = self._drop_expired(lane, batch)
        if fresh is not batch:
            return len(batch) - len(fresh)
        try:
            failed_from = self._invoke(batch)
        except Exception as error:
            self.counters.add(function_errors=1)
            log.warning("function error on %d records of %s: %s", len(batch), lane.shard_id, error)
            return self._after_function_error(lane, batch, error)
        if failed_from is None:
            lane.attempts = 0
            self.counters.add(records_delivered=len(batch))
            return len(batch)
        self.counters.add(records_delivered=failed_from)
        lane.attempts = lane.attempts + 1 if failed_from == 0 else 1
        if self._retries_exhausted(lane):
            self._send_to_destination(lane, batch[failed_from:], "RetryAttemptsExhausted")
            lane.attempts = 0
            return len(batch)
        return failed_from  # the rest comes again, from the lowest failed record

    def _after_function_error(self, lane: Lane, batch: list[dict[str, Any]], error: Exception) -> int:
        if self.settings.bisect_batch_on_function_error and len(batch) > 1:
            # Retry the first half alone: a poisoned half is isolated without counting an attempt.
            half = batch[: len(batch) // 2]
            return self._deliver(lane, half)
        lane.attempts += 1
        if self._retries_exhausted(lane):
            self._send_to_destination(lane, batch, f"FunctionError: {error}")
            lane.attempts = 0
            return len(batch)
        return 0

    def _retries_exhausted(self, lane: Lane) -> bool:
        limit = self.settings.maximum_retry_attempts
        return limit >= 0 and lane.attempts > limit  # -1: retry until the record expires, as Lambda does

    def _drop_expired(self, lane: Lane, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.settings.maximum_record_age_seconds == -1:  # Lambda's "no limit"
            return batch
        oldest_allowed = time.time() - self.settings.maximum_record_age_seconds
        expired = [r for r in batch if r["kinesis"]["approximateArrivalTimestamp"] < oldest_allowed]
        if not expired:
            return batch
        self._send_to_destination(lane, expired, "RecordAgeExceeded")
        return batch[len(expired) :]

    def _invoke(self, batch: list[dict[str, Any]]) -> int | None:
        """Returns the index of the first failed record, or None when every record succeeded."""
        self.counters.add(invocations=1)
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

    def _send_to_destination(self, lane: Lane, records: list[dict[str, Any]], condition: str) -> None:
        now = datetime.now(UTC)
        first, last = records[0]["kinesis"], records[-1]["kinesis"]
        document = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": InvocationContext(0).invoked_function_arn,
                "condition": condition,
                "approximateInvokeCount": lane.attempts,
            },
            "version": "1.0",
            "timestamp": now.isoformat(),
            "KinesisBatchInfo": {
                "shardId": lane.shard_id,
                "startSequenceNumber": first["sequenceNumber"],
                "endSequenceNumber": last["sequenceNumber"],
                "approximateArrivalOfFirstRecord": first["approximateArrivalTimestamp"],
                "approximateArrivalOfLastRecord": last["approximateArrivalTimestamp"],
                "batchSize": len(records),
                "streamArn": self.stream_arn,
            },
            "payload": json.dumps({"Records": records}),
        }
        key = f"aws/lambda/{self.mapping_id}/{lane.shard_id}/{now:%Y/%m/%d/%Y-%m-%dT%H.%M.%S}-{uuid.uuid4()}"
        self.s3.put_object(Bucket=self.failure_bucket, Key=key, Body=json.dumps(document).encode())
        self.counters.add(batches_sent_to_destination=1, records_sent_to_destination=len(records))
        log.error(
            "sent %d records of %s to s3://%s/%s (%s)",
            len(records),
            lane.shard_id,
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
