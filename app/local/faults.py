"""The faults the demo injects while the chain runs: the monitor SIGKILLed mid-way and restarted (it
resumes from its checkpoint and publishes some records again), a stretch of records put on the stream
a second time (as a producer retrying after a lost acknowledgement would), and one poison record."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.local.esm import EventSourceMapping
from app.local.monitor_process import MonitorProcess
from app.local.services import wait_until
from app.monitor.checkpoint import DynamoCheckpointStore


class Faults:
    """The faults the demo injects at fixed points of the scenario."""

    def __init__(
        self,
        blocks: int,
        note: Callable[[str], None],
        monitor: MonitorProcess,
        monitor_state: list[str],
        checkpoints: DynamoCheckpointStore,
        kinesis: Any,
        esm: EventSourceMapping,
        stream: str,
    ) -> None:
        self.kill_at, self.restart_at = round(0.4 * blocks), round(0.55 * blocks)
        self.redeliver_at, self.poison_at = round(0.7 * blocks), round(0.8 * blocks)
        self.note = note
        self.monitor = monitor
        self.monitor_state = monitor_state
        self.checkpoints = checkpoints
        self.kinesis = kinesis
        self.esm = esm
        self.stream = stream
        self.killed_at: int | None = None
        self.redelivered = 0
        self.poison = 0

    def at(self, number: int) -> None:
        if number == self.kill_at:
            # Mid-way means it has published something: wait for its first checkpoint.
            wait_until(self.checkpoints.load, 60, what="the monitor's first checkpoint")
            self.monitor.kill()
            self.monitor_state[0] = "killed"
            self.killed_at = self.checkpoints.load().block
            self.note(f"fault         monitor SIGKILLed (checkpoint at block {self.killed_at})")
        if number == self.restart_at:
            self.monitor.start()
            self.monitor_state[0] = "running"
            self.note(f"fault         monitor restarted (pid {self.monitor.pid}): it resumes from its checkpoint")
        if number == self.redeliver_at:
            self.redelivered = self._redeliver()
            self.note(f"fault         {self.redelivered} records already on the stream put on it again")
        if number == self.poison_at:
            self.kinesis.put_record(StreamName=self.stream, Data=b'{"v": 1, "kind"', PartitionKey="junk")
            self.poison = 1
            self.note("fault         a poison record put on the stream")

    def _redeliver(self, most: int = 100) -> int:
        """A stretch of the busiest shard's records, put on the stream again as a retrying producer would."""
        wait_until(lambda: self.esm.counters.records_fetched > 0, 60, what="records on the stream")
        shards = self.kinesis.list_shards(StreamName=self.stream)["Shards"]
        stretches = []
        for shard in shards:
            iterator = self.kinesis.get_shard_iterator(
                StreamName=self.stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            stretches.append(self.kinesis.get_records(ShardIterator=iterator, Limit=most)["Records"])
        stretch = max(stretches, key=len)
        records = [{"Data": r["Data"], "PartitionKey": r["PartitionKey"]} for r in stretch]
        if records:
            self.kinesis.put_records(StreamName=self.stream, Records=records)
        return len(records)
