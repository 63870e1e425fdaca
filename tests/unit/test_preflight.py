"""`python -m app preflight`: against moto, the live tables, parameters and alarm topic as the seed left
them or as they should be, compared with what the stack declares; exit codes and one-line errors."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from app import preflight
from app.__main__ import main
from app.declared_tables import declared_tables
from app.names import OPERATOR_PARAMETERS, STREAM_PARAMETER, StageNames

PROD = StageNames("prod")
NOW = datetime(2026, 11, 29, 21, 30, 5, tzinfo=UTC)


def client(service: str) -> Any:
    return boto3.client(service, region_name="us-east-1")


@functools.cache
def moto_image(architecture: str) -> str:
    """One of the images moto ships (the same ids in every mock)."""
    images = client("ec2").describe_images(Owners=["amazon"])["Images"]
    return next(i["ImageId"] for i in images if i.get("Architecture") == architecture)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto, with the stack file's monitor.amiId (a placeholder until set) naming one of moto's arm64 images."""
    with mock_aws():
        stack_file = preflight.read_stack_file
        image = moto_image("arm64")
        monkeypatch.setattr(preflight, "read_stack_file", lambda stage: replace(stack_file(stage), ami_id=image))
        yield


def create_table(
    name: str, hash_key: str, *, index: tuple[str, str] | None, aligned: bool, extra: dict[str, Any] | None = None
) -> None:
    """A live table: `aligned` as the stack declares it, else as the seed's runbook left it."""
    dynamodb = client("dynamodb")
    attributes = [hash_key, *([index[1]] if index else [])]
    definition: dict[str, Any] = {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": hash_key, "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in attributes],
    }
    if index:
        definition["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index[0],
                "KeySchema": [{"AttributeName": index[1], "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ]
    if aligned:
        definition |= {
            "SSESpecification": {"Enabled": True, "SSEType": "KMS"},
            "DeletionProtectionEnabled": True,
            "Tags": [
                {"Key": "Environment", "Value": "prod"},
                {"Key": "Service", "Value": "ngu-points-event-processor"},
            ],
        }
    dynamodb.create_table(**(definition | (extra or {})))
    if aligned:
        dynamodb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )


def prod_as_declared(*, parameter: str | None = PROD.stream, tokens: bool = True, points_key: str = "holder") -> None:
    if tokens:
        create_table(PROD.tokens_table, "token", index=("owner-index", "owner"), aligned=True)
    create_table(PROD.points_table, points_key, index=None, aligned=True)
    if parameter is not None:
        client("ssm").put_parameter(Name=PROD.parameter(STREAM_PARAMETER), Value=parameter, Type="String")


def run(capsys: pytest.CaptureFixture[str], stage: str = "prod") -> tuple[int, list[str], str]:
    code = preflight.check(stage, client, now=lambda: NOW)
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def lines_with(lines: list[str], effect: str) -> list[str]:
    return [line for line in lines if line.split()[0] == effect]


def test_tables_aligned_with_the_declaration_pass_and_are_backed_up(aws, capsys) -> None:
    prod_as_declared()
    code, lines, _ = run(capsys)
    assert code == 0, lines
    assert lines[-1].startswith("0 differences the first up would apply, 0 ") and "make preview STACK=prod" in lines[-1]
    backups = client("dynamodb").list_backups()["BackupSummaries"]
    assert sorted(b["TableName"] for b in backups) == [PROD.points_table, PROD.tokens_table]
    for backup in backups:
        assert backup["BackupName"] == f"{backup['TableName']}-preflight-2026-11-29-213005"
        assert f"backup {backup['BackupName']}: {backup['BackupArn']}" in lines
    assert any(
        line.startswith("topic arn:aws:sns:us-east-1:123456789012:ngu-points-alarms-prod: not found") for line in lines
    )


def test_the_seeds_tables_show_every_change_and_the_destructive_ones_fail(aws, capsys) -> None:
    stream = {"StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}}
    create_table(PROD.tokens_table, "token", index=("by-contract", "contract"), aligned=False, extra=stream)
    create_table(PROD.points_table, "holder", index=None, aligned=False)
    client("ssm").put_parameter(Name=PROD.parameter(STREAM_PARAMETER), Value="old-stream", Type="String")
    code, lines, _ = run(capsys)
    assert code == 1
    tokens = [line for line in lines if PROD.tokens_table in line and not line.startswith("backup")]
    text = "\n".join(tokens)
    for expected in (
        "update   table ngu-points-core-v5-tokens-prod: point-in-time recovery DISABLED -> ENABLED",
        "update   table ngu-points-core-v5-tokens-prod: server-side encryption",
        "update   table ngu-points-core-v5-tokens-prod: deletion protection False -> True",
        "update   table ngu-points-core-v5-tokens-prod: tag Environment: None -> 'prod'",
        "update   table ngu-points-core-v5-tokens-prod: index owner-index (on owner) is created",
        "destroy  table ngu-points-core-v5-tokens-prod: index by-contract is not declared",
        "destroy  table ngu-points-core-v5-tokens-prod: DynamoDB stream (NEW_IMAGE) is enabled",
    ):
        assert expected in text, text
    assert len(lines_with(lines, "destroy")) == 2
    assert f"update   parameter {PROD.parameter(STREAM_PARAMETER)}: value 'old-stream' -> '{PROD.stream}'" in "\n".join(
        lines
    )
    assert re.match(r"^\d+ differences the first up would apply, 2 that replace or destroy", lines[-1])
    assert len(client("dynamodb").list_backups()["BackupSummaries"]) == 2  # backed up all the same


def test_a_different_key_would_recreate_the_table_and_fails(aws, capsys) -> None:
    prod_as_declared(points_key="address")
    code, lines, _ = run(capsys)
    assert code == 1
    [replace] = lines_with(lines, "replace")
    assert PROD.points_table in replace and "recreated empty" in replace


def test_a_missing_table_or_parameter_to_adopt_blocks_the_import(aws, capsys) -> None:
    prod_as_declared(parameter=None, tokens=False)
    code, lines, _ = run(capsys)
    assert code == 1
    blocked = lines_with(lines, "blocked")
    assert any(PROD.tokens_table in line and "missing: the import fails" in line for line in blocked)
    assert any(PROD.parameter(STREAM_PARAMETER) in line and "nameParameter: create" in line for line in blocked)


def test_something_the_stack_creates_that_already_exists_blocks(aws, capsys) -> None:
    prod_as_declared()
    client("dynamodb").create_table(
        TableName=PROD.monitor_table,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
    )
    client("ssm").put_parameter(Name=PROD.parameter("TOKENS_TABLE"), Value="x", Type="String")
    code, lines, _ = run(capsys)
    assert code == 1
    blocked = "\n".join(lines_with(lines, "blocked"))
    assert f"table {PROD.monitor_table}: exists but tables.mode creates it" in blocked
    assert "TOKENS_TABLE: exists but the stack creates it: up fails with ParameterAlreadyExists" in blocked
    # Preflight reads; the only thing it writes is the backups of the adopted tables.
    assert {b["TableName"] for b in client("dynamodb").list_backups()["BackupSummaries"]} == {
        PROD.tokens_table,
        PROD.points_table,
    }


def test_staging_creates_its_parameter_so_an_existing_one_blocks(aws, capsys) -> None:
    staging = StageNames("staging")
    client("ssm").put_parameter(Name=staging.parameter(STREAM_PARAMETER), Value=staging.stream, Type="String")
    code, lines, _ = run(capsys, "staging")
    assert code == 1
    [blocked] = lines_with(lines, "blocked")
    assert "ParameterAlreadyExists (set stream.nameParameter: adopt)" in blocked
    assert not client("dynamodb").list_backups()["BackupSummaries"]  # staging adopts no table


def test_the_seeds_alarm_topic_and_its_subscribers_are_listed(aws, capsys) -> None:
    prod_as_declared()
    sns = client("sns")
    topic = sns.create_topic(Name=PROD.legacy_alarm_topic)["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="oncall@example.com")
    code, lines, _ = run(capsys)
    assert code == 0
    [line] = [line for line in lines if line.startswith(f"topic {topic}")]
    assert "not managed by the stack; 1 subscriptions (email:oncall@example.com)" in line


def test_the_declaration_compared_is_the_stacks() -> None:
    tables = declared_tables("prod", "adopt")
    assert (tables["tokens"].adopt, tables["points"].adopt, tables["monitor"].adopt) == (True, True, False)
    assert len(OPERATOR_PARAMETERS) == 11


@pytest.mark.parametrize(
    ("argv", "env", "code", "message"),
    [
        (["--stage", "Prod!"], {}, 2, "error: --stage stage: expected a short lowercase name"),
        (["--stage", "qa"], {}, 2, "error: --stage qa: no stack file Pulumi.qa.yaml"),
        (["--stage", "prod"], {"AWS_REGION": None, "AWS_DEFAULT_REGION": None}, 1, "error: no AWS region"),
        (["--stage", "prod"], {"AWS_REGION": "eu-west-1"}, 1, "error: AWS_REGION is eu-west-1 but"),
        (
            ["--stage", "prod"],
            {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_EC2_METADATA_DISABLED": "true"},
            1,
            "error: no AWS credentials",
        ),
    ],
)
def test_bad_input_and_missing_environment_are_one_line(monkeypatch, capsys, argv, env, code, message) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    for key, value in env.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    assert main(["preflight", *argv]) == code
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err


def test_an_aws_refusal_is_one_line_naming_the_resource(aws, capsys, monkeypatch) -> None:
    made = preflight.aws.client

    def denied(service: str) -> Any:
        real = made(service)  # the app's client, which remembers each request's parameters
        if service == "dynamodb":
            stubber = Stubber(real)
            stubber.add_client_error("describe_table", "AccessDeniedException", "not allowed")
            stubber.activate()
        return real

    monkeypatch.setattr(preflight.aws, "client", denied)
    assert main(["preflight", "--stage", "prod"]) == 1
    err = capsys.readouterr().err
    assert err == f"error: DescribeTable on table {PROD.tokens_table}: AccessDeniedException: not allowed\n"


def test_names_the_stack_creates_that_are_taken_block(aws, capsys) -> None:
    prod_as_declared()
    client("kinesis").create_stream(StreamName=PROD.stream, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    client("iam").create_role(RoleName=PROD.monitor_role, AssumeRolePolicyDocument="{}")
    key = client("kms").create_key()["KeyMetadata"]["KeyId"]
    client("kms").create_alias(AliasName=PROD.key_alias("events"), TargetKeyId=key)
    client("kms").create_alias(AliasName="alias/events-key", TargetKeyId=key)  # the old, stage-less alias
    client("s3").create_bucket(Bucket=PROD.failed_batches_bucket("123456789012"))
    client("sns").create_topic(Name=StageNames("staging").page_topic)  # another stage's: no conflict
    code, lines, _ = run(capsys)
    assert code == 1
    blocked = sorted(line.split(": exists")[0].split(None, 1)[1] for line in lines_with(lines, "blocked"))
    assert blocked == sorted(
        [
            f"stream {PROD.stream}",
            f"role {PROD.monitor_role}",
            f"kms alias {PROD.key_alias('events')}",
            f"bucket {PROD.failed_batches_bucket('123456789012')}",
        ]
    )


def test_the_monitor_image_must_exist_and_fit_the_architecture(capsys, monkeypatch) -> None:
    with mock_aws():
        prod_as_declared()
        # The committed placeholder: no such image.
        code, lines, _ = run(capsys)
        [blocked] = lines_with(lines, "blocked")
        assert code == 1 and "monitor.amiId ami-0000000000000a123: no such image" in blocked
        stack_file = preflight.read_stack_file
        image = moto_image("x86_64")
        monkeypatch.setattr(preflight, "read_stack_file", lambda stage: replace(stack_file(stage), ami_id=image))
        code, lines, _ = run(capsys)
        [blocked] = lines_with(lines, "blocked")
        assert code == 1 and "is x86_64, monitor.architecture is arm64" in blocked


def put_alarm(name: str, actions: list[str]) -> None:
    client("cloudwatch").put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/Kinesis",
        MetricName="GetRecords.IteratorAgeMilliseconds",
        Statistic="Maximum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=60000,
        ComparisonOperator="GreaterThanThreshold",
        AlarmActions=actions,
    )


def test_alarms_of_the_stacks_names_are_listed_as_taken_over_by_up(aws, capsys) -> None:
    prod_as_declared()
    seed_topic = f"arn:aws:sns:us-east-1:123456789012:{PROD.legacy_alarm_topic}"
    put_alarm(PROD.alarm("IteratorAge", seed_name=True), [seed_topic])  # as the seed's serverless.yml made it
    put_alarm(PROD.alarm("MonitorHeartbeat"), [])
    put_alarm(StageNames("staging").alarm("IteratorAge", seed_name=True), [seed_topic])  # another stage's
    put_alarm(f"{PROD.stream}-SomethingElse", [seed_topic])  # a name the stack does not create
    code, lines, _ = run(capsys)
    assert code == 0, lines  # a warning: up succeeds, nothing is lost (see docs/deploy.md)
    alarms = sorted(line for line in lines_with(lines, "update") if " alarm " in line)
    assert alarms == [
        f"  update   alarm {PROD.alarm('IteratorAge', seed_name=True)}: exists outside the stack (metric alarm, "
        f"notifies {PROD.legacy_alarm_topic}): up overwrites it with the stack's definition and routes, and the "
        "stack then owns it (a destroy deletes it)",
        f"  update   alarm {PROD.alarm('MonitorHeartbeat')}: exists outside the stack (metric alarm, notifies "
        "no action): up overwrites it with the stack's definition and routes, and the stack then owns it (a "
        "destroy deletes it)",
    ]
    assert lines[-1].startswith("2 differences the first up would apply, 0 that replace or destroy")


def test_no_alarm_of_the_stacks_names_no_alarm_line(aws, capsys) -> None:
    prod_as_declared()
    put_alarm("unrelated-alarm", [])
    code, lines, _ = run(capsys)
    assert code == 0 and not [line for line in lines if " alarm " in line], lines


def test_alarm_names_are_asked_at_most_100_a_call(aws) -> None:
    cloudwatch = client("cloudwatch")
    asked: list[int] = []
    cloudwatch.meta.events.register(
        "provide-client-params.cloudwatch.DescribeAlarms", lambda params, **_: asked.append(len(params["AlarmNames"]))
    )
    names = [f"alarm-{i:03}" for i in range(250)]
    put_alarm(names[-1], [])
    put_alarm(names[0], [])
    found = preflight.check_alarms(cloudwatch, names)
    assert asked == [100, 100, 50]
    assert [d.resource for d in found] == [f"alarm {names[0]}", f"alarm {names[-1]}"]
