"""Bad configuration, a node answering nonsense, a missing SSM parameter: one line naming it, non-zero
exit. An unreachable node is waited for, one warning line a try."""

from __future__ import annotations

import re
from dataclasses import fields

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.monitor.config import ConfigError, MonitorConfig, load_config, redact, resolve
from app.store import monitor_table_definition
from tests.monitor.harness import (
    Aws,
    MonitorProcess,
    base_config,
    free_port,
    run_monitor,
    wait_until,
    write_config,
)
from tests.support.rpc_proxy import RpcProxy, result

ADDRESS = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
VALID = {
    "stage": "staging",
    "chain_id": 31337,
    "rpc_url": "ws://127.0.0.1:8545",
    "confirmations": 2,
    "contracts": [{"address": ADDRESS, "start_block": 0}],
    "stream_name": "ngu-points-core-v5-events-staging-v5",
    "checkpoint_table": "ngu-points-core-v5-monitor-staging",
}


def with_(**changes):
    config = dict(VALID)
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    return config


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (with_(colour="blue"), "colour: unknown key"),
        (with_(confirmations=None), "confirmations: missing"),
        (with_(chain_id=None), "chain_id: missing"),
        (with_(contracts=[{"address": "0x1234", "start_block": 0}]), "contracts[0].address: not a 0x-prefixed"),
        (with_(contracts=[{"address": ADDRESS, "start": 0}]), "contracts[0].start: unknown key"),
        (
            # the EIP-55 form is 0x5FbDB2315678afecb367f032d93F642f64180aa3: one letter's case changed
            with_(contracts=[{"address": "0x5FbDB2315678afecb367f032d93F642f64180aA3", "start_block": 0}]),
            "contracts[0].address: mixed-case address fails its EIP-55 checksum",
        ),
        (with_(contracts=[]), "contracts: "),
        (with_(confirmations=-1), "confirmations: expected an integer >= 0, got -1"),
        (with_(confirmations="2"), "confirmations: expected an integer >= 0, got '2'"),
        (with_(confirmations=True), "confirmations: expected an integer >= 0, got True"),
        (with_(chain_id=0), "chain_id: expected an integer >= 1, got 0"),
        (with_(publish_concurrency=17), "publish_concurrency: expected an integer from 1 to 16, got 17"),
        (with_(poll_interval_seconds=0), "poll_interval_seconds: expected a number > 0, got 0"),
        (with_(poll_interval_seconds=float("nan")), "poll_interval_seconds: expected a number > 0, got nan"),
        (with_(stream_name="two words"), "stream_name: expected a name without spaces"),
        (with_(contracts="0xabc"), "contracts: expected a non-empty list of contracts"),
        (with_(contracts=["0x" + "1" * 40]), "contracts[0]: expected a mapping"),
        (with_(confirmatons=2), "confirmatons: unknown key (did you mean confirmations?)"),
        (
            with_(sink="dynamodb", tokens_table="t", points_table="p", points_per_day={"31337:0x" + "1" * 40: -5}),
            "points_per_day: '31337:0x1111111111111111111111111111111111111111': expected an integer >= 0",
        ),
        (with_(rpc_url="ftp://node"), "rpc_url: expected a ws://"),
        (with_(rpc_url=None), "rpc_url: give exactly one of rpc_url and rpc_url_parameter"),
        (with_(rpc_url_parameter="/x/RPC_URL"), "rpc_url: give exactly one of"),
        (with_(checkpoint_file="/tmp/x.json"), "checkpoint_table: give exactly one of"),
        (with_(sink="sqs"), "sink: expected kinesis or dynamodb, got 'sqs'"),
        (with_(quarantine_queue_url="queue"), "quarantine_queue_url: expected an http:// or https:// URL"),
        (with_(sink="dynamodb"), "tokens_table: missing (required by sink: dynamodb)"),
        (
            with_(sink="dynamodb", tokens_table="t", points_table="p", points_per_day={"31337:0x" + "1" * 40: 5}),
            "points_per_day: no rate for contracts[0]",
        ),
        (with_(stage="Prod!"), "stage: expected lower-case letters, digits and '-', got 'Prod!'"),
    ],
)
def test_a_bad_value_is_named_in_one_line(tmp_path, document, message):
    path = write_config(tmp_path / "monitor.yaml", **document)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    text = str(raised.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: {message}"), text


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from([*VALID, "contracts", "sink", "http_rpc_url", "colour"]), _VALUES, max_size=4),
    st.lists(st.dictionaries(st.sampled_from(["address", "start_block", "x"]), _VALUES, max_size=3), max_size=2),
)
def test_any_document_is_accepted_or_refused_in_one_line_naming_a_key(changes, contracts):
    """Hostile documents: never another exception, never a message that does not name a key."""
    document = {**VALID, **changes}
    if contracts:
        document["contracts"] = contracts
    try:
        MonitorConfig.parse(document)
    except ValueError as error:
        message = str(error)
        key = message.split(":", 1)[0]
        assert "\n" not in message
        assert re.split(r"[.\[]", key)[0] in {*document, *(f.name for f in fields(MonitorConfig))}, message


