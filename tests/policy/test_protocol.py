"""The real pack, started as the Pulumi CLI starts it, driven over its Analyzer gRPC protocol.

One pack process per stack serves the whole module; each test configures it afresh, as the engine does
before every run. Synthetic stacks stand in for the recorded programs (see test_real_stacks.py).
"""

import dataclasses
import json
import os
import sys
import types
from pathlib import Path

import psutil
import pytest

from tests.policy import synthetic
from tests.policy.mutations import breakages
from tests.policy.synthetic import mutate
from tools import policy_check
from tools.policy_check import PolicyCheckError, PolicyPack, check, engine_server

pytestmark = pytest.mark.integration

CONFIG = policy_check.PACK_DIR / "config"


def assert_gone(pid: int) -> None:
    assert not psutil.pid_exists(pid), f"policy pack process {pid} is still running"


@pytest.fixture(scope="module")
def packs():
    """Started packs by stack name, each stopped (and proven gone) when the module is done."""
    started: dict[str, PolicyPack] = {}
    with engine_server() as (address, _engine):
        try:
            yield lambda stack: started.get(stack) or started.setdefault(stack, _start(address, stack))
        finally:
            for pack in started.values():
                pid = pack.process.pid
                pack.__exit__(None, None, None)
                assert_gone(pid)


def _start(address: str, stack: str) -> PolicyPack:
    config = policy_check.stack_config(stack)
    return PolicyPack(address, stack=stack, project=policy_check.project_name(), config=config).__enter__()


def run(packs, resources, *, stack="prod", config=None):
    return check(resources, stack=stack, policy_config=config or CONFIG / f"{stack}.json", pack=packs(stack))


def test_pack_describes_every_policy_with_its_config_schema(packs):
    info = packs("prod").info()
    assert info.name == "ngu-points-guardrails"
    by_name = {p.name: p for p in info.policies}
    assert len(by_name) == 22
    assert all(p.enforcementLevel == policy_check.analyzer_pb2.MANDATORY for p in info.policies)
    thresholds = json.loads(policy_check.json_format.MessageToJson(by_name["alarm-thresholds"].configSchema))
    assert thresholds["properties"]["maxIteratorAgeSeconds"]["default"] == 3600


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_compliant_stack_has_no_violation(packs, stack):
    report = run(packs, synthetic.build(stack), stack=stack)
    assert report.violations == []


PROD_CONFIG = json.loads((CONFIG / "prod.json").read_text())
BREAKAGES = breakages(
    PROD_CONFIG["alarm-thresholds"]["maxIteratorAgeSeconds"],
    PROD_CONFIG["event-source-mapping-record-age"]["minRetentionMarginSeconds"],
)


def assert_exactly(report, breakage, urn, resources):
    """The breakage's own violation, plus only what the program's values make it cause (none here)."""
    expected = {(breakage.policy, urn)} | breakage.consequences(resources)
    assert {(v.policy, v.urn) for v in report.violations} == expected
    assert len(report.violations) == len(expected)
    assert all(v.level == "mandatory" for v in report.violations)
    [violation] = [v for v in report.violations if v.policy == breakage.policy]
    assert breakage.fragment in violation.message


@pytest.mark.parametrize("case", list(BREAKAGES))
def test_breakage_yields_exactly_the_matching_violation(packs, case):
    resources, urn = BREAKAGES[case].apply(synthetic.build("prod"))
    assert BREAKAGES[case].consequences(resources) == set()
    assert_exactly(run(packs, resources), BREAKAGES[case], urn, resources)


def test_pack_started_as_prod_rejects_staging_thresholds(packs):
    report = run(packs, synthetic.build("staging"), stack="prod")
    rejected = {(v.policy, v.urn.rsplit("::", 1)[1]) for v in report.mandatory}
    assert ("alarm-thresholds", "alarms-error-rate") in rejected
    assert ("lambda-log-group-retention", "consumer-logs") in rejected


