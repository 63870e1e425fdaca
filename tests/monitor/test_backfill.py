"""`python -m app backfill` (issue 13): a range never published is published through the
monitor's reader and sink; the live checkpoint item is not touched; bad input exits 2, a missing
stream 1, each in one line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from app.local.services import CHAIN_ID, ROOT
from tests.monitor.harness import base_config, monitor_env, run_monitor, write_config

pytestmark = pytest.mark.integration


def backfill(config, moto, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app", "backfill", "--config", str(config), *args],
        cwd=ROOT,
        env=monitor_env(moto),
        capture_output=True,
        text=True,
        timeout=120,
    )


def ids(transfers) -> set[str]:
    return {f"{CHAIN_ID}:{t.tx_hash}:{t.log_index}" for t in transfers}


def test_a_range_never_published_is_backfilled_and_the_checkpoint_is_untouched(tmp_path, anvil, chain, aws, moto):
    chain.batch_mint(1, 0, 20)
    config = write_config(tmp_path / "monitor.yaml", **base_config(anvil, aws, chain, confirmations=1))
    published_through = chain.head
    chain.mine(1)
    assert run_monitor(config, moto, "--until-block", str(published_through)).returncode == 0
    checkpoint = aws.checkpoint()
    for token in range(10):
        chain.transfer(1, 2, token)
    chain.burn(2, 3)
    first, last = published_through + 1, chain.head
    chain.mine(1)
    missing = [t for t in chain.transfers if first <= t.block_number <= last]
    assert {e.id for *_, e in aws.records()}.isdisjoint(ids(missing)), "the range was never published"

    result = backfill(config, moto, "--from-block", str(first), "--to-block", str(last), "--json")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["events"] == len(missing) == 11
    assert set(report["event_ids"]) == ids(missing)
    assert (report["from_block"], report["to_block"], report["sink"]) == (first, last, "kinesis")
    assert ids(missing) <= {e.id for *_, e in aws.records()}, "every Transfer of the range is on the stream"
    assert aws.checkpoint() == checkpoint, "the live checkpoint item is unchanged"
    assert aws.reorg_items() == []


def test_backfill_errors_are_one_line_with_their_exit_status(tmp_path, anvil, chain, aws, moto):
    config = write_config(tmp_path / "monitor.yaml", **base_config(anvil, aws, chain, confirmations=1))
    head = chain.head
    cases = [
        (("--from-block", "5", "--to-block", "4"), 2, "error: --from-block: 5 is after --to-block 4"),
        (("--from-block", "0", "--to-block", str(head + 5)), 2, f"error: --to-block: {head + 5} is not confirmed"),
    ]
    for args, status, start in cases:
        result = backfill(config, moto, *args)
        assert result.returncode == status, result.stderr
        [line] = result.stderr.strip().splitlines()
        assert line.startswith(start)
    gone = write_config(tmp_path / "gone.yaml", **base_config(anvil, aws, chain, stream_name="no-such-stream"))
    result = backfill(gone, moto, "--from-block", "0", "--to-block", "0")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: stream_name: cannot use no-such-stream (ResourceNotFoundException)"
    ]
