"""Two monitors on one checkpoint (issue 11): a launch-before-terminate instance refresh runs the
new host's monitor beside the old one for a minute. The checkpoint is written conditionally, so it
never moves backwards, and nothing is lost; each event may arrive twice (the consumer skips it)."""

from __future__ import annotations

import threading
import time

import pytest

from app.local.services import CHAIN_ID
from app.monitor.checkpoint import Checkpoint, DynamoCheckpointStore
from tests.monitor.harness import MonitorProcess, applied_view, base_config, expected_view, wait_until, write_config

pytestmark = pytest.mark.integration


def test_a_save_behind_the_stored_checkpoint_is_refused_and_a_rewind_is_not(aws):
    store = DynamoCheckpointStore(aws.dynamodb, aws.monitor_table, CHAIN_ID)
    assert store.save(Checkpoint(10, "0xa", ((10, "0xa"),)))
    assert not store.save(Checkpoint(9, "0x9", ((9, "0x9"),))), "another monitor is further on"
    assert store.save(Checkpoint(10, "0xa", ((10, "0xa"),))), "the same block again is fine"
    assert store.load() == Checkpoint(10, "0xa", ((10, "0xa"),))
    assert store.save(Checkpoint(4, "0x4", ((4, "0x4"),)), rewind=True)
    assert store.load().block == 4


def test_two_monitors_on_one_checkpoint_lose_nothing_and_the_checkpoint_never_moves_back(
    tmp_path, anvil, chain, aws, moto
):
    chain.batch_mint(1, 0, 40)
    config = write_config(tmp_path / "monitor.yaml", **base_config(anvil, aws, chain))
    seen: list[int] = []
    polling = threading.Event()

    def poll() -> None:
        while not polling.is_set():
            block = aws.checkpoint_block()
            if block is not None:
                seen.append(block)
            polling.wait(0.01)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    old = MonitorProcess(config, moto, tmp_path / "old.log")
    new = None
    try:
        wait_until(lambda: aws.checkpoint_block() == chain.head, 30, what="the old monitor caught up")
        for n in range(40):
            if n == 10:
                new = MonitorProcess(config, moto, tmp_path / "new.log")  # the refresh starts the new host
                wait_until(lambda new=new: started(new), 30, what="the new monitor running")
            if n == 30:
                assert old.stop() == 0  # ... and then terminates the old one
            chain.transfer(1, 2 + n % 3, n)
            time.sleep(0.05)
        wait_until(lambda: aws.checkpoint_block() == chain.head, 30, what="the checkpoint at the head")
    finally:
        polling.set()
        poller.join(5)
        for monitor in (old, new):
            if monitor is not None and monitor.process.poll() is None:
                monitor.stop()
    assert new is not None and new.process.returncode == 0
    assert seen == sorted(seen), "the stored checkpoint moved backwards"
    records = aws.records()
    assert {event.id for *_, event in records} == {f"{CHAIN_ID}:{t.tx_hash}:{t.log_index}" for t in chain.transfers}
    assert applied_view(records) == expected_view(chain), "per-token order holds for the consumer"


def started(monitor: MonitorProcess) -> bool:
    return any(line.get("message") == "monitor starting" for line in monitor.logs())
