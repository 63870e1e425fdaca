"""`reconcile` against the local stack: clean after a run, finds hand-corrupted items, `--fix` repairs
them conditionally (also while the consumer applies events), and refuses a history that cannot
account for the tokens on chain."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from app.__main__ import main
from app.local.services import ROOT, free_port
from tests.local.stage import HOUR, local_stage, trade

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stage():
    with local_stage() as stage:
        trade(stage.chain)
        head = stage.confirmed()
        stage.publish(head)
        stage.consume()
        stage.head = head
        yield stage


def reconcile(capsys, stage, *extra):
    code = main(["reconcile", "--config", str(stage.config), "--stage", stage.stage, *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def token_key(stage, token_id):
    return f"31337:{stage.chain.address}:{token_id}"


def test_clean_after_a_run(stage, capsys):
    code, out, err = reconcile(capsys, stage, "--json")
    assert code == 0, out + err
    report = json.loads(out)
    assert report["consistent"] and report["mismatches"] == [] and report["toBlock"] == stage.head
    assert report["tokens"] == 10 and report["holders"] == 5


def test_the_fixed_interface_as_a_subprocess_with_explicit_tables(stage):
    """How the demo calls it: `python -m app reconcile --config F --tokens-table T --points-table P --json`."""
    env = {k: v for k, v in os.environ.items() if k not in ("TOKENS_TABLE", "POINTS_TABLE")}
    done = subprocess.run(
        [sys.executable, "-m", "app", "reconcile", "--config", str(stage.config), "--json",
         "--tokens-table", stage.names.tokens_table, "--points-table", stage.names.points_table],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["consistent"] is True


def test_finds_and_fixes_a_corrupted_owner_and_holder(stage, capsys):
    dynamodb = stage.client("dynamodb")
    key = token_key(stage, 5)
    owner = dynamodb.get_item(TableName=stage.names.tokens_table, Key={"token": {"S": key}})["Item"]["owner"]["S"]
    intruder = stage.chain.accounts[7]
    dynamodb.update_item(
        TableName=stage.names.tokens_table,
        Key={"token": {"S": key}},
        UpdateExpression="SET #o = :x",
        ExpressionAttributeNames={"#o": "owner"},
        ExpressionAttributeValues={":x": {"S": intruder}},
    )
    holder = stage.chain.accounts[2]
    dynamodb.update_item(
        TableName=stage.names.points_table,
        Key={"holder": {"S": holder}},
        UpdateExpression="ADD weightedSeconds :d SET lastChangeAt = :t",
        ExpressionAttributeValues={":d": {"N": "12345"}, ":t": {"N": "1700000000"}},
    )

    code, out, _ = reconcile(capsys, stage)
    assert code == 1
    assert f"token {key}: owner table {intruder}, chain {owner}" in out.splitlines()
    assert any(line.startswith(f"holder {holder}: weightedSeconds table ") for line in out.splitlines())

    assert inconsistencies_published(stage) >= 2

    code, out, _ = reconcile(capsys, stage, "--fix")
    assert code == 0, out
    assert f"fixed token {key}" in out and f"fixed holder {holder}" in out
    code, out, _ = reconcile(capsys, stage)
    assert code == 0, out
    item = dynamodb.get_item(TableName=stage.names.points_table, Key={"holder": {"S": holder}})["Item"]
    assert item["lastChangeAt"] == {"N": "1700000000"}  # not recomputed, so left alone


def test_fix_beside_a_consumer_applying_events(stage, capsys):
    """Corrupt two items, then let the consumer apply a new round while --fix runs up to the old head."""
    dynamodb = stage.client("dynamodb")
    old_head = stage.head
    moved = token_key(stage, 6)
    dynamodb.update_item(
        TableName=stage.names.tokens_table,
        Key={"token": {"S": moved}},
        UpdateExpression="SET acquiredAt = :x",
        ExpressionAttributeValues={":x": {"N": "1"}},
    )
    holder = stage.chain.accounts[3]
    dynamodb.update_item(
        TableName=stage.names.points_table,
        Key={"holder": {"S": holder}},
        UpdateExpression="ADD tokensHeld :d",
        ExpressionAttributeValues={":d": {"N": "3"}},
    )
    for sender, to, token_id in ((4, 1, 7), (3, 1, 8), (4, 2, 9)):  # the corrupted holder trades on
        stage.chain.transfer(sender, to, token_id)
    stage.chain.batch_mint(4, 100, 30)
    stage.chain.advance(HOUR)
    stage.head = stage.confirmed()
    stage.publish(stage.head)

    consumer = threading.Thread(target=stage.consume)
    consumer.start()
    try:
        code, out, err = reconcile(capsys, stage, "--fix", "--to-block", str(old_head))
    finally:
        consumer.join()
    assert code == 0, out + err
    assert f"fixed token {moved}" in out and f"fixed holder {holder}" in out
    code, out, _ = reconcile(capsys, stage)
    assert code == 0, out


def test_reorg_items_up_to_the_block_are_marked_reconciled(stage, capsys):
    dynamodb = stage.client("dynamodb")
    for block, status in ((3, "unreconciled"), (10**9, "unreconciled")):
        dynamodb.put_item(
            TableName=stage.names.monitor_table,
            Item={
                "id": {"S": f"reorg:31337:{block}"},
                "chainId": {"N": "31337"},
                "firstBlock": {"N": str(block)},
                "lastBlock": {"N": str(block)},
                "publishedHash": {"S": "0x" + "ab" * 32},
                "status": {"S": status},
            },
        )
    code, out, _ = reconcile(capsys, stage)
    assert code == 0, out
    assert "marked reorg:31337:3 reconciled" in out

    def status(block):
        key = {"id": {"S": f"reorg:31337:{block}"}}
        return dynamodb.get_item(TableName=stage.names.monitor_table, Key=key)["Item"]["status"]["S"]

    assert (status(3), status(10**9)) == ("reconciled", "unreconciled")


def test_a_pruned_log_history_is_refused_naming_the_node_and_range(stage, capsys, tmp_path):
    with pruned_node(stage.anvil.http_url) as url:
        config = yaml.safe_load(stage.config.read_text()) | {"http_rpc_url": url}
        path = tmp_path / "pruned.yaml"
        path.write_text(yaml.safe_dump(config))
        before = scan(stage)
        code = main(["reconcile", "--config", str(path), "--stage", stage.stage, "--fix"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(f"error: node {url}: token 31337:{stage.chain.address}:")
    assert f"in blocks {stage.chain.deploy_block}.." in err and "incomplete" in err
    assert scan(stage) == before


def test_bad_input_exits_2(stage, capsys):
    code, _, err = reconcile(capsys, stage, "--to-block", "99999999")
    assert code == 2 and err.startswith("error: --to-block: 99999999 is past the confirmed head")
    with pytest.raises(SystemExit) as exited:
        reconcile(capsys, stage, "--to-block", "x")
    assert exited.value.code == 2 and "--to-block: expected a block number, got 'x'" in capsys.readouterr().err
    code = main(["reconcile", "--config", "/nonexistent.yaml", "--stage", stage.stage])
    assert code == 2 and capsys.readouterr().err.startswith("error: --config /nonexistent.yaml: cannot read")


def test_a_config_without_rates_names_them(stage, capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("POINTS_PER_DAY")
    path = config_without_rates(stage, tmp_path)
    code = main(["reconcile", "--config", str(path), "--stage", stage.stage])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        f"error: points rate: none for 31337:{stage.chain.address} in POINTS_PER_DAY / DEFAULT_POINTS_PER_DAY, and no default"
    )


def test_without_rates_in_config_or_shell_the_functions_own_are_used(stage, capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("POINTS_PER_DAY")
    path = config_without_rates(stage, tmp_path)
    functions = stage.client("lambda")
    rates = json.dumps({f"31337:{stage.chain.address}": 10})
    functions.update_function_configuration(
        FunctionName=stage.names.function, Environment={"Variables": {"POINTS_PER_DAY": rates}}
    )
    try:
        code = main(["reconcile", "--config", str(path), "--stage", stage.stage])
    finally:
        functions.update_function_configuration(FunctionName=stage.names.function, Environment={"Variables": {}})
    assert code == 0, capsys.readouterr()


def inconsistencies_published(stage):
    end = datetime.now(UTC)
    points = stage.client("cloudwatch").get_metric_statistics(
        Namespace="NGUPoints/Reconciler",
        MetricName="Inconsistencies",
        Dimensions=[{"Name": "Stage", "Value": stage.stage}],
        StartTime=end - timedelta(minutes=10),
        EndTime=end + timedelta(minutes=1),
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    return max(p["Maximum"] for p in points)


def config_without_rates(stage, tmp_path):
    config = yaml.safe_load(stage.config.read_text())
    del config["points_per_day"]
    path = tmp_path / "norates.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def scan(stage):
    dynamodb = stage.client("dynamodb")
    return [
        sorted(json.dumps(i, sort_keys=True) for i in dynamodb.scan(TableName=table, ConsistentRead=True)["Items"])
        for table in (stage.names.tokens_table, stage.names.points_table)
    ]


@contextmanager
def pruned_node(upstream: str) -> Iterator[str]:
    """A JSON-RPC proxy that answers eth_getLogs with [] (as pruning providers do) and forwards the rest."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            calls = body if isinstance(body, list) else [body]
            if any(c["method"] == "eth_getLogs" for c in calls):
                answer = [{"jsonrpc": "2.0", "id": c["id"], "result": []} for c in calls]
                data = json.dumps(answer if isinstance(body, list) else answer[0]).encode()
            else:
                request = urllib.request.Request(
                    upstream, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=10) as response:
                    data = response.read()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
