"""The publisher's rules: PutRecords limits, one record per key in flight, retries until delivered."""

from __future__ import annotations

import asyncio

import pytest

from app.events import build_event
from app.monitor.backoff import Backoff
from app.monitor.checkpoint import Checkpoint, DynamoCheckpointStore, Progress
from app.monitor.config import load_config, resolve
from app.monitor.publisher import MAX_BATCH_BYTES, KinesisPublisher
from app.monitor.rpc import JsonRpc
from app.monitor.service import Monitor
from app.monitor.telemetry import Telemetry
from tests.monitor.faults import FaultyKinesis
from tests.monitor.harness import applied_view, base_config, expected_view, write_config

FAST = Backoff(base=0.001, cap=0.01)


def event(token: int, block: int, log_index: int = 0):
    return build_event(
        chain_id=31337,
        contract="0x" + "ab" * 20,
        token_id=token,
        from_address="0x" + "00" * 20,
        to_address="0x" + "cd" * 20,
        block_number=block,
        block_hash="0x" + f"{block:064x}",
        block_timestamp=1_700_000_000 + block,
        tx_hash="0x" + f"{block * 1000 + log_index:064x}",
        tx_index=0,
        log_index=log_index,
    )


class RecordingKinesis:
    def __init__(self, fail_first: int = 0) -> None:
        self.calls: list[list[dict]] = []
        self.fail_first = fail_first

    def put_records(self, *, StreamName, Records):
        self.calls.append(Records)
        results = []
        for _ in Records:
            if self.fail_first > 0:
                self.fail_first -= 1
                results.append({"ErrorCode": "ProvisionedThroughputExceededException"})
            else:
                results.append({"SequenceNumber": str(len(self.calls)), "ShardId": "shardId-000000000000"})
        return {"Records": results}


class NullMetrics:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def count(self, name: str, value: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + value


async def publish(client, events, **options):
    progress = Progress(Checkpoint(-1))
    metrics = NullMetrics()
    publisher = KinesisPublisher(client, "stream", metrics, backoff=FAST, **options)
    runner = asyncio.create_task(publisher.run())
    ticket = progress.open(0, max(e.block_number for e in events), "0x" + "0" * 64)
    for item in events:
        await publisher.submit(item, ticket)
    progress.seal(ticket)
    await asyncio.wait_for(publisher.drain(), 10)
    runner.cancel()
    return progress, metrics


def test_batches_hold_at_most_500_records_and_one_per_key():
    client = RecordingKinesis()
    events = [event(token, 1, token) for token in range(1200)] + [event(7, 2, n) for n in range(5)]
    progress, metrics = asyncio.run(publish(client, events))
    assert max(len(call) for call in client.calls) == 500
    for call in client.calls:
        keys = [record["PartitionKey"] for record in call]
        assert len(keys) == len(set(keys))
    sent_for_7 = [r["Data"] for call in client.calls for r in call if r["PartitionKey"].endswith(":7")]
    assert sent_for_7 == [e.encode() for e in events if e.token_id == 7]
    assert metrics.counts["EventsPublished"] == len(events)
    assert progress.checkpoint.block == 2


@pytest.mark.parametrize("limit", [MAX_BATCH_BYTES, 10_000])
def test_batches_stay_under_the_size_limit(monkeypatch, limit):
    monkeypatch.setattr("app.monitor.publisher.MAX_BATCH_BYTES", limit)
    client = RecordingKinesis()
    asyncio.run(publish(client, [event(token, 1, token) for token in range(400)]))
    sizes = [sum(len(r["Data"]) + len(r["PartitionKey"]) for r in call) for call in client.calls]
    assert max(sizes) <= limit
    assert sum(len(call) for call in client.calls) == 400


def test_failed_records_are_retried_and_the_checkpoint_waits_for_them():
    client = RecordingKinesis(fail_first=30)
    events = [event(token, 1 + token // 10, token % 10) for token in range(50)]
    progress, metrics = asyncio.run(publish(client, events))
    delivered = [r for call in client.calls for r in call]
    assert len(delivered) == 50 + 30
    assert metrics.counts["KinesisPutFailures"] == 30
    assert progress.checkpoint.block == 5


def test_a_full_queue_holds_the_submitter_back():
    async def scenario():
        progress = Progress(Checkpoint(-1))
        publisher = KinesisPublisher(RecordingKinesis(), "stream", NullMetrics(), max_pending=3, backoff=FAST)
        ticket = progress.open(0, 0, "0x" + "0" * 64)
        for n in range(3):
            await publisher.submit(event(n, 0, n), ticket)
        blocked = asyncio.create_task(publisher.submit(event(9, 0, 9), ticket))
        await asyncio.sleep(0.05)
        assert not blocked.done(), "the fourth record waits while three are unacknowledged"
        runner = asyncio.create_task(publisher.run())
        await asyncio.wait_for(blocked, 5)
        progress.seal(ticket)
        await asyncio.wait_for(publisher.drain(), 5)
        runner.cancel()
        return progress

    assert asyncio.run(scenario()).checkpoint.block == 0


@pytest.mark.integration
def test_injected_failures_on_30_percent_of_records_lose_nothing_and_keep_order(tmp_path, anvil, chain, aws, moto):
    chain.batch_mint(1, 0, 40)
    for round_ in range(5):
        for token in range(40):
            holder = 1 + round_
            chain.transfer(holder, holder + 1, token)
    head = chain.head
    config = load_config(write_config(tmp_path / "monitor.yaml", **base_config(anvil, aws, chain, max_range_blocks=25)))
    settings = resolve(config, aws.ssm)
    # The second call fails whole for sure: how many calls a run makes depends on timing.
    faulty = FaultyKinesis(aws.kinesis, failure_rate=0.3, call_failure_rate=0.05, seed=7, failing_calls=(2,))

    async def run():
        telemetry = Telemetry(aws.cloudwatch, aws.stage)
        publisher = KinesisPublisher(
            faulty, aws.stream, telemetry, concurrency=4, backoff=Backoff(base=0.005, cap=0.05)
        )
        store = DynamoCheckpointStore(aws.dynamodb, aws.monitor_table, config.chain_id)
        async with JsonRpc(settings.http_rpc_url) as rpc:
            monitor = Monitor(settings, rpc=rpc, sink=publisher, store=store, telemetry=telemetry, until_block=head)
            await monitor.run()
        return telemetry

    asyncio.run(run())

    assert faulty.violations == []
    assert faulty.failed_records > 0.2 * len(chain.transfers) and faulty.failed_calls > 0
    records = aws.records()
    assert len(records) == len(chain.transfers) == 240, "every record exactly once: failed ones were not written"
    assert applied_view(records) == expected_view(chain)
    for events in applied_view(records).values():
        assert events == sorted(events)
    assert aws.checkpoint_block() == head
    assert aws.metric_sum("KinesisPutFailures") >= faulty.failed_records
