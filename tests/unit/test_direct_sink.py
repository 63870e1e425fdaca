"""The monitor's direct sink (`sink: dynamodb`) over moto: an event that can never apply is quarantined
in the consumer's format and passed; one the queue did not take is held, and the checkpoint with it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import boto3
import pytest

from app.events import decode
from app.monitor.backoff import Backoff
from app.monitor.checkpoint import Checkpoint, Progress
from app.monitor.dynamodb_sink import DynamoDBSink
from app.monitor.telemetry import Telemetry
from app.rates import Rates
from app.redrive import Redriver
from tests.support.aws import moto_ledger
from tests.support.chain import RATE_KEY, address, fake_hash, mint, transfer

A, B = address(0xA), address(0xB)
FAST = Backoff(base=0.001, cap=0.005)
# Block 11's transfer is earlier than token 1's acquisition at block 10: only a lying node sends it.
EVENTS = [
    mint(1, A, block=10, timestamp=1000),
    transfer(1, A, B, block=11, timestamp=500),
    mint(2, B, block=12, timestamp=1200),
    transfer(1, A, B, block=13, timestamp=1500),
]
INCONSISTENT = EVENTS[1]


@pytest.fixture
def ledger():
    with moto_ledger() as ledger:
        yield ledger


class FlakyQueue:
    """The ledger's queue client, refusing every send while `down`."""

    def __init__(self, sqs) -> None:
        self.sqs = sqs
        self.down = True
        self.refused = 0

    def send_message(self, **kwargs):
        if self.down:
            self.refused += 1
            raise ConnectionError("queue unreachable")
        return self.sqs.send_message(**kwargs)


def sink_over(ledger, sqs) -> DynamoDBSink:
    rates = Rates.parse(json.dumps({RATE_KEY: 10}), None)
    return DynamoDBSink(ledger.store, rates, Telemetry(None, "test"), sqs, ledger.queue_url, backoff=FAST)


def run(sink: DynamoDBSink, progress: Progress, meanwhile: Callable[[], Awaitable[None]] | None = None) -> None:
    """Hand EVENTS over one range per event, as the service does, and wait until all are acknowledged."""

    async def scenario() -> None:
        worker = asyncio.create_task(sink.run())
        for event in EVENTS:
            ticket = progress.open(event.block_number, event.block_number, fake_hash("block", event.block_number))
            await sink.submit(event, ticket)
            progress.seal(ticket)
        if meanwhile:
            await meanwhile()
        await asyncio.wait_for(sink.drain(), 10)
        worker.cancel()

    asyncio.run(scenario())


def logged(caplog, message: str) -> list:
    return [record for record in caplog.records if record.getMessage() == message]


