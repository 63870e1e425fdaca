"""Lambda consumer throughput against moto: the real handler beside a naive baseline, one run.

    .venv/bin/python -m bench.processor_throughput [--transfers 10000] [--tokens 500] [--holders 200]

Both paths apply the same synthetic history (mints of every token, then transfers) in Kinesis
batches of 100 to fresh moto tables, in process. Round trips are counted per DynamoDB API call;
request units follow DynamoDB's on-demand rules for items under 1 KB (moto's own figures are not
faithful): strongly consistent read 1 RRU per item, standard write 1 WRU per item, transactional
write 2 WRU per item.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import platform
import pstats
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import boto3
from moto import mock_aws

from app import processor
from app.events import ZERO_ADDRESS, ChainEvent
from app.ledger import is_stale, transition
from app.store import Store, create_tables, dynamodb_client, token_from_item
from tests.support.chain import CHAIN_ID, CONTRACT, KinesisBatch, LambdaContext, address, transfer

TOKENS, POINTS = "bench-tokens", "bench-points"
RATE = 10
_WRITE_UNITS = {"UpdateItem": 1, "PutItem": 1, "TransactWriteItems": 2}


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


@dataclass
class Tally:
    calls: Counter
    read_units: float = 0.0
    write_units: float = 0.0

    def hook(self, params: dict, model, **_: object) -> None:
        name = model.name
        self.calls[name] += 1
        if name == "GetItem":
            self.read_units += 1 if params.get("ConsistentRead") else 0.5
        elif name == "BatchGetItem":
            for request in params["RequestItems"].values():
                self.read_units += len(request["Keys"]) * (1 if request.get("ConsistentRead") else 0.5)
        elif name == "TransactWriteItems":
            self.write_units += 2 * len(params["TransactItems"])
        elif name in _WRITE_UNITS:
            self.write_units += _WRITE_UNITS[name]


def run_handler(events: list[ChainEvent], tally_hook: Callable) -> None:
    os.environ.update(
        TOKENS_TABLE=TOKENS,
        POINTS_TABLE=POINTS,
        POINTS_PER_DAY=json.dumps({f"{CHAIN_ID}:{CONTRACT}": RATE}),
        STAGE="bench",
        POWERTOOLS_TRACE_DISABLED="1",
        LOG_LEVEL="WARNING",
    )
    sqs = boto3.client("sqs", region_name="us-east-1")
    os.environ["QUARANTINE_QUEUE_URL"] = sqs.create_queue(QueueName="bench-quarantine")["QueueUrl"]
    processor.consumer.cache_clear()
    processor.consumer().store.client.meta.events.register("provide-client-params.dynamodb.*", tally_hook)
    for start in range(0, len(events), 100):
        batch = KinesisBatch()
        for event in events[start : start + 100]:
            batch.add_event(event)
        response = processor.handler(batch.event(), LambdaContext())
        assert response == {"batchItemFailures": []}, response


def run_naive(events: list[ChainEvent], tally_hook: Callable) -> None:
    """The old monitor's shape: read the token, then one UpdateItem per item touched. Not atomic,
    not idempotent under re-delivery: a crash between the updates leaves the tables inconsistent."""
    client = dynamodb_client(region_name="us-east-1")
    client.meta.events.register("provide-client-params.dynamodb.*", tally_hook)
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


def measure(name: str, run: Callable, events: list[ChainEvent], profile: bool) -> tuple[dict, str]:
    with mock_aws():
        create_tables(dynamodb_client(region_name="us-east-1"), tokens=TOKENS, points=POINTS)
        tally = Tally(Counter())
        profiler = cProfile.Profile() if profile else None
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        with contextlib.redirect_stdout(io.StringIO()):  # the handler's EMF lines
            run(events, tally.hook)
        if profiler:
            profiler.disable()
        elapsed = time.perf_counter() - started
        # Both paths must reach the same ledger, or the comparison means nothing.
        store = Store(TOKENS, POINTS, client=dynamodb_client(region_name="us-east-1"))
        board = store.leaderboard(at=events[-1].block_timestamp, limit=5)
    n = len(events)
    row = {
        "path": name,
        "events": n,
        "seconds": elapsed,
        "events/s": n / elapsed,
        "round trips/event": sum(tally.calls.values()) / n,
        "RRU/event": tally.read_units / n,
        "WRU/event": tally.write_units / n,
        "calls": dict(tally.calls),
        "top5": [(h, str(p)) for h, p, _ in board],
    }
    where = ""
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(8)
        where = out.getvalue()
    return row, where


def main() -> None:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "bench")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=10_000)
    parser.add_argument("--tokens", type=int, default=500)
    parser.add_argument("--holders", type=int, default=200)
    parser.add_argument("--profile", action="store_true", help="print where the handler's time goes")
    args = parser.parse_args()
    events = history(args.transfers, args.tokens, args.holders)
    ours, where = measure("handler (BatchGetItem + 1 TransactWriteItems/event)", run_handler, events, args.profile)
    naive, _ = measure("naive baseline (GetItem + UpdateItem per item)", run_naive, events, False)
    assert ours["top5"] == naive["top5"], (ours["top5"], naive["top5"])

    print(
        f"# {time.strftime('%Y-%m-%d')} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(
        f"# {args.transfers} transfers over {args.tokens} tokens and {args.holders} holders, batches of 100, moto in-process"
    )
    print()
    print("| path | events/s | round trips/event | RRU/event | WRU/event | calls |")
    print("|---|---:|---:|---:|---:|---|")
    for row in (ours, naive):
        calls = ", ".join(f"{k} {v}" for k, v in sorted(row["calls"].items()))
        print(
            f"| {row['path']} | {row['events/s']:,.0f} | {row['round trips/event']:.3f} | "
            f"{row['RRU/event']:.2f} | {row['WRU/event']:.2f} | {calls} |"
        )
    if where:
        print()
        print(where)


if __name__ == "__main__":
    main()
