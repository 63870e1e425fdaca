"""Backfill and head latency of the event monitor, beside a naive baseline, in one run.

    .venv/bin/python -m bench.monitor_backfill [--profile]

Chains (anvil, from node_modules): dense = 18 batch mints of 1,000 plus 2,000 single transfers
(20,000 transfers in ~2,000 blocks); sparse = 200 mints spread over 10,200 blocks. Sink: Kinesis
in moto_server (a fresh ON_DEMAND stream per run). Throughput is measured from the start of the
backfill to the last Kinesis acknowledgement; head latency from the moment a transaction is mined
to the acknowledgement of its record (our monitor: the checkpoint passing its block).

The naive baseline is what a first version would do: web3's contract event decoding over ranges
of 1,000 blocks and one PutRecord per event, polling the head every 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import platform
import pstats
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import psutil
import requests
from web3 import Web3

from app.monitor.checkpoint import DynamoCheckpointStore
from app.monitor.command import KINESIS_CONFIG
from app.monitor.config import MonitorConfig, resolve
from app.monitor.publisher import KinesisPublisher
from app.monitor.rpc import JsonRpc
from app.monitor.service import Monitor
from app.monitor.telemetry import Telemetry, logger
from tests.monitor.harness import ARTIFACT, Anvil, Aws, Chain, MotoServer

HEAD_EVENTS = 100
HEAD_INTERVAL = 0.05


@dataclass
class Result:
    name: str
    blocks: int
    events: int
    seconds: float

    def row(self, shape: str) -> str:
        return (
            f"| {shape} | {self.name} | {self.blocks:,} | {self.events:,} | {self.seconds:.2f} | "
            f"{self.blocks / self.seconds:,.0f} | {self.events / self.seconds:,.0f} |"
        )


class RawSender:
    """Sends many transactions quickly: JSON-RPC batches of eth_sendTransaction (anvil automines each)."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.session = requests.Session()
        self.url = chain.anvil.http_url

    def send(self, calls: list[tuple[str, str, int]]) -> list[int]:
        """One request per transaction, so that anvil mines each in its own block; the block numbers."""
        blocks = []
        for sender, data, gas in calls:
            tx = {"from": sender, "to": self.chain.address, "data": data, "gas": hex(gas)}
            answer = self.rpc("eth_sendTransaction", [tx])
            assert "error" not in answer, answer
            receipt = None
            while receipt is None:  # automine answers before the block is stored, now and then
                receipt = self.rpc("eth_getTransactionReceipt", [answer["result"]])["result"]
            assert receipt["status"] == "0x1", receipt
            blocks.append(int(receipt["blockNumber"], 16))
        return blocks

    def rpc(self, method: str, params: list) -> dict:
        return self.session.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).json()


def build_dense(chain: Chain) -> int:
    sender = RawSender(chain)
    minter, holder = chain.accounts[0], chain.accounts[1]
    encode = chain.token.encode_abi
    mints = [(minter, encode("batchMint", args=[chain.account(1), n * 1000, 1000]), 40_000_000) for n in range(18)]
    sender.send(mints)
    transfers = [
        (holder, encode("transferFrom", args=[chain.account(1), chain.account(2), token]), 100_000)
        for token in range(2000)
    ]
    sender.send(transfers)
    return 18_000 + 2_000


def build_sparse(chain: Chain) -> int:
    sender = RawSender(chain)
    encode = chain.token.encode_abi
    for n in range(200):
        sender.send([(chain.accounts[0], encode("mint", args=[chain.account(1), n]), 200_000)])
        sender.rpc("anvil_mine", [hex(50)])
    return 200


def config_for(anvil: Anvil, aws: Aws, chain: Chain, publish_concurrency: int = 4) -> MonitorConfig:
    return MonitorConfig(
        stage=aws.stage,
        chain_id=31337,
        rpc_url=anvil.ws_url,
        confirmations=0,
        contracts=[{"address": chain.address, "start_block": chain.deploy_block}],
        stream_name=aws.stream,
        checkpoint_table=aws.monitor_table,
        poll_interval_seconds=1,
        metrics_interval_seconds=60,
        publish_concurrency=publish_concurrency,
    )


def kinesis_client(moto: MotoServer):
    import boto3

    return boto3.client(
        "kinesis",
        endpoint_url=moto.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=KINESIS_CONFIG,
    )


