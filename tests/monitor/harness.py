"""Local services and drivers for the monitor's tests and benchmark: anvil with the NGU token,
moto in server mode, the monitor as a subprocess, and readers of what reached Kinesis.

Everything binds 127.0.0.1 on a free port; every process started here is stopped by its owner.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import yaml
from web3 import Web3
from web3.logs import DISCARD

from app.events import ChainEvent, decode
from app.store import monitor_table_definition

ROOT = Path(__file__).resolve().parents[2]
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"
MOTO_SERVER = Path(sys.executable).parent / "moto_server"
ARTIFACT = ROOT / "contracts" / "build" / "NGU.json"
CHAIN_ID = 31337
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def _stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Anvil:
    """A local chain; `state` keeps it across a stop and start (anvil --state)."""

    def __init__(self, port: int | None = None, state: Path | None = None, extra: Iterable[str] = ()) -> None:
        self.port = port or free_port()
        self.state = state
        self.extra = list(extra)
        self.process: subprocess.Popen | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> Anvil:
        command = [str(ANVIL), "--host", "127.0.0.1", "--port", str(self.port), "--silent", *self.extra]
        if self.state is not None:
            command += ["--state", str(self.state)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, 20, what=f"anvil on port {self.port}")
        return self

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"anvil exited with {self.process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                pass
            return Web3(Web3.HTTPProvider(self.http_url, request_kwargs={"timeout": 2})).eth.chain_id == CHAIN_ID
        except Exception:
            return False

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)  # SIGTERM: anvil writes --state on the way out
            self.process = None


class MotoServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        self.process = subprocess.Popen(
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def up() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                return False

        wait_until(up, 30, what="moto_server")
        return self

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
            self.process = None

    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@dataclass(frozen=True)
class Expected:
    """A transfer as the chain reports it (decoded by web3 from receipts, not by the monitor)."""

    token_id: int
    from_address: str
    to_address: str
    block_number: int
    block_hash: str
    tx_hash: str
    tx_index: int
    log_index: int

    @property
    def seq(self) -> int:
        return self.block_number * 1_000_000 + self.log_index


class Chain:
    """The NGU token on anvil, driven through web3 with anvil's unlocked accounts."""

    def __init__(self, anvil: Anvil) -> None:
        self.anvil = anvil
        self.w3 = Web3(Web3.HTTPProvider(anvil.http_url, request_kwargs={"timeout": 30}))
        self.accounts = [a.lower() for a in self.w3.eth.accounts]
        self.minter = self.w3.eth.accounts[0]
        artifact = json.loads(ARTIFACT.read_text())
        self.abi = artifact["abi"]
        factory = self.w3.eth.contract(abi=self.abi, bytecode=artifact["bytecode"])
        receipt = self._wait(factory.constructor().transact({"from": self.minter}))
        self.address = receipt["contractAddress"].lower()
        self.deploy_block = receipt["blockNumber"]
        self.token = self.w3.eth.contract(address=receipt["contractAddress"], abi=self.abi)
        self.transfers: list[Expected] = []

    def reattach(self) -> None:
        self.w3 = Web3(Web3.HTTPProvider(self.anvil.http_url, request_kwargs={"timeout": 30}))
        self.token = self.w3.eth.contract(address=Web3.to_checksum_address(self.address), abi=self.abi)

    def account(self, index: int) -> str:
        return Web3.to_checksum_address(self.accounts[index])

    def _wait(self, tx_hash: bytes) -> Any:
        return self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.01)

    def _send(self, call: Any, sender: str | None = None, gas: int | None = None) -> Any:
        options: dict[str, Any] = {"from": sender or self.minter}
        if gas:
            options["gas"] = gas
        receipt = self._wait(call.transact(options))
        assert receipt["status"] == 1, receipt
        self.transfers += self.transfers_in(receipt)
        return receipt

    def transfers_in(self, receipt: Any) -> list[Expected]:
        found = []
        for log in self.token.events.Transfer().process_receipt(receipt, errors=DISCARD):
            found.append(
                Expected(
                    token_id=log["args"]["tokenId"],
                    from_address=log["args"]["from"].lower(),
                    to_address=log["args"]["to"].lower(),
                    block_number=log["blockNumber"],
                    block_hash="0x" + log["blockHash"].hex().removeprefix("0x"),
                    tx_hash="0x" + log["transactionHash"].hex().removeprefix("0x"),
                    tx_index=log["transactionIndex"],
                    log_index=log["logIndex"],
                )
            )
        return found

    def mint(self, to: int, token_id: int) -> Any:
        return self._send(self.token.functions.mint(self.account(to), token_id))

    def batch_mint(self, to: int, first_id: int, count: int) -> Any:
        return self._send(self.token.functions.batchMint(self.account(to), first_id, count), gas=29_000_000)

    def transfer(self, sender: int, to: int, token_id: int) -> Any:
        call = self.token.functions.transferFrom(self.account(sender), self.account(to), token_id)
        return self._send(call, self.account(sender))

    def safe_transfer(self, sender: int, to: int, token_id: int) -> Any:
        call = self.token.functions.safeTransferFrom(self.account(sender), self.account(to), token_id)
        return self._send(call, self.account(sender))

    def burn(self, sender: int, token_id: int) -> Any:
        return self._send(self.token.functions.burn(token_id), self.account(sender))

    def fungible_transfer(self, sender: int, to: int, amount: int) -> Any:
        """An ERC-20-shaped Transfer log (3 topics) from the token's own address."""
        call = self.token.functions.emitFungibleTransfer(self.account(sender), self.account(to), amount)
        receipt = self._send(call)
        assert len(receipt["logs"]) == 1 and len(receipt["logs"][0]["topics"]) == 3
        return receipt

    def mine(self, blocks: int = 1) -> None:
        self.w3.provider.make_request("anvil_mine", [hex(blocks)])

    @property
    def head(self) -> int:
        return self.w3.eth.block_number

    def timestamp(self, block: int) -> int:
        return self.w3.eth.get_block(block)["timestamp"]


