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


class Redriver:
    def __init__(self, kinesis: Any, stream_name: str, *, dry_run: bool = False) -> None:
        self.kinesis = kinesis
        self.stream_name = stream_name
        self.dry_run = dry_run

    def from_failure_bucket(self, s3: Any, bucket: str, prefix: str = "aws/lambda/") -> RedriveReport:
        report = RedriveReport()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for listed in page.get("Contents", []):
                key = listed["Key"]
                document = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
                records = list(_records_of_invocation(document))
                self._put(records)
                report.sources += 1
                report.records += len(records)
                if not self.dry_run:
                    s3.copy_object(Bucket=bucket, Key=f"redriven/{key}", CopySource={"Bucket": bucket, "Key": key})
                    s3.delete_object(Bucket=bucket, Key=key)
                log.info("redrove %d records from s3://%s/%s", len(records), bucket, key)
        return report

    def from_quarantine(self, sqs: Any, queue_url: str) -> RedriveReport:
        report = RedriveReport()
        while True:
            messages = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=60
            ).get("Messages", [])
            if not messages:
                return report
            for message in messages:
                body = json.loads(message["Body"])
                record = Record(base64.b64decode(body["data"]), body.get("partitionKey") or "quarantine")
                self._put([record])
                report.sources += 1
                report.records += 1
                if not self.dry_run:
                    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            if self.dry_run:
                return report  # messages come back after their visibility timeout; do not loop on them

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
                time.sleep(random.uniform(0, min(5.0, 0.1 * 2**refusals)))


def _records_of_invocation(document: dict[str, Any]) -> Iterator[Record]:
    payload = document.get("payload")
    if isinstance(payload, str):
        payload = json.loads(payload)
    if not payload or "Records" not in payload:
        raise ValueError("on-failure record holds no payload (only S3 destinations keep the records)")
    for record in payload["Records"]:
        kinesis = record["kinesis"]
        yield Record(base64.b64decode(kinesis["data"]), kinesis["partitionKey"])
