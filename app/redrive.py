"""Put records that left the pipeline back on the stream, once their cause is fixed.

Two places hold such records, each with the full record body:
- the S3 on-failure destination of the event source mapping (batches that failed past the retries),
- the quarantine queue (poison records: bad schema, or a contract without a points rate).

A redriven record is applied by the consumer like any other: if the token has moved on since
(a later event was applied), the store skips it as stale and counts it (`DuplicatesSkipped`), so a
redrive can never corrupt the ledger; reconciliation against the chain repairs such tokens.
An S3 object is moved under `redriven/` and a queue message deleted only after Kinesis acknowledged
every record it held.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from app.errors import OperatorError

log = logging.getLogger(__name__)
PUT_RECORDS_LIMIT = 500


@dataclass(frozen=True)
class Record:
    data: bytes
    partition_key: str


@dataclass
class RedriveReport:
    sources: int = 0
    records: int = 0
    unreadable: int = 0  # sources left where they are: not a record this tool can put back

    def summary(self, dry_run: bool) -> str:
        verb = "would redrive" if dry_run else "redrove"
        left = f"; {self.unreadable} unreadable sources left in place" if self.unreadable else ""
        return f"{verb} {self.records} records from {self.sources} sources{left}"


class Redriver:
    # A dry run hides each message while it pages through the queue, then shows them all again.
    VISIBILITY_SECONDS = 120
    # Long polling asks every SQS server; a short poll samples some and may answer "empty" too early.
    WAIT_SECONDS = 1
    MAX_REFUSALS = 10

    def __init__(self, kinesis: Any, stream_name: str, *, dry_run: bool = False) -> None:
        self.kinesis = kinesis
        self.stream_name = stream_name
        self.dry_run = dry_run

    def from_failure_bucket(self, s3: Any, bucket: str, prefix: str = "aws/lambda/") -> RedriveReport:
        report = RedriveReport()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for listed in page.get("Contents", []):
                key = listed["Key"]
                try:
                    records = list(
                        _records_of_invocation(json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
                    )
                except (ValueError, KeyError, TypeError) as error:
                    log.warning("s3://%s/%s left in place: %s", bucket, key, error)
                    report.unreadable += 1
                    continue
                self._put(records)
                report.sources += 1
                report.records += len(records)
                if not self.dry_run:
                    s3.copy_object(Bucket=bucket, Key=f"redriven/{key}", CopySource={"Bucket": bucket, "Key": key})
                    s3.delete_object(Bucket=bucket, Key=key)
                    log.info("redrove %d records from s3://%s/%s", len(records), bucket, key)
        return report

    def from_quarantine(self, sqs: Any, queue_url: str) -> RedriveReport:
        """Page through the whole queue. A real run deletes a message only after Kinesis acknowledged
        its record; a dry run, and whatever a run leaves (unreadable, or in flight when it failed),
        is made visible again at the end, so a run right after sees every message."""
        report = RedriveReport()
        seen: set[str] = set()
        held: dict[str, str] = {}  # message id -> receipt handle, hidden by this run and not deleted
        try:
            while messages := sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=self.WAIT_SECONDS,
                VisibilityTimeout=self.VISIBILITY_SECONDS,
            ).get("Messages", []):
                held.update((m["MessageId"], m["ReceiptHandle"]) for m in messages)
                fresh = [m for m in messages if m["MessageId"] not in seen]
                seen.update(m["MessageId"] for m in fresh)
                readable = []
                for message in fresh:
                    try:
                        readable.append((message, _record_of_quarantined(message["Body"])))
                    except (ValueError, KeyError, TypeError) as error:
                        log.warning("message %s left in the queue: %s", message["MessageId"], error)
                        report.unreadable += 1
                self._put([record for _, record in readable])
                report.sources += len(readable)
                report.records += len(readable)
                if not self.dry_run and readable:
                    self._delete(sqs, queue_url, [m for m, _ in readable])
                    for message, _ in readable:
                        held.pop(message["MessageId"])
        finally:
            _show_again(sqs, queue_url, list(held.values()))
        return report

    def _delete(self, sqs: Any, queue_url: str, messages: list[dict[str, Any]]) -> None:
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        failed = sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed", [])
        for failure in failed:  # put back already: a second redrive of it is a skipped duplicate
            log.warning("message %s redriven but not deleted: %s", messages[int(failure["Id"])]["MessageId"], failure)

    def _put(self, records: list[Record]) -> None:
        if self.dry_run:
            return
        # In order and one call at a time, so records of one token keep their order.
        pending, refusals = records, 0
        while pending:
            chunk, pending = pending[:PUT_RECORDS_LIMIT], pending[PUT_RECORDS_LIMIT:]
            response = self.kinesis.put_records(
                StreamName=self.stream_name,
                Records=[{"Data": r.data, "PartitionKey": r.partition_key} for r in chunk],
            )
            if response.get("FailedRecordCount"):
                failed_at = next(i for i, r in enumerate(response["Records"]) if "ErrorCode" in r)
                pending = chunk[failed_at:] + pending  # retry from the first refused, keeping order
                refusals += 1
                if refusals > self.MAX_REFUSALS:
                    code = response["Records"][failed_at]["ErrorCode"]
                    raise OperatorError(f"stream {self.stream_name}: refused records {refusals} times ({code})", 1)
                time.sleep(random.uniform(0, min(5.0, 0.1 * 2**refusals)))


def _record_of_quarantined(body: str) -> Record:
    document = json.loads(body)
    return Record(base64.b64decode(document["data"], validate=True), document.get("partitionKey") or "quarantine")


def _show_again(sqs: Any, queue_url: str, receipt_handles: list[str]) -> None:
    for start in range(0, len(receipt_handles), 10):
        chunk = receipt_handles[start : start + 10]
        sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(chunk)],
        )


def _records_of_invocation(document: dict[str, Any]) -> Iterator[Record]:
    payload = document.get("payload")
    if isinstance(payload, str):
        payload = json.loads(payload)
    if not payload or "Records" not in payload:
        raise ValueError("on-failure record holds no payload (only S3 destinations keep the records)")
    for record in payload["Records"]:
        kinesis = record["kinesis"]
        yield Record(base64.b64decode(kinesis["data"]), kinesis["partitionKey"])