class Aws:
    """Per-test names on the shared moto server: a stream, the monitor table, the SSM parameters."""

    def __init__(self, moto: MotoServer, stage: str | None = None) -> None:
        self.moto = moto
        self.stage = stage or "t" + uuid.uuid4().hex[:10]
        self.stream = f"ngu-points-core-v5-events-{self.stage}-v5"
        self.monitor_table = f"ngu-points-core-v5-monitor-{self.stage}"
        self.kinesis = moto.client("kinesis")
        self.dynamodb = moto.client("dynamodb")
        self.ssm = moto.client("ssm")
        self.cloudwatch = moto.client("cloudwatch")

    def create(self) -> Aws:
        self.kinesis.create_stream(StreamName=self.stream, StreamModeDetails={"StreamMode": "ON_DEMAND"})
        self.dynamodb.create_table(**monitor_table_definition(self.monitor_table))
        self.kinesis.get_waiter("stream_exists").wait(StreamName=self.stream, WaiterConfig={"Delay": 0.1})
        return self

    def records(self) -> list[tuple[str, int, str, ChainEvent]]:
        """Every record of the stream: (shard, sequence number, partition key, event), per shard in order."""
        found = []
        for shard in self.kinesis.list_shards(StreamName=self.stream)["Shards"]:
            iterator = self.kinesis.get_shard_iterator(
                StreamName=self.stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            while iterator:
                page = self.kinesis.get_records(ShardIterator=iterator, Limit=10000)
                for record in page["Records"]:
                    found.append(
                        (
                            shard["ShardId"],
                            int(record["SequenceNumber"]),
                            record["PartitionKey"],
                            decode(record["Data"]),
                        )
                    )
                if not page["Records"]:
                    break
                iterator = page.get("NextShardIterator")
        return found

    def checkpoint(self, chain_id: int = CHAIN_ID) -> dict[str, Any] | None:
        item = self.dynamodb.get_item(
            TableName=self.monitor_table, Key={"id": {"S": f"checkpoint:{chain_id}"}}, ConsistentRead=True
        ).get("Item")
        return item

    def checkpoint_block(self) -> int | None:
        item = self.checkpoint()
        return int(item["block"]["N"]) if item else None

    def reorg_items(self) -> list[dict[str, Any]]:
        items = self.dynamodb.scan(TableName=self.monitor_table)["Items"]
        return [i for i in items if i["id"]["S"].startswith("reorg:")]

    def metric_sum(self, name: str) -> float:
        stats = self.cloudwatch.get_metric_statistics(
            Namespace="NGUPoints/EventMonitor",
            MetricName=name,
            Dimensions=[{"Name": "Stage", "Value": self.stage}],
            StartTime=time.time() - 3600,
            EndTime=time.time() + 60,
            Period=60,
            Statistics=["Sum"],
        )
        return sum(point["Sum"] for point in stats["Datapoints"])


def per_token(records: Iterable[tuple[str, int, str, ChainEvent]]) -> dict[str, list[ChainEvent]]:
    """Each partition key's records in the order Kinesis holds them (one key lives on one shard)."""
    keyed: dict[str, list[tuple[int, ChainEvent]]] = defaultdict(list)
    shards: dict[str, str] = {}
    for shard, sequence, key, event in records:
        assert shards.setdefault(key, shard) == shard, f"{key} on two shards"
        keyed[key].append((sequence, event))
    return {key: [event for _, event in sorted(items, key=lambda item: item[0])] for key, items in keyed.items()}


def applied_view(records: Iterable[tuple[str, int, str, ChainEvent]]) -> dict[str, list[int]]:
    """What a consumer that skips stale records (lastSeq >= seq) applies, per token: the seqs."""
    applied: dict[str, list[int]] = {}
    for key, events in per_token(records).items():
        seqs: list[int] = []
        for event in events:
            if not seqs or event.seq > seqs[-1]:
                seqs.append(event.seq)
        applied[key] = seqs
    return applied


def expected_view(chain: Chain, through_block: int | None = None) -> dict[str, list[int]]:
    view: dict[str, list[int]] = defaultdict(list)
    for t in sorted(chain.transfers, key=lambda t: t.seq):
        if through_block is None or t.block_number <= through_block:
            view[f"{CHAIN_ID}:{chain.address}:{t.token_id}"].append(t.seq)
    return dict(view)


def write_config(path: Path, **values: Any) -> Path:
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


def base_config(anvil: Anvil, aws: Aws, chain: Chain, **overrides: Any) -> dict[str, Any]:
    config = {
        "stage": aws.stage,
        "chain_id": CHAIN_ID,
        "rpc_url": anvil.ws_url,
        "confirmations": 0,
        "contracts": [{"address": chain.address, "start_block": chain.deploy_block}],
        "stream_name": aws.stream,
        "checkpoint_table": aws.monitor_table,
        "poll_interval_seconds": 1,
        "checkpoint_interval_seconds": 0.2,
        "metrics_interval_seconds": 1,
    }
    config.update(overrides)
    return config


def monitor_env(moto: MotoServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(moto.env())
    env["PYTHONPATH"] = str(ROOT)
    env["POWERTOOLS_DEV"] = "0"
    return env


def run_monitor(config: Path, moto: MotoServer, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app", "monitor", "--config", str(config), *args],
        cwd=ROOT,
        env=monitor_env(moto),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class MonitorProcess:
    """The monitor running in follow mode; its stdout (JSON logs) goes to a file to read later."""

    def __init__(self, config: Path, moto: MotoServer, log: Path, *args: str) -> None:
        self.log = log
        self._out = open(log, "a")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app", "monitor", "--config", str(config), *args],
            cwd=ROOT,
            env=monitor_env(moto),
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def logs(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log.read_text().splitlines():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                lines.append({"message": line})
        return lines

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        _stop(self.process, sig, timeout)
        self._out.close()
        return self.process.returncode

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self._out.close()