def test_the_valid_example_loads_and_lowercases_addresses(tmp_path):
    path = write_config(
        tmp_path / "monitor.yaml", **with_(contracts=[{"address": ADDRESS.upper().replace("0X", "0x")}])
    )
    config = load_config(path)
    assert config.contracts[0].address == ADDRESS and config.contracts[0].start_block == 0
    assert config.sink == "kinesis"


def test_yaml_that_is_not_a_mapping_is_refused(tmp_path):
    path = tmp_path / "monitor.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(path)


def test_redaction_hides_keys_in_path_query_and_user_info():
    assert redact("wss://eth.example:443/v2/SECRETKEY") == "wss://eth.example:443/…"
    assert redact("https://user:pw@node.example/?key=SECRET") == "https://node.example/…"
    assert redact("ws://127.0.0.1:8545") == "ws://127.0.0.1:8545"


@pytest.mark.integration
def test_cli_exits_2_naming_the_key(tmp_path, moto):
    path = write_config(tmp_path / "monitor.yaml", **with_(contracts=[{"address": "0xnope"}]))
    result = run_monitor(path, moto)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "contracts[0].address" in result.stderr


def test_checksummed_and_single_case_addresses_are_accepted(tmp_path):
    for address in ("0x5FbDB2315678afecb367f032d93F642f64180aa3", ADDRESS, ADDRESS.upper().replace("0X", "0x")):
        path = write_config(tmp_path / "monitor.yaml", **with_(contracts=[{"address": address, "start_block": 0}]))
        assert load_config(path).contracts[0].address == ADDRESS


@pytest.mark.integration
def test_an_unreachable_node_is_waited_for_one_line_a_try_and_sigterm_stops_it(tmp_path, moto):
    aws = Aws(moto).create()
    port = free_port()
    path = write_config(
        tmp_path / "monitor.yaml",
        **with_(
            rpc_url=f"ws://127.0.0.1:{port}",
            stream_name=aws.stream,
            checkpoint_table=aws.monitor_table,
            startup_backoff_cap_seconds=0.1,
        ),
    )
    monitor = MonitorProcess(path, moto, tmp_path / "monitor.log")
    wait_until(lambda: len(tries(monitor)) >= 3, 30, what="three start-up tries")
    assert monitor.stop() == 0, "a stop while waiting is a clean stop"
    [first, *_] = tries(monitor)
    assert first["level"] == "WARNING"
    assert first["message"].startswith(f"rpc_url: http://127.0.0.1:{port} unreachable (eth_chainId: ")


def tries(monitor: MonitorProcess) -> list[dict]:
    return [line for line in monitor.logs() if "unreachable" in str(line.get("message"))]


@pytest.mark.integration
def test_a_node_answering_a_non_hex_chain_id_is_named_in_one_line(tmp_path, moto, anvil):
    aws = Aws(moto).create()
    with RpcProxy(anvil.http_url) as proxy:
        proxy.rules.append(lambda call, _: result(call, "mainnet") if call.get("method") == "eth_chainId" else None)
        path = write_config(
            tmp_path / "monitor.yaml",
            **with_(http_rpc_url=proxy.url, stream_name=aws.stream, checkpoint_table=aws.monitor_table),
        )
        completed = run_monitor(path, moto, "--until-block", "1", timeout=60)
    assert completed.returncode == 1
    assert completed.stderr.strip() == (
        f"error: rpc_url: eth_chainId from {proxy.url} answered 'mainnet', not a hex quantity"
    )


