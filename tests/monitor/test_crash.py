"""SIGKILL at random points of a backfill: every event is there after a restart, per-token order
holds for a consumer that skips stale records, and the checkpoint is never ahead of the acks."""

from __future__ import annotations

import random

import pytest

from tests.monitor.harness import (
    CHAIN_ID,
    MonitorProcess,
    applied_view,
    base_config,
    expected_view,
    kill_past,
    run_monitor,
    write_config,
)

pytestmark = pytest.mark.integration


def test_sigkill_during_backfill_loses_nothing(tmp_path, anvil, chain, aws, moto):
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    for batch in range(4):
        chain.batch_mint(1 + batch, batch * 500, 500)
    for n in range(200):
        token = rng.randrange(2000)
        owner = 1 + token // 500
        chain.transfer(owner, 5, token) if n % 2 else chain.safe_transfer(owner, 5, token)
        chain.transfer(5, owner, token)
    head = chain.head
    # Small ranges and a small queue make the backfill long enough to be killed in the middle.
    settings = base_config(
        anvil,
        aws,
        chain,
        max_range_blocks=4,
        target_logs_per_range=100,
        max_pending_records=10,
        checkpoint_interval_seconds=0.05,
    )
    config = write_config(tmp_path / "monitor.yaml", **settings)

    kills = 0
    span = (head - chain.deploy_block) // 4
    targets = [chain.deploy_block + rng.randrange(span * k, span * (k + 1)) for k in range(3)]
    for attempt, target in enumerate(targets):
        monitor = MonitorProcess(config, moto, tmp_path / f"run{attempt}.log", "--until-block", str(head))
        # Kill it once the checkpoint passed a random block, plus a random moment more.
        finished = kill_past(monitor, aws, target, rng.uniform(0, 0.1))
        if finished:
            break
        kills += 1
        checkpoint = aws.checkpoint_block()
        present = {event.id for *_, event in aws.records()}
        behind = [t for t in chain.transfers if t.block_number <= checkpoint]
        missing = [t for t in behind if f"{CHAIN_ID}:{t.tx_hash}:{t.log_index}" not in present]
        assert not missing, f"seed {seed}: checkpoint {checkpoint} is ahead of acks ({len(missing)} missing)"
    assert kills >= 3, f"seed {seed}: the backfill finished before it could be killed three times"

    result = run_monitor(config, moto, "--until-block", str(head))
    assert result.returncode == 0, result.stderr
    assert aws.checkpoint_block() == head
    records = aws.records()
    assert {event.id for *_, event in records} == {f"{CHAIN_ID}:{t.tx_hash}:{t.log_index}" for t in chain.transfers}
    assert applied_view(records) == expected_view(chain), f"seed {seed}: per-token order broken"
