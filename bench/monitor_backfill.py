"""Backfill and head latency of the event monitor, beside a naive baseline and the code before a
change (another git tree), in one run.

    .venv/bin/python -m bench.monitor_backfill [--profile] [--before TREE] [--rounds N]

With `--before TREE` (e.g. `git worktree add --detach /tmp/before <commit>`), the dense and sparse
backfills of this tree and of TREE alternate for `--rounds` rounds, each in its own process against
a fresh moto_server; the same run measures the extra RPC calls per range (through a counting
JSON-RPC proxy) and the time from process start to the first `eth_getLogs` of `python -m app monitor`.

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
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil
import requests
from web3 import Web3

from app.local.services import ROOT
from app.monitor.checkpoint import DynamoCheckpointStore
from app.monitor.command import KINESIS_CONFIG
from app.monitor.config import MonitorConfig, resolve
from app.monitor.publisher import KinesisPublisher
from app.monitor.rpc import JsonRpc
from app.monitor.service import Monitor
from app.monitor.telemetry import Telemetry, logger
from tests.monitor.harness import ARTIFACT, Anvil, Aws, Chain, MotoServer
from tests.support.rpc_proxy import RpcProxy

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


# Run in a child process with a git tree first on sys.path: that tree's own monitor and bench code.
CHILD = """
import json, sys, types
from bench.monitor_backfill import OurMonitor
from app.local.services import MotoServer
from app.monitor.telemetry import logger
logger.setLevel("WARNING")
p = json.loads(sys.argv[1])
anvil = types.SimpleNamespace(ws_url=p["ws_url"], http_url=p["http_url"])
moto = MotoServer()
moto.port = p["moto_port"]
chain = types.SimpleNamespace(address=p["address"], deploy_block=p["first"])
ours = OurMonitor(anvil, moto, chain, p["concurrency"])
result = ours.backfill(p["head"], p["first"], p["events"])
assert len(ours.aws.records()) == p["events"], "every event reached the stream"
print(json.dumps({"seconds": result.seconds}))
"""


def backfill_in(
    tree: Path, rpc_port: int, moto: MotoServer, chain: Chain, head: int, events: int, concurrency: int
) -> float:
    """Seconds to the last ack of `tree`'s monitor backfilling the chain, in its own process."""
    params = {
        "ws_url": f"ws://127.0.0.1:{rpc_port}",
        "http_url": f"http://127.0.0.1:{rpc_port}",
        "moto_port": moto.port,
        "address": chain.address,
        "first": chain.deploy_block,
        "head": head,
        "events": events,
        "concurrency": concurrency,
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(params)],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{tree}: backfill failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


def rpc_calls_per_range(tree: Path, anvil: Anvil, chain: Chain, head: int, events: int) -> tuple[float, float, int]:
    """(HTTP requests, JSON-RPC calls, eth_getLogs range calls) of one backfill through a counting
    proxy; per range = per range `eth_getLogs`."""
    with RpcProxy(anvil.http_url) as proxy, fresh_moto() as moto:
        backfill_in(tree, int(proxy.url.rsplit(":", 1)[1]), moto, chain, head, events, 4)
        ranges = proxy.ranges
        return proxy.requests / ranges, sum(proxy.calls.values()) / ranges, ranges


def start_to_first_get_logs(tree: Path, anvil: Anvil, chain: Chain, runs: int) -> float:
    """Median seconds from spawning `python -m app monitor` to the first eth_getLogs it sends."""
    times = []
    with RpcProxy(anvil.http_url) as proxy, fresh_moto() as moto:
        aws = Aws(moto).create()
        config = Path(tempfile.mkdtemp()) / "monitor.yaml"
        values = {
            "stage": aws.stage,
            "chain_id": 31337,
            "rpc_url": anvil.ws_url,
            "http_rpc_url": proxy.url,
            "confirmations": 0,
            "contracts": [{"address": chain.address, "start_block": chain.deploy_block}],
            "stream_name": aws.stream,
            "checkpoint_table": aws.monitor_table,
        }
        config.write_text(json.dumps(values))
        env = {**os.environ, **moto.env(), "PYTHONPATH": str(tree)}
        command = [
            sys.executable,
            "-m",
            "app",
            "monitor",
            "--config",
            str(config),
            "--until-block",
            str(chain.deploy_block + 1),
        ]
        for run in range(runs + 1):  # the first run writes the .pyc files: not counted
            aws.dynamodb.delete_item(TableName=aws.monitor_table, Key={"id": {"S": "checkpoint:31337"}})
            proxy.first_get_logs = None
            started = time.perf_counter()
            subprocess.run(command, cwd=tree, env=env, capture_output=True, timeout=120, check=True)
            if run:
                times.append(proxy.first_get_logs - started)
    return statistics.median(times)


