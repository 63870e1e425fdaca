"""Mints, transfers and burns become exactly the expected records (schema v1, key, order, time)."""

from __future__ import annotations

import json

import pytest

from tests.monitor.harness import (
    CHAIN_ID,
    applied_view,
    base_config,
    expected_view,
    per_token,
    run_monitor,
    write_config,
)

pytestmark = pytest.mark.integration


def test_every_transfer_becomes_one_record_and_erc20_logs_are_ignored(tmp_path, anvil, chain, aws, moto):
    chain.mint(1, 7)
    chain.batch_mint(2, 100, 20)
    chain.transfer(1, 3, 7)
    chain.safe_transfer(2, 1, 105)
    chain.fungible_transfer(1, 2, 10**18)
    chain.transfer(3, 4, 7)
    chain.burn(4, 7)
    chain.burn(2, 100)
    head = chain.head
    config = write_config(tmp_path / "monitor.yaml", **base_config(anvil, aws, chain, confirmations=1))

    result = run_monitor(config, moto, "--until-block", str(head - 1))

    assert result.returncode == 0, result.stderr
    records = aws.records()
    confirmed = [t for t in chain.transfers if t.block_number <= head - 1]
    assert len(records) == len(confirmed) == 1 + 20 + 1 + 1 + 1 + 1  # the last burn is not confirmed
    by_id = {event.id: (key, event) for _, _, key, event in records}
    assert len(by_id) == len(records), "no duplicates in a clean run"
    for t in confirmed:
        key, event = by_id[f"{CHAIN_ID}:{t.tx_hash}:{t.log_index}"]
        assert key == event.partition_key == f"{CHAIN_ID}:{chain.address}:{t.token_id}"
        assert (event.from_address, event.to_address, event.block_number, event.block_hash) == (
            t.from_address,
            t.to_address,
            t.block_number,
            t.block_hash,
        )
        assert (event.tx_index, event.log_index, event.contract) == (t.tx_index, t.log_index, chain.address)
        assert event.block_timestamp == chain.timestamp(t.block_number)
    body = json.loads(records[0][3].encode())
    assert body["v"] == 1 and isinstance(body["tokenId"], str)
    assert applied_view(records) == expected_view(chain, head - 1)
    assert [e.to_address for e in per_token(records)[f"{CHAIN_ID}:{chain.address}:7"]] == [
        chain.accounts[1],
        chain.accounts[3],
        chain.accounts[4],
        "0x" + "0" * 40,
    ]
    assert aws.checkpoint_block() == head - 1


def test_a_second_run_resumes_at_the_checkpoint(tmp_path, anvil, chain, aws, moto):
    chain.batch_mint(1, 1, 5)
    first_head = chain.head
    config = write_config(tmp_path / "monitor.yaml", **base_config(anvil, aws, chain))
    assert run_monitor(config, moto, "--until-block", str(first_head)).returncode == 0
    chain.transfer(1, 2, 3)
    chain.burn(1, 4)

    result = run_monitor(config, moto, "--until-block", str(chain.head))

    assert result.returncode == 0, result.stderr
    records = aws.records()
    assert len(records) == 7, "the first run's records are not published again"
    assert applied_view(records) == expected_view(chain)
    assert aws.checkpoint_block() == chain.head


def test_a_checkpoint_file_works_like_the_table(tmp_path, anvil, chain, aws, moto):
    chain.batch_mint(1, 1, 3)
    settings = base_config(anvil, aws, chain, checkpoint_file=str(tmp_path / "checkpoint.json"))
    del settings["checkpoint_table"]
    config = write_config(tmp_path / "monitor.yaml", **settings)

    assert run_monitor(config, moto, "--until-block", str(chain.head)).returncode == 0
    chain.transfer(1, 2, 2)
    assert run_monitor(config, moto, "--until-block", str(chain.head)).returncode == 0

    saved = json.loads((tmp_path / "checkpoint.json").read_text())
    assert saved["block"] == chain.head and saved["chainId"] == CHAIN_ID
    assert saved["hash"] == "0x" + chain.w3.eth.get_block(chain.head)["hash"].hex().removeprefix("0x")
    assert len(aws.records()) == 4


def test_until_block_beyond_the_confirmed_head_publishes_what_is_confirmed_and_exits(tmp_path, anvil, chain, aws, moto):
    chain.mint(1, 1)
    chain.mint(1, 2)
    chain.mint(1, 3)
    head = chain.head
    config = write_config(tmp_path / "monitor.yaml", **base_config(anvil, aws, chain, confirmations=2))

    result = run_monitor(config, moto, "--until-block", str(head + 100), timeout=60)

    assert result.returncode == 0, result.stderr
    assert aws.checkpoint_block() == head - 2
    assert sorted(event.token_id for *_, event in aws.records()) == [1]
    assert "--until-block is beyond the confirmed head" in result.stdout
