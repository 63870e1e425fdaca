"""A Kinesis client wrapper that fails records and whole calls at random (moto never throttles),
and checks the publisher's ordering rules on every call it sees (calls overlap; the writes that
reach moto do not, since moto loses records when two calls write to one shard at once)."""

from __future__ import annotations

import random
import threading
from typing import Any

from botocore.exceptions import ClientError

RECORD_ERRORS = ("ProvisionedThroughputExceededException", "InternalFailure")


class FaultyKinesis:
    def __init__(
        self,
        client: Any,
        *,
        failure_rate: float = 0.3,
        call_failure_rate: float = 0.05,
        seed: int = 0,
        failing_calls: tuple[int, ...] = (),
    ):
        self.client = client
        self.failure_rate = failure_rate
        self.call_failure_rate = call_failure_rate
        self.random = random.Random(seed)
        self.failing_calls = set(failing_calls)  # call numbers (from 1) that fail whatever the dice say
        self.lock = threading.Lock()
        self.moto_lock = threading.Lock()  # moto's Shard.put_record is not safe for concurrent writers
        self.in_flight: set[str] = set()
        self.calls = 0
        self.failed_records = 0
        self.failed_calls = 0
        self.largest_call = 0
        self.violations: list[str] = []

    def put_records(self, *, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        keys = [record["PartitionKey"] for record in Records]
        with self.lock:
            self.calls += 1
            self.largest_call = max(self.largest_call, len(Records))
            if len(set(keys)) != len(keys):
                self.violations.append("a partition key twice in one call")
            if len(Records) > 500:
                self.violations.append(f"{len(Records)} records in one call")
            if self.in_flight & set(keys):
                self.violations.append("a partition key in two calls at once")
            self.in_flight |= set(keys)
            fail_call = self.random.random() < self.call_failure_rate or self.calls in self.failing_calls
            failing = [self.random.random() < self.failure_rate for _ in Records]
        try:
            if fail_call:
                self.failed_calls += 1
                raise ClientError(
                    {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "injected"}}, "PutRecords"
                )
            sent = [record for record, fail in zip(Records, failing, strict=True) if not fail]
            with self.moto_lock:
                answers = iter(self.client.put_records(StreamName=StreamName, Records=sent)["Records"] if sent else [])
            results = []
            for fail in failing:
                if fail:
                    self.failed_records += 1
                    results.append({"ErrorCode": self.random.choice(RECORD_ERRORS), "ErrorMessage": "injected"})
                else:
                    results.append(next(answers))
            return {"FailedRecordCount": sum(failing), "Records": results}
        finally:
            with self.lock:
                self.in_flight -= set(keys)