def duplicates_per_kill(kills: int, **settings: object) -> tuple[int, int]:
    """SIGKILL the monitor `kills` times during a dense backfill (each once its checkpoint passed a
    random block), then let it finish: (records on the stream - distinct events, kills)."""
    import random

    from tests.monitor.harness import MonitorProcess, base_config, kill_past, run_monitor, write_config

    rng = random.Random(kills)
    anvil = Anvil(extra=["--gas-limit", "100000000"]).start()
    try:
        chain = Chain(anvil)
        build_dense(chain)
        head = chain.head
        with fresh_moto() as moto:
            aws = Aws(moto).create()
            folder = Path(tempfile.mkdtemp())
            config = write_config(folder / "monitor.yaml", **base_config(anvil, aws, chain, **settings))
            span = (head - chain.deploy_block) // kills
            done = 0
            for k in range(kills):
                target = chain.deploy_block + rng.randrange(span * k, span * (k + 1))
                monitor = MonitorProcess(config, moto, folder / f"run{k}.log", "--until-block", str(head))
                finished = kill_past(monitor, aws, target, rng.uniform(0, 0.2))
                if finished:
                    break
                done += 1
            assert run_monitor(config, moto, "--until-block", str(head)).returncode == 0
            records = aws.records()
            return len(records) - len({event.id for *_, event in records}), done
    finally:
        anvil.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of our dense backfill")
    parser.add_argument("--before", type=Path, help="a git tree of the code before the change, measured beside")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per tree (median reported)")
    parser.add_argument("--naive", action="store_true", help="also the naive baseline (a minute more)")
    parser.add_argument("--kills", type=int, help="only measure the duplicates a SIGKILL costs, over N kills")
    args = parser.parse_args()
    logger.setLevel("WARNING")
    if args.kills:
        for label, settings in (
            ("defaults", {}),
            (
                "max_pending_records 10, target_logs_per_range 100, max_range_blocks 4",
                {
                    "max_pending_records": 10,
                    "target_logs_per_range": 100,
                    "max_range_blocks": 4,
                },
            ),
        ):
            duplicates, kills = duplicates_per_kill(args.kills, **settings)
            print(f"| {label} | {kills} | {duplicates} | {duplicates / max(1, kills):.0f} |")
        return
    trees = [("this tree", ROOT)] + ([(f"before ({_commit(args.before)})", args.before)] if args.before else [])

    rows: list[str] = []
    latency_rows: list[str] = []
    bound_rows: list[str] = []
    call_rows: list[str] = []
    start_rows: list[str] = []
    for shape, build in (("dense", build_dense), ("sparse", build_sparse)):
        anvil = Anvil(extra=["--gas-limit", "100000000"]).start()
        try:
            chain = Chain(anvil)
            events = build(chain)
            head, first = chain.head, chain.deploy_block
            seconds: dict[tuple[str, int], list[float]] = {}
            ceilings: list[float] = []
            for round_ in range(args.rounds):
                for label, tree in trees if round_ % 2 == 0 else trees[::-1]:
                    for concurrency in (4, 1):  # the monitor host's setting, and the monitor's default
                        with fresh_moto() as moto:
                            took = backfill_in(tree, anvil.port, moto, chain, head, events, concurrency)
                            seconds.setdefault((label, concurrency), []).append(took)
                if shape == "dense":
                    with fresh_moto() as moto:
                        ceilings.append(put_records_ceiling(moto, chain, anvil, head))
            for (label, concurrency), values in seconds.items():
                result = Result(
                    f"ngu monitor, {label} (publish_concurrency {concurrency})",
                    head - first + 1,
                    events,
                    statistics.median(values),
                )
                rows.append(result.row(shape) + f" {' / '.join(f'{v:.2f}' for v in values)} |")
            if shape == "dense":
                bound_rows.append(
                    f"| moto PutRecords alone (500 a call, one at a time, fresh stream; median of {len(ceilings)}) | {statistics.median(ceilings):,.0f} records/s |"
                )
            for label, tree in trees:
                requests_, calls, ranges = rpc_calls_per_range(tree, anvil, chain, head, events)
                call_rows.append(f"| {shape} | {label} | {ranges} | {requests_:.2f} | {calls:.2f} |")
            if args.naive:
                with fresh_moto() as moto:
                    rows.append(Naive(anvil, moto, chain).backfill(head, first).row(shape) + " |")
            if shape != "dense":
                continue
            for label, tree in trees:
                start_rows.append(f"| {label} | {start_to_first_get_logs(tree, anvil, chain, 5) * 1000:.0f} ms |")
            if args.profile:
                with fresh_moto() as moto:
                    print(OurMonitor(anvil, moto, chain).profile(head))
            with fresh_moto() as moto:
                latency_rows.append(_latency_row("ngu monitor (newHeads doorbell)", follow_ours(anvil, moto, chain)))
            if args.naive:
                with fresh_moto() as moto:
                    latency_rows.append(_latency_row("naive (100 ms poll)", follow_naive(anvil, moto, chain)))
        finally:
            anvil.stop()

    print(
        f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {platform.machine()} · {psutil.cpu_count()} cores · "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB · Python {platform.python_version()} · "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print("\n| chain | pipeline | blocks | events | seconds to last ack (median) | blocks/s | events/s | each round |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    print("\n".join(rows))
    print("\n| chain | code | ranges | HTTP requests per range | JSON-RPC calls per range |")
    print("|---|---|---:|---:|---:|")
    print("\n".join(call_rows))
    print("\n| process start -> first eth_getLogs (`python -m app monitor`, median of 5) | |")
    print("|---|---:|")
    print("\n".join(start_rows))
    print(f"\n| head -> Kinesis ack ({HEAD_EVENTS} mints, {HEAD_INTERVAL * 1000:.0f} ms apart) | p50 | p99 | max |")
    print("|---|---:|---:|---:|")
    print("\n".join(latency_rows))
    print("\n| bound on this machine | rate |")
    print("|---|---:|")
    print("\n".join(bound_rows))


def put_records_ceiling(moto: MotoServer, chain: Chain, anvil: Anvil, head: int) -> float:
    """moto's own PutRecords rate: 500 records a call, one call at a time, records of our size."""
    return float(bounds(anvil, moto, chain, head)[1].split("|")[2].split()[0].replace(",", ""))


def _commit(tree: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()


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