@pytest.mark.integration
def test_a_missing_stream_is_named_in_one_line_while_reading_goes_on_and_nothing_is_checkpointed(
    tmp_path, moto, anvil, chain
):
    """The stream is checked beside the first reads (off the path to the first eth_getLogs): a
    missing one still stops the monitor with exit 2 and the checkpoint never moves."""
    aws = Aws(moto)
    aws.dynamodb.create_table(**monitor_table_definition(aws.monitor_table))
    path = write_config(tmp_path / "monitor.yaml", **base_config(anvil, aws, chain))
    result = run_monitor(path, moto, "--until-block", str(chain.head), timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: stream_name: cannot use stream {aws.stream} (ResourceNotFoundException)"
    assert aws.checkpoint() is None


@pytest.mark.integration
def test_a_missing_checkpoint_table_is_named_in_one_line(tmp_path, moto, anvil, chain):
    aws = Aws(moto)
    aws.kinesis.create_stream(StreamName=aws.stream, ShardCount=1)
    path = write_config(tmp_path / "monitor.yaml", **base_config(anvil, aws, chain))
    result = run_monitor(path, moto, "--until-block", str(chain.head), timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: checkpoint_table: cannot read {aws.monitor_table} (ResourceNotFoundException)"
    )


@pytest.mark.integration
def test_missing_ssm_parameter_is_named(tmp_path, moto):
    aws = Aws(moto)
    path = write_config(
        tmp_path / "monitor.yaml",
        **with_(rpc_url=None, rpc_url_parameter=f"/ngu-points-system-v2/{aws.stage}/RPC_URL"),
    )
    result = run_monitor(path, moto)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: rpc_url_parameter: SSM parameter /ngu-points-system-v2/{aws.stage}/RPC_URL not found"
    )


@pytest.mark.integration
def test_missing_stream_name_parameter_is_named(tmp_path, moto):
    aws = Aws(moto)
    path = write_config(tmp_path / "monitor.yaml", **with_(stage=aws.stage, stream_name=None))
    result = run_monitor(path, moto)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: stream_name: SSM parameter /ngu-points-system-v2/{aws.stage}/KINESIS_STREAM_NAME not found"
    )


@pytest.mark.integration
def test_ssm_supplies_the_secret_rpc_url_and_the_stream_name(moto):
    aws = Aws(moto)
    secret = "wss://node.example/v2/TOPSECRETKEY"
    aws.ssm.put_parameter(Name=f"/ngu-points-system-v2/{aws.stage}/RPC_URL", Value=secret, Type="SecureString")
    aws.ssm.put_parameter(
        Name=f"/ngu-points-system-v2/{aws.stage}/KINESIS_STREAM_NAME", Value=aws.stream, Type="String"
    )
    config = load_config_from(
        with_(
            stage=aws.stage,
            rpc_url=None,
            rpc_url_parameter=f"/ngu-points-system-v2/{aws.stage}/RPC_URL",
            stream_name=None,
        )
    )
    settings = resolve(config, aws.ssm)
    assert settings.rpc_url == secret
    assert settings.http_rpc_url == "https://node.example/v2/TOPSECRETKEY"
    assert settings.websocket_url == secret
    assert settings.stream_name == aws.stream
    assert "TOPSECRETKEY" not in repr(config)


DIRECT = {
    "sink": "dynamodb",
    "tokens_table": "tokens",
    "points_table": "points",
    "points_per_day": {f"31337:{ADDRESS}": 10},
    "stream_name": None,
}


def test_the_direct_sink_finds_its_quarantine_queue_in_ssm_or_names_the_key():
    import boto3
    from moto import mock_aws

    with mock_aws():
        ssm = boto3.client("ssm", region_name="us-east-1")
        config = load_config_from(with_(**DIRECT))
        with pytest.raises(ConfigError) as missing:
            resolve(config, ssm)
        assert str(missing.value) == (
            "quarantine_queue_url: SSM parameter /ngu-points-system-v2/staging/QUARANTINE_QUEUE_URL not found"
        )
        url = "https://sqs.us-east-1.amazonaws.com/123456789012/ngu-points-staging-quarantine"
        ssm.put_parameter(Name="/ngu-points-system-v2/staging/QUARANTINE_QUEUE_URL", Value=url, Type="String")
        assert resolve(config, ssm).quarantine_queue_url == url
        named = load_config_from(with_(**DIRECT, quarantine_queue_url=url.replace("staging", "other")))
        assert resolve(named, ssm).quarantine_queue_url == url.replace("staging", "other")
        assert resolve(load_config_from(VALID), ssm).quarantine_queue_url is None  # the Kinesis sink has none


def load_config_from(document):
    from app.monitor.config import MonitorConfig

    return MonitorConfig.parse(document)


def test_the_example_config_in_deploy_is_valid():
    from pathlib import Path

    config = load_config(Path(__file__).resolve().parents[2] / "deploy" / "monitor.example.yaml")
    assert config.rpc_url_parameter == "/ngu-points-system-v2/staging/RPC_URL"
    assert config.publish_concurrency == 4 and config.sink == "kinesis"
