"""Hostile records through the real handler: each is quarantined with its reason, never the batch."""

import json
import subprocess
import sys
from pathlib import Path

from app import processor
from tests.support.chain import KinesisBatch, LambdaContext, address, mint, transfer
from tests.unit.test_processor import emitted_metrics, sequence_numbers

A, B = address(0xA), address(0xB)
ROOT = Path(__file__).resolve().parents[2]


def with_field(event, **changes) -> bytes:
    doc = event.to_json()
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        target = doc
        for parent in parents:
            target = target[parent]
        target[leaf] = value
    return json.dumps(doc).encode()


def reasons_by_sequence(ledger):
    return {q["sequenceNumber"]: q["reason"] for q in ledger.quarantined()}


def test_unparseable_records_are_quarantined_one_by_one_and_the_batch_goes_on(ledger, capsys):
    batch = KinesisBatch()
    batch.add_event(mint(1, A, block=1, timestamp=100))
    huge_int = b'{"v": 1, "logIndex": ' + b"9" * 5000 + b"}"
    batch.add_raw(huge_int, "huge-int")
    batch.add_raw(b"[" * 100_000 + b"]" * 100_000, "deep-arrays")
    batch.add_raw(b"[" * 1500 + b"]" * 1500, "deep-but-small")  # below the size limit, past the recursion limit
    batch.add_raw(b"\xff\xfe\x00", "not-utf8")
    batch.add_event(mint(2, B, block=2, timestamp=200))

    assert processor.handler(batch.event(), LambdaContext()) == {"batchItemFailures": []}
    reasons = reasons_by_sequence(ledger)
    assert list(reasons) == sequence_numbers(batch.records[1:5])
    expected = [
        f"record: {len(huge_int)} bytes, more than a v1 record can hold (4096)",
        "record: 200000 bytes, more than a v1 record can hold (4096)",
        "record: 1500 '[' or '{', more than a v1 record holds (16)",
        "record: not UTF-8 JSON",
    ]
    assert all(r.startswith(e) for r, e in zip(reasons.values(), expected, strict=True)), reasons
    assert ledger.points()[A]["tokensHeld"] == 1 and ledger.points()[B]["tokensHeld"] == 1
    assert emitted_metrics(capsys)["PoisonRecords"] == 4


def test_deep_nesting_in_a_process_that_imported_web3_is_poison_not_a_crash():
    """web3 raises the recursion limit to 100,000: past it Python's parser overflows the C stack."""
    script = """
import base64, json, os, sys
import web3  # noqa: F401
assert sys.getrecursionlimit() >= 100_000
from tests.support.aws import moto_ledger, TOKENS, POINTS
from tests.support.chain import KinesisBatch, LambdaContext, RATE_KEY, address, mint
with moto_ledger() as ledger:
    os.environ.update(TOKENS_TABLE=TOKENS, POINTS_TABLE=POINTS, QUARANTINE_QUEUE_URL=ledger.queue_url,
                      POINTS_PER_DAY=json.dumps({RATE_KEY: 10}))
    from app import processor
    batch = KinesisBatch()
    batch.add_raw(b"[" * 100_000 + b"]" * 100_000, "deep")
    batch.add_event(mint(1, address(0xA), block=1, timestamp=100))
    assert processor.handler(batch.event(), LambdaContext()) == {"batchItemFailures": []}
    (quarantined,) = ledger.quarantined()
    print(quarantined["reason"], file=sys.stderr)
    assert ledger.points()[address(0xA)]["tokensHeld"] == 1
"""
    import os

    env = {**os.environ, "POWERTOOLS_METRICS_NAMESPACE": "test", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "record: 200000 bytes, more than a v1 record can hold" in result.stderr


def test_an_event_earlier_than_the_tokens_acquisition_is_quarantined_as_inconsistent(ledger, capsys):
    batch = KinesisBatch()
    batch.add_event(mint(1, A, block=10, timestamp=1000))
    batch.add_event(transfer(1, A, B, block=11, timestamp=500))  # higher seq, earlier time
    batch.add_raw(with_field(transfer(1, A, B, block=12, timestamp=0), block__timestamp=10**40))
    batch.add_event(transfer(1, A, B, block=13, timestamp=1500))  # the chain goes on

    assert processor.handler(batch.event(), LambdaContext()) == {"batchItemFailures": []}
    reasons = list(reasons_by_sequence(ledger).values())
    assert reasons[0].startswith(
        "inconsistent: block.timestamp 500 of seq 11000000 is earlier than the token's acquiredAt 1000"
    )
    assert reasons[1] == f"block.timestamp: must be below {2**32}, got a 41-digit number"
    points = ledger.points()
    assert points[A]["weightedSeconds"] == 10 * 500 and points[A]["tokensHeld"] == 0
    assert all(value >= 0 for row in points.values() for value in row.values() if isinstance(value, int))
    metrics = emitted_metrics(capsys)
    assert (metrics["PoisonRecords"], metrics["EventsApplied"], metrics["RecordsFailed"]) == (2, 2, 0)


def test_numbers_dynamodb_cannot_store_never_reach_a_write(ledger):
    batch = KinesisBatch()
    good = mint(1, A, block=1, timestamp=100)
    for field, value in [
        ("block__number", 10**40),
        ("block__number", 2**63),
        ("chainId", 10**40),
        ("tx__index", 10**40),
        ("logIndex", 10**40),
        ("block__timestamp", 2**32),
    ]:
        batch.add_raw(with_field(good, **{field: value}), field)
    batch.add_raw(with_field(good, tokenId=str(2**256)), "tokenId")
    batch.add_event(good)

    written = []
    client = processor.consumer().store.client
    client.meta.events.register("provide-client-params.dynamodb.*", lambda params, **_: written.append(params))
    assert processor.handler(batch.event(), LambdaContext()) == {"batchItemFailures": []}
    fields = [r.split(":")[0] for r in reasons_by_sequence(ledger).values()]
    assert fields == ["block.number", "block.number", "chainId", "tx.index", "logIndex", "block.timestamp", "tokenId"]
    assert ledger.points()[A]["tokensHeld"] == 1
    numbers = _numbers(written)
    assert numbers and max(len(n.lstrip("-")) for n in numbers) <= 38


def _numbers(value) -> list[str]:
    """Every DynamoDB number ({"N": "..."}) inside request parameters."""
    if isinstance(value, dict):
        if set(value) == {"N"}:
            return [value["N"]]
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return []