class OurMonitor:
    """The real monitor in-process, with a hook on checkpoint advances for timing."""

    def __init__(self, anvil: Anvil, moto: MotoServer, chain: Chain, publish_concurrency: int = 4) -> None:
        self.aws = Aws(moto).create()
        self.settings = resolve(config_for(anvil, self.aws, chain, publish_concurrency), self.aws.ssm)
        self.kinesis = kinesis_client(moto)
        self.acked_at: dict[int, float] = {}
        self.last_ack = 0.0
        self.monitor: Monitor | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def _advanced(self, checkpoint) -> None:
        now = time.perf_counter()
        self.acked_at[checkpoint.block] = now
        self.last_ack = now

    async def run(self, until_block: int | None) -> None:
        telemetry = Telemetry(self.aws.cloudwatch, self.aws.stage)
        publisher = KinesisPublisher(
            self.kinesis, self.aws.stream, telemetry, concurrency=self.settings.config.publish_concurrency
        )
        store = DynamoCheckpointStore(self.aws.dynamodb, self.aws.monitor_table, 31337)
        async with JsonRpc(self.settings.http_rpc_url) as rpc:
            self.monitor = Monitor(
                self.settings,
                rpc=rpc,
                sink=publisher,
                store=store,
                telemetry=telemetry,
                until_block=until_block,
                on_checkpoint=self._advanced,
            )
            self.loop = asyncio.get_running_loop()
            await self.monitor.run()

    def backfill(self, head: int, first: int, events: int) -> Result:
        start = time.perf_counter()
        asyncio.run(self.run(head))
        name = f"ngu monitor (publish_concurrency {self.settings.config.publish_concurrency})"
        return Result(name, head - first + 1, events, self.last_ack - start)

    def profile(self, head: int) -> str:
        profiler = cProfile.Profile()
        profiler.enable()
        asyncio.run(self.run(head))
        profiler.disable()
        report = io.StringIO()
        pstats.Stats(profiler, stream=report).sort_stats("tottime").print_stats(25)
        return f"\n--- profile of our dense backfill (all threads of the monitor's loop, by own time) ---\n{_trim(report.getvalue())}"

    def stop(self) -> None:
        if self.loop and self.monitor:
            self.loop.call_soon_threadsafe(self.monitor.stop)


class Naive:
    """web3 contract event decoding and one PutRecord per event."""

    def __init__(self, anvil: Anvil, moto: MotoServer, chain: Chain) -> None:
        self.aws = Aws(moto).create()
        self.kinesis = kinesis_client(moto)
        self.w3 = Web3(Web3.HTTPProvider(anvil.http_url, request_kwargs={"timeout": 120}))
        abi = json.loads(ARTIFACT.read_text())["abi"]
        self.token = self.w3.eth.contract(address=Web3.to_checksum_address(chain.address), abi=abi)
        self.acked_at: dict[int, float] = {}
        self.timestamps: dict[int, int] = {}
        self.stopping = threading.Event()

    def publish_range(self, first: int, last: int) -> int:
        count = 0
        for log in self.token.events.Transfer.get_logs(from_block=first, to_block=last):
            if log["blockNumber"] not in self.timestamps:
                self.timestamps[log["blockNumber"]] = self.w3.eth.get_block(log["blockNumber"])["timestamp"]
            body = {
                "v": 1,
                "chainId": 31337,
                "contract": log["address"].lower(),
                "tokenId": str(log["args"]["tokenId"]),
                "from": log["args"]["from"].lower(),
                "to": log["args"]["to"].lower(),
                "block": {
                    "number": log["blockNumber"],
                    "hash": log["blockHash"].to_0x_hex(),
                    "timestamp": self.timestamps[log["blockNumber"]],
                },
                "tx": {"hash": log["transactionHash"].to_0x_hex(), "index": log["transactionIndex"]},
                "logIndex": log["logIndex"],
            }
            self.kinesis.put_record(
                StreamName=self.aws.stream,
                Data=json.dumps(body).encode(),
                PartitionKey=f"31337:{body['contract']}:{body['tokenId']}",
            )
            count += 1
        self.acked_at[last] = time.perf_counter()
        return count

    def backfill(self, head: int, first: int) -> Result:
        start = time.perf_counter()
        events = 0
        for low in range(first, head + 1, 1000):
            events += self.publish_range(low, min(head, low + 999))
        return Result("naive (web3 decode, PutRecord each)", head - first + 1, events, time.perf_counter() - start)

    def follow(self, cursor: int) -> None:
        while not self.stopping.is_set():
            head = self.w3.eth.block_number
            if head > cursor:
                self.publish_range(cursor + 1, head)
                cursor = head
            time.sleep(0.1)


