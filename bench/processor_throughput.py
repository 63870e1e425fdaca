"""Lambda consumer: group commits beside the per-event path and a naive baseline, in one run.

    .venv/bin/python -m bench.processor_throughput [--transfers 10000] [--tokens 500] [--holders 200]
        [--mints 10000] [--workers 40] [--latency 0.010] [--sweep] [--profile]

1. Cost per event: a synthetic history (mints of every token, then transfers) in Kinesis batches
   through the real consumer, one batch at a time, against moto in process. Round trips are counted
   per DynamoDB API call; request units follow DynamoDB's on-demand rules (moto's own figures are
   not faithful): strongly consistent read 1 RRU per 4 KB per item, standard write 1 WRU per KB,
   transactional write 2 WRU per KB per item; every item here stays under 1 KB (checked).
2. A hot holder: mints of distinct tokens to one address, batches of 100 shared by concurrent batch
   workers (4 shards x parallelization 10), every DynamoDB call taking `--latency` and transactions
   conflicting on the items they share (tests/support/contention.py). Failed suffixes are invoked
   again, as the event source mapping does. The ledger must be exact at the end.

The per-event path is the same consumer with MAX_EVENTS_PER_TRANSACTION=1: one transaction per
event, exactly what it did before group commits, and an operator's way back to it.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import platform
import pstats
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto import mock_aws

from app import processor, store
from app.events import ZERO_ADDRESS, ChainEvent
from app.ledger import is_stale, transition
from app.rates import Rates
from app.store import Store, create_tables, dynamodb_client, token_from_item
from tests.support.chain import CHAIN_ID, CONTRACT, KinesisBatch, address, mint, transfer
from tests.support.contention import Contention

TOKENS, POINTS = "bench-tokens", "bench-points"
RATE = 10
HOT = address(0xB07)
GROUPED, PER_EVENT = "group commits", "per-event (MAX_EVENTS_PER_TRANSACTION=1)"


def history(transfers: int, tokens: int, holders: int, seed: int = 7) -> list[ChainEvent]:
    rng = random.Random(seed)
    people = [address(0x1000 + i) for i in range(holders)]
    owner: dict[int, str] = {}
    events: list[ChainEvent] = []
    block, now = 1, 1_700_000_000
    for i in range(transfers):
        if i % 10 == 0:
            block, now = block + 1, now + 12
        token = i if i < tokens else rng.randrange(tokens)
        frm = owner.get(token, ZERO_ADDRESS)
        to = rng.choice(people)
        events.append(transfer(token, frm, to, block=block, timestamp=now, log_index=i % 10))
        owner[token] = to
    return events


def mints(n: int, hot_share: float, holders: int = 200, seed: int = 11) -> list[ChainEvent]:
    """`n` mints of distinct tokens; a `hot_share` of them to one address, the rest spread out."""
    rng = random.Random(seed)
    people = [address(0x1000 + i) for i in range(holders)]
    return [
        mint(
            i, HOT if rng.random() < hot_share else rng.choice(people), block=1 + i // 100, timestamp=1_700_000_000 + i
        )
        for i in range(n)
    ]


@dataclass
class Tally:
    """Every DynamoDB call a client makes, and the request units of those that succeeded."""

    calls: Counter = field(default_factory=Counter)
    read_units: float = 0.0
    write_units: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(self, client: Any) -> Any:
        client.meta.events.register("provide-client-params.dynamodb.*", self._called)
        client.meta.events.register("after-call.dynamodb.*", self._succeeded)
        return client

    def _called(self, model: Any, **_: Any) -> None:
        with self.lock:
            self.calls[model.name] += 1

    def _succeeded(self, model: Any, http_response: Any, parsed: dict, context: dict, **_: Any) -> None:
        if http_response.status_code >= 300:
            with self.lock:
                self.calls[f"{model.name} refused"] += 1
            return
        params = context.get("bench_params", {})
        units = 0.0
        if model.name == "GetItem":
            units = 1 if params.get("ConsistentRead") else 0.5
        elif model.name == "BatchGetItem":
            units = sum(
                len(r["Keys"]) * (1 if r.get("ConsistentRead") else 0.5) for r in params["RequestItems"].values()
            )
        with self.lock:
            self.read_units += units
            if model.name == "TransactWriteItems":
                self.write_units += 2 * len(params["TransactItems"])
            elif model.name in ("UpdateItem", "PutItem"):
                self.write_units += 1


def _keep_params(params: dict, context: dict, **_: Any) -> None:
    context["bench_params"] = params


def attached(contention: Contention, tally: Tally) -> Any:
    client = dynamodb_client(region_name="us-east-1")
    client.meta.events.register("provide-client-params.dynamodb.*", _keep_params)
    return contention.attach(tally.attach(client))


def consumer(client: Any, per_transaction: int | None) -> processor.Consumer:
    settings = processor.Settings(
        tokens_table=TOKENS,
        points_table=POINTS,
        quarantine_queue_url=os.environ["QUARANTINE_QUEUE_URL"],
        rates=Rates({f"{CHAIN_ID}:{CONTRACT}": RATE}),
        stage="bench",
        remaining_time_guard_ms=0,
        max_events_per_transaction=per_transaction,
    )
    return processor.Consumer(settings, Store(TOKENS, POINTS, client=client), sqs=None)


def records_of(events: list[ChainEvent]) -> list[dict]:
    batch = KinesisBatch()
    for event in events:
        batch.add_event(event)
    return batch.records


class Counts:
    """The consumer's metrics, summed across threads (powertools' Metrics is per invocation)."""

    def __init__(self) -> None:
        self.totals: Counter = Counter()
        self.lock = threading.Lock()

    def add_metric(self, name: str, value: float, **_: Any) -> None:
        with self.lock:
            self.totals[name] += value


@contextlib.contextmanager
def fresh_ledger(latency: float = 0.0):
    with mock_aws(), Contention(latency) as contention:
        create_tables(dynamodb_client(region_name="us-east-1"), tokens=TOKENS, points=POINTS)
        os.environ["QUARANTINE_QUEUE_URL"] = boto3.client("sqs").create_queue(QueueName="bench-q")["QueueUrl"]
        counts, real_metrics = Counts(), processor.metrics
        processor.metrics = counts  # type: ignore[assignment]
        try:
            yield contention, counts
        finally:
            processor.metrics = real_metrics


def run_batches(events: list[ChainEvent], batch_size: int, workers: int, make: Callable[[], processor.Consumer]) -> int:
    """Batches taken from one queue by `workers` threads; a batch with failures is invoked again
    from its first failed record. Returns how many invocations were retries."""
    batches: queue.Queue = queue.Queue()
    for start in range(0, len(events), batch_size):
        batches.put(records_of(events[start : start + batch_size]))
    retries, lock, errors = [0], threading.Lock(), []

    def work() -> None:
        worker = make()
        try:
            while True:
                try:
                    records = batches.get_nowait()
                except queue.Empty:
                    return
                while records:
                    failed = worker.process(records, lambda: 60_000)["batchItemFailures"]
                    if failed:
                        first = next(
                            i
                            for i, r in enumerate(records)
                            if r["kinesis"]["sequenceNumber"] == failed[0]["itemIdentifier"]
                        )
                        records = records[first:]
                        with lock:
                            retries[0] += 1
                    else:
                        records = []
        except BaseException as error:
            errors.append(error)

    if workers == 1:
        work()  # in this thread, where a profiler sees it
    else:
        threads = [threading.Thread(target=work) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return retries[0]


def run_naive(events: list[ChainEvent], client: Any) -> None:
    """The old monitor's shape: read the token, then one UpdateItem per item touched. Not atomic,
    not idempotent under re-delivery: a crash between the updates leaves the tables inconsistent."""
    for event in events:
        item = client.get_item(TableName=TOKENS, Key={"token": {"S": event.token_key}}, ConsistentRead=True)
        current = token_from_item(item["Item"]) if "Item" in item else None
        if is_stale(current, event):
            continue
        change = transition(current, event, RATE)
        t = change.token
        client.update_item(
            TableName=TOKENS,
            Key={"token": {"S": event.token_key}},
            UpdateExpression="SET #o = :o, acquiredAt = :a, lastSeq = :s, lastEventId = :i, weight = :w",
            ExpressionAttributeNames={"#o": "owner"},
            ExpressionAttributeValues={
                ":o": {"S": t.owner},
                ":a": {"N": str(t.acquired_at)},
                ":s": {"N": str(t.last_seq)},
                ":i": {"S": t.last_event_id},
                ":w": {"N": str(t.weight)},
            },
        )
        for delta in change.deltas:
            client.update_item(
                TableName=POINTS,
                Key={"holder": {"S": delta.holder}},
                UpdateExpression="ADD weightedSeconds :a, weightedHeld :b, weightedSinceSum :c, tokensHeld :d",
                ExpressionAttributeValues={
                    ":a": {"N": str(delta.weighted_seconds)},
                    ":b": {"N": str(delta.weighted_held)},
                    ":c": {"N": str(delta.weighted_since_sum)},
                    ":d": {"N": str(delta.tokens_held)},
                },
            )


def item_bytes(item: dict) -> int:
    """DynamoDB's item size: attribute names plus values (numbers ~1 byte per 2 digits + 1)."""
    size = 0
    for name, typed in item.items():
        ((kind, value),) = typed.items()
        size += len(name.encode()) + (len(value.encode()) if kind == "S" else (len(value.lstrip("-")) + 1) // 2 + 1)
    return size


def check_ledger(events: list[ChainEvent]) -> list[tuple[str, str]]:
    """Top five holders (the paths must agree) after checking every item is under 1 KB."""
    client = dynamodb_client(region_name="us-east-1")
    for table in (TOKENS, POINTS):
        for page in client.get_paginator("scan").paginate(TableName=table):
            biggest = max((item_bytes(item) for item in page["Items"]), default=0)
            assert biggest < 1024, f"{table}: an item of {biggest} bytes: the unit rules above no longer hold"
    board = Store(TOKENS, POINTS, client=client).leaderboard(at=events[-1].block_timestamp, limit=5)
    return [(h, str(p)) for h, p, _ in board]


def cost_row(path: str, events: list[ChainEvent], batch_size: int, profile: bool = False) -> tuple[dict, str]:
    with fresh_ledger() as (contention, counts):
        tally = Tally()
        client = attached(contention, tally)
        profiler = cProfile.Profile() if profile else None
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        if path == "naive":
            run_naive(events, client)
        else:
            run_batches(events, batch_size, 1, lambda: consumer(client, 1 if path == PER_EVENT else None))
        if profiler:
            profiler.disable()
        elapsed = time.perf_counter() - started
        top5 = check_ledger(events)
    n = len(events)
    where = ""
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(14)
        where = out.getvalue()
    row = {
        "path": path,
        "batch": batch_size,
        "events/s": n / elapsed,
        "round trips/event": sum(v for k, v in tally.calls.items() if not k.endswith("refused")) / n,
        "RRU/event": tally.read_units / n,
        "WRU/event": tally.write_units / n,
        "calls": dict(tally.calls),
        "top5": top5,
        "applied": counts.totals["EventsApplied"],
    }
    return row, where


class Timed:
    """Sums the time spent in one module-level function across threads."""

    def __init__(self, module: Any, name: str) -> None:
        self.module, self.name, self.real = module, name, getattr(module, name)
        self.seconds, self.lock = 0.0, threading.Lock()

    def __enter__(self) -> Timed:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return self.real(*args, **kwargs)
            finally:
                with self.lock:
                    self.seconds += time.perf_counter() - started

        setattr(self.module, self.name, timed)
        return self

    def __exit__(self, *_: object) -> None:
        setattr(self.module, self.name, self.real)


def contention_row(path: str, events: list[ChainEvent], workers: int, latency: float) -> dict:
    with (
        fresh_ledger(latency) as (contention, counts),
        Timed(store, "_backoff") as backoff,
        Timed(store, "plan") as plan,
    ):
        tally = Tally()
        per_transaction = 1 if path == PER_EVENT else None
        started = time.perf_counter()
        retries = run_batches(events, 100, workers, lambda: consumer(attached(contention, tally), per_transaction))
        elapsed = time.perf_counter() - started
        check_ledger(events)
        assert counts.totals["EventsApplied"] == len(events), counts.totals  # every mint applied, once
        hot = Store(TOKENS, POINTS, client=dynamodb_client(region_name="us-east-1")).holder(HOT)
        assert (hot.tokens_held if hot else 0) == sum(e.to_address == HOT for e in events)
    committed = tally.calls["TransactWriteItems"] - tally.calls["TransactWriteItems refused"]
    return {
        "path": path,
        "seconds": elapsed,
        "events/s": len(events) / elapsed,
        "transactions": committed,
        "conflicted": contention.conflicts["TransactWriteItems"],
        "retried invocations": retries,
        "backoff s (all workers)": backoff.seconds,
        "planning s (all workers)": plan.seconds,
        "moto s": contention.moto_seconds,
        "calls": tally.calls,
    }


def main() -> None:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "bench")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
    processor.logger.setLevel("CRITICAL")  # failed batches under contention are expected here
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=10_000)
    parser.add_argument("--tokens", type=int, default=500)
    parser.add_argument("--holders", type=int, default=200)
    parser.add_argument("--mints", type=int, default=10_000, help="hot-holder scenario: mints to one address")
    parser.add_argument("--workers", type=int, default=40)
    parser.add_argument("--latency", type=float, default=0.010, help="seconds per DynamoDB call (hot holder)")
    parser.add_argument("--sweep", action="store_true", help="also: batch sizes, and shares of hot-holder events")
    parser.add_argument("--hot-only", action="store_true", help="only the hot-holder scenario")
    parser.add_argument("--profile", action="store_true", help="print where the grouped path's time goes")
    args = parser.parse_args()

    print(
        f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} {platform.machine()} {os.cpu_count()} cores, ", end=""
    )
    print(f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}")
    events = history(args.transfers, args.tokens, args.holders)
    if not args.hot_only:
        cost_table(args, events)
    print(
        f"\n## {args.mints} mints to one address, {args.workers} workers, {args.latency * 1000:.0f} ms per call, conflicts modelled\n"
    )
    mint_events = mints(args.mints, 1.0)
    contention_table([contention_row(p, mint_events, args.workers, args.latency) for p in (GROUPED, PER_EVENT)])
    if args.sweep:
        sweep(args)
    if args.profile:
        fewer = history(args.transfers // 10, args.tokens, args.holders)
        print(f"\n## where the grouped path's time goes ({len(fewer)} transfers, cProfile, by own time)\n")
        print(cost_row(GROUPED, fewer, 100, profile=True)[1])


def cost_table(args: argparse.Namespace, events: list[ChainEvent]) -> None:
    print(f"\n## {args.transfers} transfers over {args.tokens} tokens and {args.holders} holders, batches of 100\n")
    print("| path | events/s (moto) | round trips/event | RRU/event | WRU/event | calls |")
    print("|---|---:|---:|---:|---:|---|")
    rows = []
    for path in (GROUPED, PER_EVENT, "naive"):
        row, _ = cost_row(path, events, 100)
        rows.append(row)
        calls = ", ".join(f"{k} {v}" for k, v in sorted(row["calls"].items()))
        print(
            f"| {path} | {row['events/s']:,.0f} | {row['round trips/event']:.3f} | {row['RRU/event']:.2f} | {row['WRU/event']:.2f} | {calls} |"
        )
    assert all(r["top5"] == rows[0]["top5"] for r in rows), [r["top5"] for r in rows]


def sweep(args: argparse.Namespace) -> None:
    fewer = history(args.transfers // 5, args.tokens, args.holders)
    print(
        f"\n## group commits by batch size: {len(fewer)} transfers over {args.tokens} tokens and {args.holders} holders\n"
    )
    print("| batch size | round trips/event | WRU/event | transactions/batch |")
    print("|---:|---:|---:|---:|")
    for size in (10, 25, 50, 100, 250):
        row, _ = cost_row(GROUPED, fewer, size)
        per_batch = row["calls"].get("TransactWriteItems", 0) / -(-len(fewer) // size)
        print(f"| {size} | {row['round trips/event']:.3f} | {row['WRU/event']:.2f} | {per_batch:.2f} |")
    n = max(args.mints // 5, 100)
    for share in (0.0, 0.1, 0.5, 1.0):
        print(
            f"\n## {n} mints, {share:.0%} of them to one address, {args.workers} workers, {args.latency * 1000:.0f} ms per call\n"
        )
        contention_table([contention_row(p, mints(n, share), args.workers, args.latency) for p in (GROUPED, PER_EVENT)])


def contention_table(rows: list[dict]) -> None:
    print(
        "| path | seconds | events/s | speed-up | transactions | conflicted | retried invocations "
        "| backoff s (summed) | planning s (summed) | moto s (serial) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    slowest = max(r["seconds"] for r in rows)
    for r in rows:
        print(
            f"| {r['path']} | {r['seconds']:.1f} | {r['events/s']:,.0f} | {slowest / r['seconds']:.1f}x | {r['transactions']} | "
            f"{r['conflicted']} | {r['retried invocations']} | {r['backoff s (all workers)']:.1f} | {r['planning s (all workers)']:.2f} | {r['moto s']:.1f} |"
        )


if __name__ == "__main__":
    main()
