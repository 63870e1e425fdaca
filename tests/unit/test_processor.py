import base64
import json

import pytest
from botocore.exceptions import ClientError

from app import processor
from tests.support.chain import KinesisBatch, LambdaContext, address, mint, transfer
from tests.support.emf import metric_totals

A, B = address(0xA), address(0xB)


def emitted_metrics(capsys) -> dict[str, float]:
    out = capsys.readouterr().out
    assert '"Stage":"test"' in out
    return metric_totals(out)


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


@pytest.mark.parametrize("k", [0, 3, 4, 6])
def test_a_group_that_cannot_commit_is_reported_from_its_first_record_with_every_later_one(
    ledger, capsys, monkeypatch, k
):
    monkeypatch.setenv("MAX_EVENTS_PER_TRANSACTION", "3")  # groups: records 0-2, 3-5, 6
    processor.consumer.cache_clear()
    batch = KinesisBatch()
    events = [mint(i, A, block=1, timestamp=100, log_index=i) for i in range(7)]
    for event in events:
        batch.add_event(event)
    processor.consumer()
    fail_transactions_for(ledger, events[k].token_key)
    response = processor.handler(batch.event(), LambdaContext())
    group_start = k - k % 3
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == sequence_numbers(batch.records[group_start:])
    assert set(ledger.tokens()) == {e.token_key for e in events[:group_start]}
    assert ledger.points().get(A, {}).get("tokensHeld", 0) == group_start
    metrics = emitted_metrics(capsys)
    assert metrics["RecordsFailed"] == 7 - group_start and metrics["EventsApplied"] == group_start


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


def test_short_remaining_time_reports_the_rest_unapplied(ledger, capsys, monkeypatch):
    monkeypatch.setenv("MAX_EVENTS_PER_TRANSACTION", "1")  # the per-event path: one check per event
    processor.consumer.cache_clear()
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


def test_time_is_checked_before_each_group(ledger, capsys, monkeypatch):
    monkeypatch.setenv("MAX_EVENTS_PER_TRANSACTION", "3")
    processor.consumer.cache_clear()
    batch = KinesisBatch()
    for i in range(7):
        batch.add_event(mint(i, A, block=1, timestamp=100, log_index=i))
    clock = iter([30_000, 4_000])
    context = LambdaContext()
    context.get_remaining_time_in_millis = lambda: next(clock)
    response = processor.handler(batch.event(), context)
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == sequence_numbers(batch.records[3:])
    assert len(ledger.tokens()) == 3
    assert emitted_metrics(capsys)["RecordsFailed"] == 4


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


def count_calls(client) -> list[str]:
    calls: list[str] = []
    client.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    return calls


def test_a_batch_is_committed_in_as_few_transactions_as_dynamodb_allows(ledger, capsys):
    batch = KinesisBatch()
    for i in range(100):  # 100 tokens and 100 holders: 200 items, two transactions of 100
        batch.add_event(mint(i, address(0x100 + i), block=1, timestamp=100, log_index=i))
    calls = count_calls(processor.consumer().store.client)
    assert processor.handler(batch.event(), LambdaContext()) == {"batchItemFailures": []}
    assert calls == ["BatchGetItem", "TransactWriteItems", "TransactWriteItems"]
    assert len(ledger.tokens()) == 100 and len(ledger.points()) == 100
    assert emitted_metrics(capsys)["EventsApplied"] == 100


def test_a_hot_holder_takes_one_add_per_transaction(ledger, capsys):
    batch = KinesisBatch()
    for i in range(100):  # 100 tokens, one holder: 99 tokens + the holder, then 1 + the holder
        batch.add_event(mint(i, A, block=1, timestamp=100 + i, log_index=i))
    calls = count_calls(processor.consumer().store.client)
    assert processor.handler(batch.event(), LambdaContext()) == {"batchItemFailures": []}
    assert calls.count("TransactWriteItems") == 2
    row = ledger.points()[A]
    assert row["tokensHeld"] == 100 and row["weightedHeld"] == 1000
    assert row["weightedSinceSum"] == 10 * sum(range(100, 200))


