"""`verify --stage S` against the local stack: green after a run, red when the mapping is disabled,
when a record lands in the quarantine, and when an alarm fires."""

from __future__ import annotations

import json

import pytest

from app.__main__ import main
from tests.local.stage import local_stage, trade

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stage():
    with local_stage() as stage:
        trade(stage.chain)
        stage.publish(stage.confirmed())
        stage.consume()
        yield stage


def verify(capsys, stage):
    code = main(["verify", "--stage", stage.stage, "--json"])
    report = json.loads(capsys.readouterr().out)
    return code, {c["name"]: (c["ok"], c["detail"]) for c in report["checks"]}


def test_green_after_a_run(stage, capsys):
    code, checks = verify(capsys, stage)
    assert code == 0, [c for c in checks.items() if not c[1][0]]
    assert list(checks) == ["stream", "mapping", "alarms", "quarantine", "failures", "tokens", "points", "checkpoint"]
    assert checks["stream"][1].endswith("ACTIVE, ON_DEMAND, 4 shards, retention 24 h")
    assert checks["tokens"][1].endswith("ACTIVE, 10 items")
    assert "0 blocks behind" in checks["checkpoint"][1]


def test_lines_are_green_ok_or_red_fail(stage, capsys):
    code = main(["verify", "--stage", stage.stage])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and len(lines) == 8 and all(line.startswith("ok   ") for line in lines)


def test_red_when_the_mapping_is_disabled(stage, capsys):
    functions = stage.client("lambda")
    functions.update_event_source_mapping(UUID=stage.mapping_uuid, Enabled=False)
    try:
        code, checks = verify(capsys, stage)
    finally:
        functions.update_event_source_mapping(UUID=stage.mapping_uuid, Enabled=True)
    assert code == 1
    assert checks["mapping"] == (False, f"{stage.mapping_uuid} Disabled, last processing result: no result yet")
    assert all(ok for name, (ok, _) in checks.items() if name != "mapping")
    code = main(["verify", "--stage", stage.stage])
    assert code == 0, capsys.readouterr().out


def test_red_when_a_record_lands_in_the_quarantine(stage, capsys):
    stage.client("kinesis").put_record(StreamName=stage.names.stream, Data=b'{"v": 1, "kind"', PartitionKey="junk")
    stage.consume()
    code, checks = verify(capsys, stage)
    assert code == 1
    ok, detail = checks["quarantine"]
    assert not ok and detail.startswith(f"1 messages in {stage.resources.queue_url}")
    # the redrive the line points to finds the queue and the bucket by the stage alone
    assert main(["redrive", "--stage", stage.stage, "--queue-url", "--dry-run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"dryRun": True, "records": 1, "sources": 1, "unreadable": 0}
    assert main(["redrive", "--stage", stage.stage, "--bucket", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"dryRun": False, "records": 0, "sources": 0, "unreadable": 0}
    stage.client("sqs").purge_queue(QueueUrl=stage.resources.queue_url)


def test_red_when_an_alarm_of_the_stage_fires(stage, capsys):
    cloudwatch = stage.client("cloudwatch")
    for name in (f"{stage.names.prefix}-OwnershipGaps", "another-stage-OwnershipGaps"):
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            MetricName="OwnershipGaps",
            Namespace="NGUPoints/Processor",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
        )
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="test")
    code, checks = verify(capsys, stage)
    cloudwatch.delete_alarms(AlarmNames=[f"{stage.names.prefix}-OwnershipGaps", "another-stage-OwnershipGaps"])
    assert code == 1
    assert checks["alarms"] == (False, f"1 in ALARM: {stage.names.prefix}-OwnershipGaps")


def test_a_stage_without_parameters_is_red_naming_them(stage, capsys):
    code = main(["verify", "--stage", "nosuch", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and [c["name"] for c in report["checks"] if c["ok"]] == ["alarms"]
    assert report["checks"][0]["detail"].startswith(
        "--stage nosuch: SSM parameter /ngu-points-system-v2/nosuch/KINESIS_STREAM_NAME not found"
    )


def test_a_bad_stage_name_is_bad_input(capsys):
    code = main(["verify", "--stage", "Prod!"])
    assert code == 2 and capsys.readouterr().err.startswith("error: --stage: expected a short lowercase name")


def test_reads_find_their_tables_by_stage_over_the_environment(stage, capsys, monkeypatch):
    monkeypatch.setenv("TOKENS_TABLE", "not-this-one")
    monkeypatch.setenv("POINTS_TABLE", "not-this-one")
    assert main(["leaderboard", "--stage", stage.stage, "--limit", "1", "--at", "4000000000"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["rank"] == 1 and row["holder"] in stage.chain.accounts
