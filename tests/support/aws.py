"""moto-backed tables and queue for in-process tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from moto import mock_aws

from app.store import Store, create_tables, dynamodb_client

TOKENS = "ngu-points-core-v5-tokens-test"
POINTS = "ngu-points-core-v5-points-test"
QUEUE = "ngu-points-event-processor-test-quarantine"


@dataclass
class Ledger:
    client: Any
    store: Store
    sqs: Any
    queue_url: str

    def tokens(self) -> dict[str, dict[str, Any]]:
        return {item["token"]: item for item in _scan(self.client, TOKENS)}

    def points(self) -> dict[str, dict[str, Any]]:
        return {item["holder"]: item for item in _scan(self.client, POINTS)}

    def quarantined(self) -> list[dict[str, Any]]:
        import json

        messages = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return messages
            messages.extend(json.loads(m["Body"]) for m in got)


@contextmanager
def moto_ledger() -> Iterator[Ledger]:
    with mock_aws():
        client = dynamodb_client(region_name="us-east-1")
        create_tables(client, tokens=TOKENS, points=POINTS)
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue_url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
        yield Ledger(client, Store(TOKENS, POINTS, client=client), sqs, queue_url)


def _scan(client: Any, table: str) -> list[dict[str, Any]]:
    items = []
    for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for item in page["Items"]:
            items.append({k: int(v["N"]) if "N" in v else v["S"] for k, v in item.items()})
    return items
