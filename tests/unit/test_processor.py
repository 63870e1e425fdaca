import base64
import json

import pytest
from botocore.exceptions import ClientError

from app import processor
from tests.support.chain import KinesisBatch, LambdaContext, address, mint, transfer

A, B = address(0xA), address(0xB)


def emitted_metrics(capsys) -> dict[str, float]:
    totals: dict[str, float] = {}
    for line in capsys.readouterr().out.splitlines():
        try:
            blob = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "_aws" not in blob:
            continue
        (directive,) = blob["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "NGUPoints/Processor"
        assert directive["Dimensions"] == [["Stage"]] and blob["Stage"] == "test"
        for metric in directive["Metrics"]:
            totals[metric["Name"]] = totals.get(metric["Name"], 0) + sum(
                blob[metric["Name"]] if isinstance(blob[metric["Name"]], list) else [blob[metric["Name"]]]
            )
    return totals


def sequence_numbers(records):
    return [r["kinesis"]["sequenceNumber"] for r in records]


def fail_transactions_for(ledger, token_key):
    client = processor.consumer().store.client
    real = client.transact_write_items

    def transact_write_items(**kwargs):
        if any(item["Update"]["Key"].get("token", {}).get("S") == token_key for item in kwargs["TransactItems"]):
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "injected"}},
                "TransactWriteItems",
            )
        return real(**kwargs)

    client.transact_write_items = transact_write_items


def test_a_clean_batch_applies_every_record_and_reports_no_failure(ledger, capsys):
    batch = KinesisBatch()
    for i in range(5):
        batch.add_event(mint(i, A, block=1, timestamp=100, log_index=i))
    batch.add_event(transfer(0, A, B, block=2, timestamp=200))
    batch.add_event(transfer(0, A, B, block=2, timestamp=200))  # re-delivered
    assert processor.handler(batch.event(), LambdaContext()) == {"batchItemFailures": []}
    assert ledger.points()[A]["tokensHeld"] == 4 and ledger.points()[B]["tokensHeld"] == 1
    metrics = emitted_metrics(capsys)
    assert metrics["EventsApplied"] == 6 and metrics["DuplicatesSkipped"] == 1
    assert metrics["RecordsFailed"] == 0 and metrics["PoisonRecords"] == 0


@pytest.mark.parametrize("k", [0, 3, 6])
def test_dynamodb_failure_on_record_k_reports_k_and_every_later_record(ledger, capsys, k):
    batch = KinesisBatch()
    events = [mint(i, A, block=1, timestamp=100, log_index=i) for i in range(7)]
    for event in events:
        batch.add_event(event)
    processor.consumer()
    fail_transactions_for(ledger, events[k].token_key)
    response = processor.handler(batch.event(), LambdaContext())
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == sequence_numbers(batch.records[k:])
    assert set(ledger.tokens()) == {e.token_key for e in events[:k]}
    assert emitted_metrics(capsys)["RecordsFailed"] == 7 - k


def test_poison_records_are_quarantined_handled_and_do_not_block_later_records(ledger, capsys):
    batch = KinesisBatch()
    batch.add_event(mint(1, A, block=1, timestamp=100))
    batch.add_raw(b"{not json", "pk-json")
    batch.add_raw(b"", "pk-b64", b64="@@not base64@@")
    bad_schema = json.loads(mint(2, A, block=1, timestamp=100, log_index=1).encode())
    bad_schema["v"] = 9
    batch.add_raw(json.dumps(bad_schema).encode(), "pk-schema")
    other_contract = mint(3, A, block=1, timestamp=100, log_index=2, contract=address(0xFEED))
    batch.add_event(other_contract)  # no rate and no default
    batch.add_event(mint(4, B, block=2, timestamp=200))

    assert processor.handler(batch.event(), LambdaContext()) == {"batchItemFailures": []}
    quarantined = ledger.quarantined()
    assert [q["sequenceNumber"] for q in quarantined] == sequence_numbers(batch.records[1:5])
    reasons = [q["reason"] for q in quarantined]
    assert reasons[0].startswith("record: not UTF-8 JSON")
    assert reasons[1].startswith("record: data is not base64")
    assert reasons[2].startswith("v: unsupported schema version 9")
    assert reasons[3] == f"no points rate for contract {other_contract.rate_key} and no default"
    assert base64.b64decode(quarantined[0]["data"]) == b"{not json"
    assert all(q["shardId"] == "shardId-000000000000" and q["eventSourceARN"] for q in quarantined)
    assert ledger.points()[B]["tokensHeld"] == 1 and ledger.points()[A]["tokensHeld"] == 1
    assert emitted_metrics(capsys)["PoisonRecords"] == 4


def test_default_rate_applies_to_contracts_without_their_own(ledger, monkeypatch):
    monkeypatch.setenv("DEFAULT_POINTS_PER_DAY", "3")
    processor.consumer.cache_clear()
    batch = KinesisBatch()
    batch.add_event(mint(3, A, block=1, timestamp=100, contract=address(0xFEED)))
    assert processor.handler(batch.event(), LambdaContext()) == {"batchItemFailures": []}
    assert ledger.points()[A]["weightedHeld"] == 3


def test_a_failed_quarantine_send_is_a_failure_not_a_loss(ledger):
    batch = KinesisBatch()
    batch.add_raw(b"garbage")
    batch.add_event(mint(1, A, block=1, timestamp=100))
    consumer = processor.consumer()

    def refuse(**_):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "SendMessage")

    consumer.sqs.send_message = refuse
    response = processor.handler(batch.event(), LambdaContext())
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == sequence_numbers(batch.records)
    assert ledger.tokens() == {}


def test_short_remaining_time_reports_the_rest_unapplied(ledger, capsys):
    batch = KinesisBatch()
    for i in range(4):
        batch.add_event(mint(i, A, block=1, timestamp=100, log_index=i))
    clock = iter([30_000, 20_000, 4_000, 3_000])
    context = LambdaContext()
    context.get_remaining_time_in_millis = lambda: next(clock)
    response = processor.handler(batch.event(), context)
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == sequence_numbers(batch.records[2:])
    assert len(ledger.tokens()) == 2
    assert emitted_metrics(capsys)["RecordsFailed"] == 2


def test_missing_environment_names_the_variable(ledger, monkeypatch):
    monkeypatch.delenv("QUARANTINE_QUEUE_URL")
    processor.consumer.cache_clear()
    with pytest.raises(RuntimeError, match=r"^QUARANTINE_QUEUE_URL: environment variable is missing"):
        processor.handler(KinesisBatch().event(), LambdaContext())


def test_bad_rates_name_the_variable(ledger, monkeypatch):
    monkeypatch.setenv("POINTS_PER_DAY", '{"1:0xnothex": 5}')
    processor.consumer.cache_clear()
    with pytest.raises(ValueError, match=r"^POINTS_PER_DAY: key '1:0xnothex'"):
        processor.handler(KinesisBatch().event(), LambdaContext())