def test_a_token_moved_many_times_in_one_batch_is_written_once_with_its_last_state(ledger, capsys):
    batch = KinesisBatch()
    batch.add_event(mint(1, A, block=1, timestamp=100))
    batch.add_event(transfer(1, A, B, block=2, timestamp=200))
    batch.add_event(transfer(1, B, A, block=3, timestamp=400))
    batch.add_event(transfer(1, A, B, block=3, timestamp=400))  # re-delivered: a duplicate
    batch.add_event(transfer(1, B, address(0xC), block=4, timestamp=1000))
    calls = count_calls(processor.consumer().store.client)
    assert processor.handler(batch.event(), LambdaContext()) == {"batchItemFailures": []}
    assert calls == ["BatchGetItem", "TransactWriteItems"]
    (token,) = ledger.tokens().values()
    assert (token["owner"], token["acquiredAt"], token["lastSeq"]) == (address(0xC), 1000, 4_000_000)
    points = ledger.points()
    assert points[A]["weightedSeconds"] == 10 * (100 + 600) and points[A]["tokensHeld"] == 0
    assert points[B]["weightedSeconds"] == 10 * 200 and points[B]["tokensHeld"] == 0
    metrics = emitted_metrics(capsys)
    assert metrics["EventsApplied"] == 4 and metrics["DuplicatesSkipped"] == 1


def test_a_lock_lost_to_another_writer_re_plans_the_group_on_what_it_wrote(ledger, capsys):
    first, moved = mint(1, A, block=1, timestamp=100), transfer(1, A, B, block=2, timestamp=200)
    other = mint(2, A, block=2, timestamp=200, log_index=1)
    batch = KinesisBatch()
    for event in (first, moved, other):
        batch.add_event(event)
    consumer = processor.consumer()
    real_prefetch = consumer.store.prefetch

    def prefetch_then_race(keys):
        states = real_prefetch(keys)
        ledger.store.apply(first, 10)  # another delivery of the first record wins the race
        return states

    consumer.store.prefetch = prefetch_then_race
    calls = count_calls(consumer.store.client)
    assert processor.handler(batch.event(), LambdaContext()) == {"batchItemFailures": []}
    assert calls == ["BatchGetItem", "TransactWriteItems", "TransactWriteItems"]  # the item came back: no re-read
    assert {t["owner"] for t in ledger.tokens().values()} == {A, B}
    assert ledger.points()[A]["tokensHeld"] == 1 and ledger.points()[B]["tokensHeld"] == 1
    metrics = emitted_metrics(capsys)
    assert metrics["EventsApplied"] == 2 and metrics["DuplicatesSkipped"] == 1


def test_a_commit_whose_response_was_lost_is_reported_and_its_re_delivery_changes_nothing(ledger, capsys):
    batch = KinesisBatch()
    for i in range(5):
        batch.add_event(mint(i, A, block=1, timestamp=100, log_index=i))
    batch.add_event(transfer(0, A, B, block=2, timestamp=300))
    client = processor.consumer().store.client
    real = client.transact_write_items

    def commit_then_lose_the_response(**kwargs):
        real(**kwargs)
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, "TransactWriteItems")

    client.transact_write_items = commit_then_lose_the_response
    response = processor.handler(batch.event(), LambdaContext())
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == sequence_numbers(batch.records)
    after_commit = (ledger.tokens(), ledger.points())
    client.transact_write_items = real
    for start in (0, 3, 5):  # Kinesis re-delivers from any failed record onwards
        redelivered = KinesisBatch()
        for record in batch.records[start:]:
            redelivered.add_raw(base64.b64decode(record["kinesis"]["data"]), record["kinesis"]["partitionKey"])
        assert processor.handler(redelivered.event(), LambdaContext()) == {"batchItemFailures": []}
        assert (ledger.tokens(), ledger.points()) == after_commit
    assert ledger.points()[A]["tokensHeld"] == 4 and ledger.points()[B]["tokensHeld"] == 1
    metrics = emitted_metrics(capsys)
    assert metrics["EventsApplied"] == 0 and metrics["DuplicatesSkipped"] == 6 + 3 + 1


def test_a_poison_record_ends_a_group_so_a_failed_quarantine_leaves_nothing_after_it_applied(ledger, capsys):
    batch = KinesisBatch()
    batch.add_event(mint(1, A, block=1, timestamp=100))
    batch.add_raw(b"{not json", "pk-json")
    batch.add_event(mint(2, B, block=1, timestamp=100, log_index=1))
    consumer = processor.consumer()

    def refuse(**_):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "SendMessage")

    consumer.sqs.send_message = refuse
    response = processor.handler(batch.event(), LambdaContext())
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == sequence_numbers(batch.records[1:])
    assert set(ledger.points()) == {A}
    metrics = emitted_metrics(capsys)
    assert metrics["EventsApplied"] == 1 and metrics["RecordsFailed"] == 2 and metrics["PoisonRecords"] == 0


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_bad_events_per_transaction_names_the_variable(ledger, monkeypatch, value):
    monkeypatch.setenv("MAX_EVENTS_PER_TRANSACTION", value)
    processor.consumer.cache_clear()
    with pytest.raises(RuntimeError, match=r"^MAX_EVENTS_PER_TRANSACTION: expected a positive integer"):
        processor.handler(KinesisBatch().event(), LambdaContext())
