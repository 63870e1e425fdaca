"""The four ways the monitor used to lose events (issue 8), each against anvil through a JSON-RPC
proxy that misbehaves on cue. Every scenario checks the same three things: every Transfer of the
final canonical chain is on the stream, no event of an orphaned block was published after its
orphaning was known, and the checkpoint never passed an unpublished canonical event."""

from __future__ import annotations

import time

import pytest

from app.local.services import CHAIN_ID
from tests.monitor.harness import (
    Anvil,
    Chain,
    MonitorProcess,
    base_config,
    free_port,
    run_monitor,
    wait_until,
    write_config,
)
from tests.support.chain_view import checkpoint_sound, missing_canonical, orphaned_on_stream, published, rpc
from tests.support.rpc_proxy import RpcProxy, reorg_after_logs, replica_behind

pytestmark = pytest.mark.integration


@pytest.fixture
def proxy(anvil):
    with RpcProxy(anvil.http_url) as started:
        yield started


@pytest.fixture
def follow(tmp_path, moto):
    started: list[MonitorProcess] = []

    def start(values, *args: str) -> MonitorProcess:
        config = write_config(tmp_path / f"monitor{len(started)}.yaml", **values)
        monitor = MonitorProcess(config, moto, tmp_path / f"monitor{len(started)}.log", *args)
        started.append(monitor)
        return monitor

    yield start
    for monitor in started:
        if monitor.process.poll() is None:
            monitor.stop()


def assert_nothing_lost(url: str, aws, chain: Chain) -> None:
    assert missing_canonical(url, aws, chain.address) == set(), "a canonical Transfer is not on the stream"
    assert checkpoint_sound(url, aws, chain.address), "the checkpoint passed an unpublished canonical event"


def caught_up(url: str, aws, chain: Chain, confirmations: int) -> bool:
    head = int(rpc(url, "eth_blockNumber"), 16)
    return aws.checkpoint_block() == head - confirmations and not missing_canonical(url, aws, chain.address)


def anvil_reorg(chain: Chain, depth: int, mints: list[tuple[int, int]]) -> None:
    """Replace the newest `depth` blocks; the first new block holds the given (to, token) mints."""
    txs = []
    for to, token in mints:
        data = chain.token.encode_abi("mint", args=[chain.account(to), token])
        txs.append([{"from": chain.accounts[0], "to": chain.address, "data": data, "gas": hex(200_000)}, 0])
    answer = chain.w3.provider.make_request("anvil_reorg", [depth, txs])
    assert "error" not in answer, answer


def test_a_reorg_between_the_log_read_and_the_header_read_loses_nothing(anvil, chain, aws, proxy, follow):
    monitor = follow(base_config(anvil, aws, chain, confirmations=2, http_rpc_url=proxy.url))
    chain.mint(1, 1)
    chain.mine(2)
    wait_until(lambda: caught_up(anvil.http_url, aws, chain, 2), 20, what="the first mint")

    # 1. The replaced block had no log on the old chain and holds a mint on the new one: only the
    #    new header's bloom shows it (this is the mint the old reader dropped).
    base = chain.head
    rule = reorg_after_logs(proxy, lambda _, last: last >= base + 1, lambda: anvil_reorg(chain, 3, [(2, 14)]))
    proxy.rules.append(rule)
    chain.mine(3)
    wait_until(rule.fired.is_set, 20, what="the reorg between the calls")
    proxy.rules.remove(rule)
    chain.mine(2)
    wait_until(lambda: caught_up(anvil.http_url, aws, chain, 2), 20, what="the new chain's mint")

    # 2. The replaced block had a log on the old chain: the log's block hash is not the header's.
    base = chain.head
    chain.mint(1, 20)  # block base + 1
    rule = reorg_after_logs(proxy, lambda _, last: last >= base + 1, lambda: anvil_reorg(chain, 3, [(2, 21)]))
    proxy.rules.append(rule)
    chain.mine(2)
    wait_until(rule.fired.is_set, 20, what="the second reorg between the calls")
    proxy.rules.remove(rule)
    chain.mine(2)
    wait_until(lambda: caught_up(anvil.http_url, aws, chain, 2), 20, what="the second new chain's mint")

    assert_nothing_lost(anvil.http_url, aws, chain)
    assert {event.token_id for *_, event in aws.records()} >= {1, 14, 21}
    assert monitor.stop() == 0
    # The headers are fetched beside the logs: when the node answered them before the reorg, the
    # range was consistent (the old chain, canonical then) and its publication was orphaned only
    # afterwards, a deep reorg the monitor recorded. Otherwise the read was refused and repeated.
    reorged = [(int(i["firstBlock"]["N"]), int(i["lastBlock"]["N"])) for i in aws.reorg_items()]
    orphaned = orphaned_on_stream(anvil.http_url, aws, chain.address)
    for event in (e for *_, e in aws.records() if (e.id, e.block_hash) in orphaned):
        assert any(first <= event.block_number <= last for first, last in reorged), "orphaned without a reorg record"
    reread = [line for line in monitor.logs() if line.get("message", "").startswith("range re-read")]
    assert len(reread) + len(reorged) >= 2, "each reorg was either refused mid-read or recorded"
    if reread:
        wait_until(lambda: aws.metric_sum("InconsistentReads") >= 1, 10, what="InconsistentReads metric")


def test_logs_served_by_a_replica_one_block_behind_are_never_trusted(anvil, chain, aws, proxy, follow):
    replica = replica_behind(proxy, lag=1)
    proxy.rules.append(replica)
    monitor = follow(base_config(anvil, aws, chain, confirmations=0, http_rpc_url=proxy.url))
    wait_until(lambda: caught_up(anvil.http_url, aws, chain, 0), 30, what="the monitor running")
    for n in range(41):  # each in its own block, at the head when the monitor reads it
        hidden = replica.hidden
        chain.mint(1 + n % 3, 100 + n)
        if n < 5:  # make sure the monitor met the replica's incomplete answers
            wait_until(lambda hidden=hidden: replica.hidden > hidden, 10, what="an answer without the newest block")
        time.sleep(0.02)
    chain.mine(1)  # the replica catches up on the last mint's block
    wait_until(lambda: caught_up(anvil.http_url, aws, chain, 0), 30, what="every mint")

    assert_nothing_lost(anvil.http_url, aws, chain)
    assert len(published(aws)) == 41
    assert monitor.stop() == 0
    reread = [line for line in monitor.logs() if line.get("message", "").startswith("range re-read")]
    assert reread, "the replica's incomplete answers were noticed"
    wait_until(lambda: aws.metric_sum("InconsistentReads") >= 1, 10, what="InconsistentReads metric")