def test_enforcement_levels_from_the_config_file_apply(packs, tmp_path):
    config = tmp_path / "levels.json"
    config.write_text(json.dumps({"all": "advisory", "lambda-tracing-active": "disabled"}))
    resources = mutate(synthetic.build("prod"), "events-stream", lambda i: i.update(retentionPeriod=12))
    resources = mutate(resources, "consumer-function", lambda i: i.update(tracingConfig={"mode": "PassThrough"}))
    report = run(packs, resources, config=config)
    assert [(v.policy, v.level) for v in report.violations] == [("kinesis-stream-retention", "advisory")]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            {"alarm-thresholds": {"maxErrorRatePercent": "five"}},
            "alarm-thresholds: maxErrorRatePercent: 'five' is not of type 'number'",
        ),
        ({"alarm-tresholds": {}}, "no such policy in the pack: alarm-tresholds"),
        ({"lambda-tracing-active": "strict"}, "'strict' is not one of advisory, mandatory, remediate, disabled"),
    ],
)
def test_bad_policy_config_is_one_clear_error(packs, tmp_path, config, expected):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(config))
    with pytest.raises(PolicyCheckError, match=r"policy config .*bad\.json") as error:
        run(packs, synthetic.build("prod"), config=path)
    assert expected in str(error.value)


def _write(resources, path: Path) -> Path:
    path.write_text(json.dumps({"resources": [dataclasses.asdict(r) for r in resources], "outputs": {}}))
    return path


def test_cli_prints_violations_like_pulumi_and_fails_on_mandatory(tmp_path, capsys):
    resources = mutate(synthetic.build("prod"), "events-stream", lambda i: i.update(retentionPeriod=12))
    status = policy_check.main(["--stack", "prod", "--resources", str(_write(resources, tmp_path / "r.json"))])
    out = capsys.readouterr().out
    assert status == 1
    assert "ngu-points-guardrails@v1.0.0 (local: policy): failed" in out
    assert "- [mandatory]  kinesis-stream-retention  (aws:kinesis/stream:Stream: events-stream)" in out
    assert "retentionPeriod is 12 h; this stack requires at least 24 h" in out
    assert "1 mandatory, 0 advisory violation(s)" in out


def test_cli_passes_a_compliant_stack_with_an_interpreter_given_relative_to_here(tmp_path, capsys):
    python = os.path.relpath(sys.executable)  # the pack runs in policy/, where this path would not hold
    resources = _write(synthetic.build("staging"), tmp_path / "r.json")
    status = policy_check.main(["--stack", "staging", "--resources", str(resources), "--python", python])
    assert status == 0
    assert "0 mandatory, 0 advisory violation(s)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--stack", "dev", "--resources", "x.json"], "--stack dev: no policy config"),
        (["--stack", "prod", "--resources", "/nonexistent/r.json"], "--resources /nonexistent/r.json: No such file"),
        (["--stack", "prod", "--python", "no/such/python"], "--python no/such/python: no such interpreter"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(argv, expected, capsys):
    assert policy_check.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err


def test_pack_process_is_stopped_even_when_the_run_fails():
    with (
        engine_server() as (address, _),
        pytest.raises(RuntimeError, match="boom"),
        PolicyPack(address, stack="prod", project="p", config={}) as pack,
    ):
        pid = pack.process.pid
        assert psutil.pid_exists(pid)
        raise RuntimeError("boom")
    assert_gone(pid)


def test_pack_that_cannot_start_is_reported_and_leaves_nothing(tmp_path):
    (tmp_path / "__main__.py").write_text("raise SystemExit('broken pack')\n")
    children_before = {p.pid for p in psutil.Process(os.getpid()).children(recursive=True)}
    with (
        engine_server() as (address, _),
        pytest.raises(PolicyCheckError, match=r"did not start.*broken pack"),
        PolicyPack(address, stack="prod", project="p", config={}, pack_dir=tmp_path),
    ):
        pass
    children_after = {p.pid for p in psutil.Process(os.getpid()).children(recursive=True)}
    assert children_after <= children_before


def _record_stack_module(monkeypatch, module):
    monkeypatch.setitem(sys.modules, "tools.record_stack", module)


def test_cli_without_the_recorder_says_so(monkeypatch, capsys):
    _record_stack_module(monkeypatch, None)  # as if tools/record_stack.py were absent
    assert policy_check.main(["--stack", "prod"]) == 2
    assert "tools/record_stack.py is missing" in capsys.readouterr().err


def test_cli_reports_a_failing_program_in_one_line(monkeypatch, capsys):
    def record_stack(stack, config=None):
        raise ValueError("ngu-points-event-processor:consumer.timeoutSeconds must be positive")

    _record_stack_module(monkeypatch, types.SimpleNamespace(record_stack=record_stack))
    assert policy_check.main(["--stack", "prod"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "policy_check: --stack prod: the program failed under mocks: "
        "ngu-points-event-processor:consumer.timeoutSeconds must be positive"
    )
