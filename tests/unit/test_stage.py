"""Names by stage: an explicit flag, then the stage's SSM parameter, then the Lambda's environment."""

import argparse

import boto3
import pytest
from moto import mock_aws

from app.ops import OperatorError
from app.stage import resolve

PREFIX = "/ngu-points-system-v2/prod"


@pytest.fixture
def ssm():
    with mock_aws():
        client = boto3.client("ssm", region_name="us-east-1")
        client.put_parameter(Name=f"{PREFIX}/TOKENS_TABLE", Value="tokens-from-ssm", Type="String")
        yield client


def args(**values):
    return argparse.Namespace(**{"stage": None, "tokens_table": None} | values)


@pytest.mark.parametrize(
    ("given", "environment", "expected"),
    [
        ({"stage": "prod", "tokens_table": "explicit"}, "from-env", "explicit"),
        ({"stage": "prod"}, "from-env", "tokens-from-ssm"),
        ({}, "from-env", "from-env"),
    ],
)
def test_precedence(ssm, monkeypatch, given, environment, expected):
    monkeypatch.setenv("TOKENS_TABLE", environment)
    assert resolve(args(**given), "TOKENS_TABLE", "--tokens-table") == expected


def test_the_stage_is_read_once_per_command(ssm):
    namespace = args(stage="prod")
    assert resolve(namespace, "TOKENS_TABLE") == "tokens-from-ssm"
    ssm.put_parameter(Name=f"{PREFIX}/TOKENS_TABLE", Value="changed", Type="String", Overwrite=True)
    assert resolve(namespace, "TOKENS_TABLE") == "tokens-from-ssm"


@pytest.mark.parametrize(
    ("given", "key", "message", "code"),
    [
        (
            {"stage": "prod"},
            "KINESIS_STREAM_NAME",
            f"--stage prod: SSM parameter {PREFIX}/KINESIS_STREAM_NAME not found",
            1,
        ),
        ({"stage": "Prod"}, "TOKENS_TABLE", "--stage: expected a short lowercase name such as prod, got 'Prod'", 2),
        ({}, "KINESIS_STREAM_NAME", "--stream: missing (give it or --stage S)", 2),
    ],
)
def test_errors_name_what_is_missing(ssm, monkeypatch, given, key, message, code):
    monkeypatch.delenv("TOKENS_TABLE", raising=False)
    with pytest.raises(OperatorError) as raised:
        resolve(argparse.Namespace(**{"stage": None, "stream": None} | given), key, "--stream")
    assert str(raised.value).startswith(message) and raised.value.code == code
