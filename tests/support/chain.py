"""Builders of chain events and Kinesis records for tests (no AWS, no chain)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any

from app.events import ZERO_ADDRESS, ChainEvent, build_event

CHAIN_ID = 31337
CONTRACT = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
RATE_KEY = f"{CHAIN_ID}:{CONTRACT}"


def address(n: int) -> str:
    return "0x" + f"{n:040x}"


def fake_hash(*parts: object) -> str:
    return "0x" + hashlib.sha256(repr(parts).encode()).hexdigest()


def transfer(
    token_id: int,
    frm: str,
    to: str,
    *,
    block: int,
    timestamp: int,
    log_index: int = 0,
    contract: str = CONTRACT,
    chain_id: int = CHAIN_ID,
) -> ChainEvent:
    return build_event(
        chain_id=chain_id,
        contract=contract,
        token_id=token_id,
        from_address=frm,
        to_address=to,
        block_number=block,
        block_hash=fake_hash("block", block),
        block_timestamp=timestamp,
        tx_hash=fake_hash("tx", block, log_index),
        tx_index=0,
        log_index=log_index,
    )


def mint(token_id: int, to: str, **kw: Any) -> ChainEvent:
    return transfer(token_id, ZERO_ADDRESS, to, **kw)


def burn(token_id: int, frm: str, **kw: Any) -> ChainEvent:
    return transfer(token_id, frm, ZERO_ADDRESS, **kw)


@dataclass
class KinesisBatch:
    """Builds the Kinesis event JSON that Lambda's event source mapping delivers."""

    stream_arn: str = "arn:aws:kinesis:us-east-1:123456789012:stream/ngu-points-core-v5-events-test-v5"
    shard: str = "shardId-000000000000"
    next_sequence: int = 1
    records: list[dict[str, Any]] = field(default_factory=list)

    def add_event(self, event: ChainEvent) -> dict[str, Any]:
        return self.add_raw(event.encode(), event.partition_key)

    def add_raw(self, data: bytes, partition_key: str = "raw", *, b64: str | None = None) -> dict[str, Any]:
        sequence = str(49590338271490256608559692538361571095921575989136588898 + self.next_sequence)
        self.next_sequence += 1
        record = {
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": partition_key,
                "sequenceNumber": sequence,
                "data": b64 if b64 is not None else base64.b64encode(data).decode(),
                "approximateArrivalTimestamp": 1700000000.0,
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": f"{self.shard}:{sequence}",
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": "arn:aws:iam::123456789012:role/ngu-points-event-processor-test",
            "awsRegion": "us-east-1",
            "eventSourceARN": self.stream_arn,
        }
        self.records.append(record)
        return record

    def event(self) -> dict[str, Any]:
        return {"Records": list(self.records)}


@dataclass
class LambdaContext:
    remaining_ms: int = 30_000
    function_name: str = "ngu-points-event-processor-test-processKinesisEvents"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:ngu-points-test"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    function_version: str = "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms
