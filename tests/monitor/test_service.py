"""The service as operators meet it: SIGTERM, the direct sink, metric names, secrets kept out of logs."""

from __future__ import annotations

import asyncio
import signal

import pytest

from app.monitor.checkpoint import DynamoCheckpointStore
from app.monitor.config import MonitorConfig, resolve
from app.monitor.rpc import JsonRpc
from app.monitor.service import Monitor
from app.monitor.telemetry import Telemetry
from app.store import create_tables
from tests.monitor.harness import (
    CHAIN_ID,
    MonitorProcess,
    applied_view,
    base_config,
    expected_view,
    run_monitor,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.integration

DESIGN_METRICS = {
    "WebSocketConnected",
    "InconsistentReads",
    "BloomRereads",
    "EventsIngested",
    "EventsPublished",
    "KinesisPutFailures",
    "ProcessingErrors",
    "BlocksBehind",
    "ReorgsDetected",
    "MemoryUtilization",
    "CPUUtilization",
    "PoisonRecords",
}


def test_sigterm_flushes_what_was_read_saves_the_checkpoint_and_a_restart_resumes(tmp_path, anvil, chain, aws, moto):
    for batch in range(6):
        chain.batch_mint(1, batch * 200, 200)
        for token in range(batch * 200, batch * 200 + 200, 10):
            chain.transfer(1, 2, token)
    head = chain.head
    config = write_config(
        tmp_path / "monitor.yaml",
        **base_config(anvil, aws, chain, max_range_blocks=3, target_logs_per_range=50, max_pending_records=5),
    )
    monitor = MonitorProcess(config, moto, tmp_path / "monitor.log")
    wait_until(lambda: (aws.checkpoint_block() or 0) > chain.deploy_block + 3, 30, interval=0.02, what="progress")

    assert monitor.stop(signal.SIGTERM) == 0
    checkpoint = aws.checkpoint_block()
    assert checkpoint < head, "stopped in the middle of the backfill"
    records = aws.records()
    assert max(event.block_number for *_, event in records) <= checkpoint, "everything read was flushed and saved"
    assert applied_view(records) == expected_view(chain, checkpoint)
    assert any(line.get("message") == "monitor stopped" for line in monitor.logs())

    assert run_monitor(config, moto, "--until-block", str(head)).returncode == 0
    records = aws.records()
    assert len(records) == len(chain.transfers), "the restart resumed exactly at the checkpoint: no duplicates"
    assert applied_view(records) == expected_view(chain)


def test_direct_sink_applies_events_to_the_tables(tmp_path, anvil, chain, aws, moto):
    tokens, points = f"tokens-{aws.stage}", f"points-{aws.stage}"
    create_tables(aws.dynamodb, tokens=tokens, points=points)
    chain.batch_mint(1, 1, 4)
    chain.transfer(1, 2, 2)
    chain.safe_transfer(2, 3, 2)
    chain.burn(1, 4)
    settings = base_config(
        anvil,
        aws,
        chain,
        sink="dynamodb",
        tokens_table=tokens,
        points_table=points,
        points_per_day={f"{CHAIN_ID}:{chain.address}": 10},
    )
    del settings["stream_name"]
    # Its quarantine queue comes from SSM, as on the host.
    queue_url = moto.client("sqs").create_queue(QueueName=f"quarantine-{aws.stage}")["QueueUrl"]
    aws.ssm.put_parameter(
        Name=f"/ngu-points-system-v2/{aws.stage}/QUARANTINE_QUEUE_URL", Value=queue_url, Type="String"
    )
    config = write_config(tmp_path / "monitor.yaml", **settings)

    result = run_monitor(config, moto, "--until-block", str(chain.head))

    assert result.returncode == 0, result.stderr
    owners = {
        item["tokenId"]["S"]: item["owner"]["S"]
        for item in aws.dynamodb.scan(TableName=tokens, ConsistentRead=True)["Items"]
    }
    zero = "0x" + "0" * 40
    assert owners == {"1": chain.accounts[1], "2": chain.accounts[3], "3": chain.accounts[1], "4": zero}
    held = {
        item["holder"]["S"]: int(item["tokensHeld"]["N"])
        for item in aws.dynamodb.scan(TableName=points, ConsistentRead=True)["Items"]
    }
    assert held[chain.accounts[1]] == 2 and held[chain.accounts[3]] == 1 and held[chain.accounts[2]] == 0
    assert aws.records() == [], "nothing went to Kinesis"
    assert aws.checkpoint_block() == chain.head

    settings["quarantine_queue_url"] = queue_url.replace(f"quarantine-{aws.stage}", "no-such-queue")
    wrong = run_monitor(write_config(tmp_path / "wrong.yaml", **settings), moto, "--until-block", str(chain.head))
    assert wrong.returncode == 2
    [error] = [line for line in wrong.stderr.splitlines() if line.startswith("error: ")]
    assert error.startswith("error: quarantine_queue_url: cannot use queue ") and "no-such-queue" in error


def test_metrics_carry_the_design_names_and_only_the_stage_dimension(tmp_path, anvil, chain, aws, moto):
    chain.batch_mint(1, 1, 3)
    config = write_config(tmp_path / "monitor.yaml", **base_config(anvil, aws, chain))
    assert run_monitor(config, moto, "--until-block", str(chain.head)).returncode == 0

    metrics = aws.cloudwatch.list_metrics(Namespace="NGUPoints/EventMonitor")["Metrics"]
    mine = [m for m in metrics if m["Dimensions"] == [{"Name": "Stage", "Value": aws.stage}]]
    assert {m["MetricName"] for m in mine} == DESIGN_METRICS
    assert aws.metric_sum("EventsPublished") == 3 and aws.metric_sum("EventsIngested") == 3


def test_the_rpc_url_from_ssm_is_never_logged(tmp_path, anvil, chain, aws, moto):
    secret = "SECRETKEY123"
    parameter = f"/ngu-points-system-v2/{aws.stage}/RPC_URL"
    aws.ssm.put_parameter(Name=parameter, Value=f"{anvil.ws_url}/?apikey={secret}", Type="SecureString")
    chain.mint(1, 1)
    settings = base_config(anvil, aws, chain, rpc_url_parameter=parameter)
    del settings["rpc_url"]
    config = write_config(tmp_path / "monitor.yaml", **settings)

    result = run_monitor(config, moto, "--until-block", str(chain.head))

    assert result.returncode == 0, result.stderr
    assert len(aws.records()) == 1
    assert secret not in result.stdout + result.stderr
    assert f"127.0.0.1:{anvil.port}/…" in result.stdout


class CrashingSink:
    """A sink whose worker dies: the monitor must stop with an error, not wait for acks forever."""

    async def submit(self, event, ticket) -> None:
        ticket.add()

    async def drain(self) -> None:
        await asyncio.Event().wait()

    async def run(self) -> None:
        await asyncio.sleep(0.2)
        raise ConnectionError("sink worker died")


def test_a_dead_sink_stops_the_monitor_with_an_error(tmp_path, anvil, chain, aws):
    chain.batch_mint(1, 1, 3)
    config = MonitorConfig.parse(base_config(anvil, aws, chain))
    settings = resolve(config, aws.ssm)

    async def run() -> None:
        store = DynamoCheckpointStore(aws.dynamodb, aws.monitor_table, CHAIN_ID)
        async with JsonRpc(settings.http_rpc_url) as rpc:
            monitor = Monitor(
                settings,
                rpc=rpc,
                sink=CrashingSink(),
                store=store,
                telemetry=Telemetry(aws.cloudwatch, aws.stage),
                until_block=chain.head,
            )
            await asyncio.wait_for(monitor.run(), 20)

    with pytest.raises(RuntimeError, match="background task sink stopped: ConnectionError"):
        asyncio.run(run())
    assert aws.checkpoint_block() is None, "nothing was acknowledged, so nothing was saved"