async def until(condition, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


def test_an_inconsistent_event_is_quarantined_for_redrive_and_the_checkpoint_passes_it(ledger, caplog):
    sink = sink_over(ledger, ledger.sqs)
    progress = Progress(Checkpoint(9))
    run(sink, progress)

    assert progress.checkpoint.block == 13
    tokens = ledger.tokens()
    assert tokens[EVENTS[3].token_key]["owner"] == B and tokens[EVENTS[3].token_key]["lastSeq"] == EVENTS[3].seq
    assert tokens[EVENTS[2].token_key]["owner"] == B
    assert ledger.points()[A]["weightedSeconds"] == 10 * 500  # held from 1000 to 1500, block 11 left out
    assert sink.telemetry.counts["EventsPublished"] == 3 and sink.telemetry.counts["PoisonRecords"] == 1
    assert sink.telemetry.counts["ProcessingErrors"] == 0
    quarantined = logged(caplog, "direct sink: inconsistent event quarantined")
    assert [line.event_id for line in quarantined] == [INCONSISTENT.id]
    assert quarantined[0].reason.startswith("inconsistent: block.timestamp 500 of seq 11000000")

    # The consumer's message format, and `redrive` puts the event back on the stream as it was.
    kinesis = boto3.client("kinesis", region_name="us-east-1")
    kinesis.create_stream(StreamName="events", ShardCount=1)
    report = Redriver(kinesis, "events").from_quarantine(ledger.sqs, ledger.queue_url)
    assert (report.records, report.unreadable) == (1, 0)
    shard = kinesis.list_shards(StreamName="events")["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName="events", ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    (record,) = kinesis.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    assert decode(record["Data"]) == INCONSISTENT and record["PartitionKey"] == INCONSISTENT.partition_key
    assert ledger.quarantined() == []  # redrive deleted it


def test_the_message_carries_the_consumers_keys(ledger):
    sink = sink_over(ledger, ledger.sqs)
    run(sink, Progress(Checkpoint(9)))
    (body,) = ledger.quarantined()
    assert set(body) == {
        "reason",
        "eventSourceARN",
        "shardId",
        "sequenceNumber",
        "partitionKey",
        "approximateArrivalTimestamp",
        "data",
    }
    assert body["partitionKey"] == INCONSISTENT.partition_key and body["reason"].startswith("inconsistent:")


def test_a_refused_quarantine_send_is_retried_and_holds_the_checkpoint(ledger, caplog):
    queue = FlakyQueue(ledger.sqs)
    sink = sink_over(ledger, queue)
    progress = Progress(Checkpoint(9))

    async def while_refused() -> None:
        await until(lambda: queue.refused >= 3)
        # Neither applied nor quarantined: not acknowledged, and nothing after it applied (order).
        assert progress.checkpoint.block == 10
        assert EVENTS[2].token_key not in ledger.tokens()
        assert ledger.quarantined() == []
        queue.down = False

    run(sink, progress, while_refused)

    assert progress.checkpoint.block == 13
    assert [body["partitionKey"] for body in ledger.quarantined()] == [INCONSISTENT.partition_key]  # once
    assert sink.telemetry.counts["ProcessingErrors"] >= 3 and sink.telemetry.counts["PoisonRecords"] == 1
    retries = logged(caplog, "direct sink: inconsistent event not quarantined; retrying")
    assert len(retries) >= 3 and all(line.event_id == INCONSISTENT.id for line in retries)
    assert "ConnectionError" in retries[0].error


def test_a_transient_store_error_is_retried_not_quarantined(ledger):
    sink = sink_over(ledger, ledger.sqs)
    failures = [ConnectionError("throttled")] * 2
    real_prefetch = ledger.store.prefetch

    def flaky_prefetch(keys):
        if failures:
            raise failures.pop()
        return real_prefetch(keys)

    ledger.store.prefetch = flaky_prefetch
    progress = Progress(Checkpoint(9))
    run(sink, progress)
    assert progress.checkpoint.block == 13
    assert [body["reason"][:13] for body in ledger.quarantined()] == ["inconsistent:"]  # only the inconsistent one
    assert sink.telemetry.counts["ProcessingErrors"] == 2


def test_a_direct_sink_backfill_checks_each_destination_and_names_the_missing_one():
    """`python -m app backfill` with `sink: dynamodb` writes to both tables and, for an event that
    can never apply, to the quarantine queue: each is checked before the range is read."""
    from app.monitor.backfill import Missing, _check_destination
    from app.monitor.config import MonitorConfig, Settings
    from tests.support.aws import POINTS, TOKENS

    with moto_ledger() as ledger:
        config = MonitorConfig(
            stage="staging",
            chain_id=31337,
            rpc_url="http://127.0.0.1:8545",
            confirmations=0,
            contracts=[{"address": "0x" + "ab" * 20}],
            checkpoint_table="monitor",
            sink="dynamodb",
            tokens_table=TOKENS,
            points_table=POINTS,
            default_points_per_day=1,
        )

        def settings(queue_url: str) -> Settings:
            return Settings(config, config.rpc_url, config.rpc_url, None, queue_url)

        _check_destination(settings(ledger.queue_url))  # all there: no error
        gone = ledger.queue_url.rsplit("/", 1)[0] + "/no-such-queue"
        with pytest.raises(Missing, match=r"^quarantine_queue_url: cannot use .*/no-such-queue \("):
            _check_destination(settings(gone))
        ledger.client.delete_table(TableName=POINTS)
        with pytest.raises(Missing, match=rf"^points_table: cannot use {POINTS} \(ResourceNotFoundException\)$"):
            _check_destination(settings(ledger.queue_url))
