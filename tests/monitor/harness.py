"""Drivers for the monitor's tests and benchmark: per-test AWS names, the monitor as a subprocess,
and readers of what reached Kinesis. The servers (anvil, moto_server) and the NGU token driver are
the local stack's own (`app/local/`), re-exported here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from app.events import ChainEvent, decode
from app.local.chain import ARTIFACT, Chain
from app.local.chain import ChainTransfer as Expected
from app.local.services import ANVIL, CHAIN_ID, REGION, ROOT, Anvil, MotoServer, free_port, wait_until
from app.local.services import stop_process as _stop
from app.store import monitor_table_definition

__all__ = ["ANVIL", "ARTIFACT", "REGION", "Anvil", "Chain", "Expected", "MotoServer", "free_port", "wait_until"]


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


def kill_past(monitor: MonitorProcess, aws: Aws, target: int, pause: float) -> bool:
    """SIGKILL `monitor` once the stored checkpoint passed `target`, `pause` seconds later; True if
    it had finished by itself first."""
    wait_until(
        lambda: (aws.checkpoint_block() or -1) >= target or monitor.process.poll() is not None,
        120,
        interval=0.02,
        what=f"checkpoint past {target}",
    )
    time.sleep(pause)
    finished = monitor.process.poll() is not None
    monitor.kill()
    return finished
