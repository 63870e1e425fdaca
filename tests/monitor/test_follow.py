"""Following the head: a node that goes away and comes back, and reorgs shallow and deep."""

from __future__ import annotations

import time

import pytest

from tests.monitor.harness import (
    CHAIN_ID,
    Anvil,
    Chain,
    MonitorProcess,
    applied_view,
    base_config,
    expected_view,
    run_monitor,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.integration


def event_ids(aws) -> set[str]:
    return {event.id for *_, event in aws.records()}


def transfer_ids(transfers) -> set[str]:
    return {f"{CHAIN_ID}:{t.tx_hash}:{t.log_index}" for t in transfers}


@pytest.fixture
def follow(tmp_path, moto):
    """Start the monitor in follow mode; stop it (SIGTERM) at the end whatever happened."""
    started: list[MonitorProcess] = []

    def start(config_values) -> MonitorProcess:
        config = write_config(tmp_path / "monitor.yaml", **config_values)
        monitor = MonitorProcess(config, moto, tmp_path / f"monitor{len(started)}.log")
        started.append(monitor)
        return monitor

    yield start
    for monitor in started:
        if monitor.process.poll() is None:
            monitor.stop()


def test_node_restart_reconnects_resubscribes_and_catches_up_without_gap(tmp_path, aws, follow):
    anvil = Anvil(state=tmp_path / "anvil-state.json").start()
    try:
        chain = Chain(anvil)
        # A long poll interval: catching up quickly after the restart proves the resubscribed doorbell.
        monitor = follow(base_config(anvil, aws, chain, poll_interval_seconds=120))
        chain.batch_mint(1, 1, 10)
        chain.transfer(1, 2, 3)
        wait_until(lambda: transfer_ids(chain.transfers) <= event_ids(aws), 30, what="first events")

        anvil.stop()
        time.sleep(10)
        anvil.start()
        chain.reattach()
        chain.transfer(2, 3, 3)
        chain.burn(1, 4)
        chain.mint(4, 50)
        wait_until(lambda: transfer_ids(chain.transfers) <= event_ids(aws), 30, what="events after the restart")
        wait_until(lambda: aws.checkpoint_block() == chain.head, 10, what="checkpoint at the head")

        assert monitor.stop() == 0
        records = aws.records()
        assert applied_view(records) == expected_view(chain)
        logs = monitor.logs()
        subscribed = [line for line in logs if line.get("message") == "websocket subscribed to newHeads"]
        assert len(subscribed) >= 2, "subscribed again after the node came back"
        assert any("reconnecting" in str(line.get("message")) for line in logs)
        wait_until(lambda: aws.metric_sum("EventsPublished") >= 14, 10, what="metrics")
        connected = aws.cloudwatch.get_metric_statistics(
            Namespace="NGUPoints/EventMonitor",
            MetricName="WebSocketConnected",
            Dimensions=[{"Name": "Stage", "Value": aws.stage}],
            StartTime=time.time() - 3600,
            EndTime=time.time() + 60,
            Period=3600,
            Statistics=["Minimum", "Maximum"],
        )["Datapoints"]
        assert connected and connected[0]["Minimum"] == 0 and connected[0]["Maximum"] == 1
    finally:
        anvil.stop()


def reorg(chain: Chain, depth: int, mint_to: int, token_id: int) -> None:
    """Replace the last `depth` blocks; the new first block mints `token_id`."""
    data = chain.token.encode_abi("mint", args=[chain.account(mint_to), token_id])
    tx = {"from": chain.accounts[0], "to": chain.address, "data": data, "gas": hex(200_000)}
    answer = chain.w3.provider.make_request("anvil_reorg", [depth, [[tx, 0]]])
    assert "error" not in answer, answer


def token_ids(aws) -> list[int]:
    return sorted(event.token_id for *_, event in aws.records())


def test_reorg_inside_the_confirmation_depth_publishes_nothing_orphaned(anvil, chain, aws, follow):
    monitor = follow(base_config(anvil, aws, chain, confirmations=3))
    chain.mint(1, 1)
    chain.mine(3)
    wait_until(lambda: token_ids(aws) == [1], 20, what="the confirmed mint")
    chain.mint(1, 10)
    chain.mint(1, 11)  # both within 3 confirmations of the head
    time.sleep(1.5)  # the monitor sees these heads but must not read them yet
    reorg(chain, 2, 2, 12)
    chain.mine(4)
    wait_until(lambda: aws.checkpoint_block() == chain.head - 3, 20, what="checkpoint past the reorg")

    assert token_ids(aws) == [1, 12], "the orphaned mints of 10 and 11 were never published"
    assert monitor.stop() == 0
    assert aws.reorg_items() == []
    assert not any(line.get("message", "").startswith("deep reorg") for line in monitor.logs())


def test_reorg_deeper_than_confirmations_is_detected_recorded_and_passed(anvil, chain, aws, follow):
    monitor = follow(base_config(anvil, aws, chain, confirmations=1))
    chain.mint(1, 20)
    chain.mint(1, 21)
    chain.mine(2)
    wait_until(lambda: aws.checkpoint_block() == chain.head - 1, 20, what="both mints published")
    assert token_ids(aws) == [20, 21]
    published_through = chain.head - 1
    published_hash = "0x" + chain.w3.eth.get_block(published_through)["hash"].hex().removeprefix("0x")
    first_replaced = chain.head - 3

    reorg(chain, 4, 2, 22)  # replaces the blocks of both mints: a deep reorg
    chain.mint(3, 23)
    chain.mine(1)
    wait_until(lambda: 23 in token_ids(aws), 20, what="publishing on the new chain")

    assert token_ids(aws) == [20, 21, 22, 23], "the new chain's events are published, the old ones stay"
    [item] = aws.reorg_items()
    first = int(item["firstBlock"]["N"])
    assert item["id"]["S"] == f"reorg:{CHAIN_ID}:{first}"
    assert 0 < first <= first_replaced
    assert int(item["lastBlock"]["N"]) == published_through
    assert item["publishedHash"]["S"] == published_hash
    assert item["canonicalHash"]["S"] == "0x" + chain.w3.eth.get_block(published_through)["hash"].hex().removeprefix(
        "0x"
    )
    wait_until(lambda: aws.checkpoint_block() == chain.head - 1, 10, what="checkpoint on the new chain")
    assert aws.checkpoint()["hash"]["S"] == "0x" + chain.w3.eth.get_block(chain.head - 1)["hash"].hex().removeprefix(
        "0x"
    )
    assert monitor.stop() == 0
    [error] = [line for line in monitor.logs() if line.get("message", "").startswith("deep reorg")]
    assert error["level"] == "ERROR"
    assert error["orphaned_first_block"] == first and error["orphaned_last_block"] == published_through
    assert error["published_hash"] == published_hash and error["canonical_hash"] == item["canonicalHash"]["S"]
    wait_until(lambda: aws.metric_sum("ReorgsDetected") == 1, 10, what="ReorgsDetected metric")


def test_a_deep_reorg_while_the_monitor_was_down_is_found_from_the_saved_hashes(tmp_path, anvil, chain, aws, moto):
    chain.mint(1, 30)
    chain.mint(1, 31)
    chain.mine(1)
    config = write_config(tmp_path / "monitor.yaml", **base_config(anvil, aws, chain, confirmations=1))
    assert run_monitor(config, moto, "--until-block", str(chain.head - 1)).returncode == 0
    assert token_ids(aws) == [30, 31]

    reorg(chain, 3, 2, 32)  # the blocks of both mints and the one after them
    chain.mine(2)
    result = run_monitor(config, moto, "--until-block", str(chain.head - 1))

    assert result.returncode == 0, result.stderr
    assert token_ids(aws) == [30, 31, 32]
    [item] = aws.reorg_items()
    assert int(item["firstBlock"]["N"]) <= chain.head - 4
    assert "deep reorg" in result.stdout
