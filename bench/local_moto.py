"""The local stack's two moto speed-ups, each beside moto as shipped, in one run.

    .venv/bin/python -m bench.local_moto [--records 2000] [--events 150] [--sizes 200,1000] [--rounds 3]

PutRecords with the processor's event source mapping registered: moto as shipped tries to invoke the
function in Docker for every record; app/local/moto_server.py leaves the mapping to the emulator.

For each tokens-table size, the same synthetic history (a mint of every token, then transfers among
20 holders) is applied through the store, one TransactWriteItems per event, to fresh moto tables in
process: first with moto's rollback copy of whole tables, then with the touched-items snapshot; the
transfers are timed, at that table size. Both must reach the same ledger (every token row and points
row equal) or the run fails.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import boto3
import moto
from moto import mock_aws
from moto.awslambda.models import LambdaBackend

from app.local import moto_transactions
from app.local.moto_server import leave_mappings_to_the_emulator
from app.local.resources import MappingConfig, create_stage_resources, register_mapping
from app.names import StageNames
from app.store import Store, create_tables
from bench.processor_throughput import history

TOKENS, POINTS, MONITOR = "bench-tokens", "bench-points", "bench-monitor"
RATE = 10


def put_records(records: int, patched: bool) -> float:
    shipped = LambdaBackend.send_kinesis_message
    if patched:
        leave_mappings_to_the_emulator()
    try:
        with mock_aws():

            def client(service):
                return boto3.client(service, region_name="us-east-1")

            names = StageNames("bench")
            register_mapping(client, create_stage_resources(client, names), MappingConfig())
            kinesis = client("kinesis")
            batch = [{"Data": b'{"n": %d}' % i, "PartitionKey": f"key-{i}"} for i in range(500)]
            started = time.perf_counter()
            for _ in range(records // len(batch)):
                kinesis.put_records(StreamName=names.stream, Records=batch)
            return records / (time.perf_counter() - started)
    finally:
        LambdaBackend.send_kinesis_message = shipped


def apply_all(mints, transfers, speedup: bool) -> tuple[float, dict, dict]:
    if speedup:
        moto_transactions.install()
    try:
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            create_tables(client, tokens=TOKENS, points=POINTS, monitor=MONITOR)
            store = Store(TOKENS, POINTS, client=client)
            for event in mints:
                store.apply(event, RATE)
            started = time.perf_counter()  # the transfers, at this table size
            for event in transfers:
                store.apply(event, RATE)
            elapsed = time.perf_counter() - started
            tokens = store.prefetch({e.token_key for e in mints})
            return len(transfers) / elapsed, tokens, dict(store.holders())
    finally:
        moto_transactions.uninstall()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000, help="records put, in PutRecords calls of 500")
    parser.add_argument("--events", type=int, default=150, help="transfers applied after the mints")
    parser.add_argument("--sizes", default="200,1000", help="tokens-table sizes (mints before the transfers)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best of each path counts")
    args = parser.parse_args()
    versions = f"Python {platform.python_version()}, moto {moto.__version__}"
    print(f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, {versions}")
    print()
    shipped, patched = put_records(args.records, patched=False), put_records(args.records, patched=True)
    print("| PutRecords, mapping registered | moto as shipped (records/s) | mapping left to the emulator (records/s) |")
    print("|---|---:|---:|")
    print(f"| {args.records} records | {shipped:.0f} | {patched:.0f} |")
    print()
    print("| tokens | moto as shipped (events/s) | touched-items snapshot (events/s) | speed-up |")
    print("|---:|---:|---:|---:|")
    for size in (int(s) for s in args.sizes.split(",")):
        events = history(size + args.events, tokens=size, holders=20)
        mints, transfers = events[:size], events[size:]
        base_rate = fast_rate = 0.0
        for _ in range(args.rounds):  # interleaved, best of each: the machine is shared
            rate, base_tokens, base_points = apply_all(mints, transfers, speedup=False)
            base_rate = max(base_rate, rate)
            rate, fast_tokens, fast_points = apply_all(mints, transfers, speedup=True)
            fast_rate = max(fast_rate, rate)
            if (fast_tokens, fast_points) != (base_tokens, base_points):
                raise SystemExit(f"size {size}: the two paths reached different ledgers")
        print(f"| {size} | {base_rate:.0f} | {fast_rate:.0f} | {fast_rate / base_rate:.1f}x |")


if __name__ == "__main__":
    main()