def build_history(chain: Chain, blocks: int, first_token: int) -> None:
    """`blocks` blocks with a mint every tenth."""
    for n in range(blocks // 10):
        chain.mint(1 + n % 4, first_token + n)
        chain.mine(9)


def deep_reorg(chain: Chain, snapshot: str, blocks: int, first_token: int) -> None:
    """Back to `snapshot`, then a longer chain with other mints."""
    assert chain.w3.provider.make_request("evm_revert", [snapshot])["result"] is True
    build_history(chain, blocks, first_token)


def snapshot(chain: Chain) -> str:
    return chain.w3.provider.make_request("evm_snapshot", [])["result"]


def check_reorg_item(aws, fork: int, published_through: int) -> None:
    [item] = aws.reorg_items()
    first = int(item["firstBlock"]["N"])
    depth = published_through - fork
    assert fork + 1 - depth // 16 - 1 <= first <= fork + 1, f"fork after {fork}, recorded from {first}"
    assert int(item["lastBlock"]["N"]) == published_through


def test_a_200_block_reorg_while_running_is_followed_to_the_fork(anvil, chain, aws, follow):
    build_history(chain, 40, 1000)
    monitor = follow(base_config(anvil, aws, chain, confirmations=2, checkpoint_interval_seconds=0.01))
    fork = chain.head
    saved = snapshot(chain)
    # Block by block, each read as it comes (the old monitor kept only its last 128 hashes then).
    for n in range(210):
        if n % 10 == 0:
            chain.mint(1 + n % 4, 2000 + n)
        else:
            chain.mine(1)
        wait_until(lambda: aws.checkpoint_block() == chain.head - 2, 20, interval=0.005, what="following")
    wait_until(lambda: caught_up(anvil.http_url, aws, chain, 2), 30, what="the first chain")
    published_through = aws.checkpoint_block()
    orphaned_before = published(aws)  # nothing in flight now: all of it was acknowledged

    deep_reorg(chain, saved, 230, 3000)
    wait_until(lambda: caught_up(anvil.http_url, aws, chain, 2), 60, what="the new chain")

    assert_nothing_lost(anvil.http_url, aws, chain)
    late_orphans = orphaned_on_stream(anvil.http_url, aws, chain.address) - orphaned_before
    assert late_orphans == set(), "an orphaned event was published after the reorg was known"
    check_reorg_item(aws, fork, published_through)
    assert monitor.stop() == 0
    wait_until(lambda: aws.metric_sum("ReorgsDetected") == 1, 10, what="ReorgsDetected metric")


def test_a_200_block_reorg_while_stopped_is_followed_to_the_fork(tmp_path, anvil, chain, aws, moto):
    build_history(chain, 40, 1000)
    config = write_config(tmp_path / "monitor.yaml", **base_config(anvil, aws, chain, confirmations=2))
    fork = chain.head
    saved = snapshot(chain)
    for n in range(210):  # a mint in every block: more hashes than the old monitor's 128 kept
        chain.mint(1 + n % 4, 2000 + n)
    assert run_monitor(config, moto, "--until-block", str(chain.head - 2)).returncode == 0
    published_through = aws.checkpoint_block()
    before = published(aws)

    deep_reorg(chain, saved, 230, 3000)
    result = run_monitor(config, moto, "--until-block", str(chain.head - 2))

    assert result.returncode == 0, result.stderr
    assert aws.checkpoint_block() == chain.head - 2
    assert missing_canonical(anvil.http_url, aws, chain.address) == set()
    assert checkpoint_sound(anvil.http_url, aws, chain.address)
    assert (orphaned_on_stream(anvil.http_url, aws, chain.address) - before) == set()
    check_reorg_item(aws, fork, published_through)
    assert "deep reorg" in result.stdout


def test_a_fork_older_than_every_kept_hash_stops_the_monitor_without_moving_the_checkpoint(tmp_path, anvil, aws, moto):
    rpc(anvil.http_url, "anvil_mine", ["0x2"])
    saved = rpc(anvil.http_url, "evm_snapshot")
    accounts = rpc(anvil.http_url, "eth_accounts")
    rpc(anvil.http_url, "eth_sendTransaction", [{"from": accounts[0], "to": accounts[1], "value": "0x1"}])
    chain = Chain(anvil)  # deployed after the snapshot: its start block and the parent are forked away
    chain.mint(1, 1)
    chain.mine(3)
    config = write_config(tmp_path / "monitor.yaml", **base_config(anvil, aws, chain, confirmations=0))
    assert run_monitor(config, moto, "--until-block", str(chain.head)).returncode == 0
    stored = aws.checkpoint()
    assert min(int(n) for n in stored["recent"]["M"]) == chain.deploy_block - 1 > 2

    rpc(anvil.http_url, "evm_revert", [saved])
    rpc(anvil.http_url, "eth_sendTransaction", [{"from": accounts[0], "to": accounts[2], "value": "0x2"}])
    rpc(anvil.http_url, "anvil_mine", ["0xa"])
    result = run_monitor(config, moto, "--until-block", str(chain.head))

    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: deep reorg: none of the") and "cannot be proven" in line
    assert aws.checkpoint() == stored, "the checkpoint did not move"
    wait_until(lambda: aws.metric_sum("ReorgsDetected") >= 1, 10, what="ReorgsDetected metric")


def test_a_node_down_at_boot_longer_than_the_old_start_limit_is_waited_for(tmp_path, aws, moto, follow):
    port = free_port()
    address = "0x5fbdb2315678afecb367f032d93f642f64180aa3"  # the first contract account 0 deploys
    values = {
        "stage": aws.stage,
        "chain_id": CHAIN_ID,
        "rpc_url": f"ws://127.0.0.1:{port}",
        "confirmations": 0,
        "contracts": [{"address": address, "start_block": 0}],
        "stream_name": aws.stream,
        "checkpoint_table": aws.monitor_table,
        "poll_interval_seconds": 1,
        "checkpoint_interval_seconds": 0.2,
        "metrics_interval_seconds": 1,
        "startup_backoff_cap_seconds": 0.1,
    }
    monitor = follow(values)
    # systemd's old StartLimitBurst=20 gave up after the 20th failed start: wait out more tries.
    wait_until(lambda: len(waits(monitor)) > 20, 60, what="more start-up tries than the old start limit")
    assert monitor.process.poll() is None, "still running, waiting"
    anvil = Anvil(port=port).start()
    try:
        chain = Chain(anvil)
        assert chain.address == address
        chain.batch_mint(1, 0, 5)
        chain.transfer(1, 2, 3)
        wait_until(lambda: caught_up(anvil.http_url, aws, chain, 0), 30, what="catching up after the node came up")
        assert_nothing_lost(anvil.http_url, aws, chain)
        assert monitor.stop() == 0
    finally:
        anvil.stop()
    lines = waits(monitor)
    assert all(line["level"] == "WARNING" and line["key"] == "rpc_url" for line in lines)
    assert [line["attempt"] for line in lines] == list(range(1, len(lines) + 1)), "one line per try"
    assert aws.metric_sum("ProcessingErrors") >= 1, "the waiting was visible in metrics"


def waits(monitor: MonitorProcess) -> list[dict]:
    return [line for line in monitor.logs() if "unreachable" in str(line.get("message")) and "attempt" in line]