def head_latency(chain: Chain, acked_at: dict[int, float], first_token: int) -> list[float]:
    """Send HEAD_EVENTS transfers one by one; latency = mined -> the ack covering its block."""
    sender = RawSender(chain)
    mined: dict[int, float] = {}
    for n in range(HEAD_EVENTS):
        token = first_token + n
        [block] = sender.send(
            [(chain.accounts[0], chain.token.encode_abi("mint", args=[chain.account(3), token]), 200_000)]
        )
        mined[block] = time.perf_counter()
        time.sleep(HEAD_INTERVAL)
    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline and not all(any(b >= n for b in acked_at) for n in mined):
        time.sleep(0.05)
    latencies = []
    for block, at in mined.items():
        acks = [t for b, t in list(acked_at.items()) if b >= block]
        latencies.append((min(acks) - at) if acks else float("inf"))
    return latencies


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def bounds(anvil: Anvil, moto: MotoServer, chain: Chain, head: int) -> list[str]:
    """What the machine allows: raw eth_getLogs and moto PutRecords alone."""
    session = requests.Session()
    start = time.perf_counter()
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "eth_getLogs",
        "params": [{"fromBlock": hex(chain.deploy_block), "toBlock": hex(head), "address": chain.address}],
    }
    logs = session.post(anvil.http_url, json=body).json()["result"]
    get_logs = len(logs) / (time.perf_counter() - start)
    aws = Aws(moto).create()
    kinesis = kinesis_client(moto)
    records = [{"Data": json.dumps(log).encode()[:400], "PartitionKey": str(n)} for n, log in enumerate(logs)]
    start = time.perf_counter()
    for low in range(0, len(records), 500):
        kinesis.put_records(StreamName=aws.stream, Records=records[low : low + 500])
    put = len(records) / (time.perf_counter() - start)
    return [
        f"| anvil raw eth_getLogs (one call, JSON parsed) | {get_logs:,.0f} logs/s |",
        f"| moto PutRecords alone (500 a call, one at a time, fresh stream) | {put:,.0f} records/s |",
    ]


def _trim(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join(lines[3:])


@contextmanager
def fresh_moto() -> Iterator[MotoServer]:
    """A new moto_server per measurement: moto slows down as it holds more records."""
    moto = MotoServer().start()
    try:
        yield moto
    finally:
        moto.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of our dense backfill")
    args = parser.parse_args()
    logger.setLevel("WARNING")

    rows: list[str] = []
    latency_rows: list[str] = []
    bound_rows: list[str] = []
    for shape, build in (("dense", build_dense), ("sparse", build_sparse)):
        anvil = Anvil(extra=["--gas-limit", "100000000"]).start()
        try:
            chain = Chain(anvil)
            events = build(chain)
            head, first = chain.head, chain.deploy_block
            for concurrency in (4, 1):  # the monitor host's setting, and the monitor's default
                with fresh_moto() as moto:
                    ours = OurMonitor(anvil, moto, chain, concurrency)
                    rows.append(ours.backfill(head, first, events).row(shape))
                    assert len(ours.aws.records()) == events, "every event reached the stream"
            with fresh_moto() as moto:
                rows.append(Naive(anvil, moto, chain).backfill(head, first).row(shape))
            if shape != "dense":
                continue
            with fresh_moto() as moto:
                bound_rows = bounds(anvil, moto, chain, head)
            if args.profile:
                with fresh_moto() as moto:
                    print(OurMonitor(anvil, moto, chain).profile(head))
            with fresh_moto() as moto:
                latency_rows.append(_latency_row("ngu monitor (newHeads doorbell)", follow_ours(anvil, moto, chain)))
            with fresh_moto() as moto:
                latency_rows.append(_latency_row("naive (100 ms poll)", follow_naive(anvil, moto, chain)))
        finally:
            anvil.stop()

    print(
        f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {platform.machine()} · {psutil.cpu_count()} cores · "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB · Python {platform.python_version()}"
    )
    print("\n| chain | pipeline | blocks | events | seconds to last ack | blocks/s | events/s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    print(f"\n| head -> Kinesis ack ({HEAD_EVENTS} mints, {HEAD_INTERVAL * 1000:.0f} ms apart) | p50 | p99 | max |")
    print("|---|---:|---:|---:|")
    print("\n".join(latency_rows))
    print("\n| bound on this machine | rate |")
    print("|---|---:|")
    print("\n".join(bound_rows))


def follow_ours(anvil: Anvil, moto: MotoServer, chain: Chain) -> list[float]:
    """Our monitor following the head (after catching up on the whole chain)."""
    follower = OurMonitor(anvil, moto, chain)
    thread = threading.Thread(target=lambda: asyncio.run(follower.run(None)), daemon=True)
    thread.start()
    try:
        head = chain.head
        deadline = time.perf_counter() + 120
        while max(follower.acked_at, default=-1) < head and time.perf_counter() < deadline:
            time.sleep(0.1)
        return head_latency(chain, follower.acked_at, 100_000)
    finally:
        follower.stop()
        thread.join(30)


def follow_naive(anvil: Anvil, moto: MotoServer, chain: Chain) -> list[float]:
    naive = Naive(anvil, moto, chain)
    thread = threading.Thread(target=naive.follow, args=(chain.head,), daemon=True)
    thread.start()
    try:
        return head_latency(chain, naive.acked_at, 200_000)
    finally:
        naive.stopping.set()
        thread.join(30)


def _latency_row(name: str, latencies: list[float]) -> str:
    ms = sorted(value * 1000 for value in latencies)
    return f"| {name} | {percentile(ms, 50):.0f} ms | {percentile(ms, 99):.0f} ms | {ms[-1]:.0f} ms |"


if __name__ == "__main__":
    main()
