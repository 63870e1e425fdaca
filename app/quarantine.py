"""The quarantine queue's message: one record that can never apply, with its full body and the reason.

Both writers use it: the Lambda consumer (a Kinesis record: its source fields filled in) and the
monitor's direct sink (an event it never put on the stream: those fields are null). `ngu-points
redrive` reads back `data` (the record's bytes, base64) and `partitionKey` alone (app/redrive.py).
"""

from __future__ import annotations

import base64
import json
from typing import Any

REASON_ATTRIBUTE_LIMIT = 256  # keeps the attribute short; the body carries the whole reason


def message(
    reason: str,
    *,
    data: str | None,
    partition_key: str | None,
    event_source_arn: str | None = None,
    shard_id: str | None = None,
    sequence_number: str | None = None,
    arrival: float | None = None,
) -> dict[str, Any]:
    """`data` is the record's bytes in base64, as Kinesis hands them to the consumer."""
    return {
        "reason": reason,
        "eventSourceARN": event_source_arn,
        "shardId": shard_id,
        "sequenceNumber": sequence_number,
        "partitionKey": partition_key,
        "approximateArrivalTimestamp": arrival,
        "data": data,
    }


def of_event_bytes(reason: str, data: bytes, partition_key: str) -> dict[str, Any]:
    """The message of an event that never reached the stream (the monitor's direct sink)."""
    return message(reason, data=base64.b64encode(data).decode(), partition_key=partition_key)


def send(sqs: Any, queue_url: str, body: dict[str, Any]) -> None:
    reason = body["reason"]
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps(body),
        MessageAttributes={"reason": {"DataType": "String", "StringValue": reason[:REASON_ATTRIBUTE_LIMIT]}},
    )
