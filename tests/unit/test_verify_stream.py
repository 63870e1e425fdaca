"""verify's stream line is red when the stream differs from what the stage's stack file declares."""

import argparse

import boto3
import pytest
from moto import mock_aws

from app import verify
from app.local.resources import publish_parameters
from app.names import STREAM_PARAMETER, StageNames
from app.stage import parameters

NAMES = StageNames("staging")  # Pulumi.staging.yaml: ON_DEMAND, retention 24 h


@pytest.fixture
def stage():
    with mock_aws():
        kinesis = boto3.client("kinesis", region_name="us-east-1")
        kinesis.create_stream(StreamName=NAMES.stream, StreamModeDetails={"StreamMode": "ON_DEMAND"})
        publish_parameters(boto3.client("ssm", region_name="us-east-1"), NAMES, {STREAM_PARAMETER: NAMES.stream})
        yield kinesis, parameters(argparse.Namespace(stage=NAMES.stage))


def test_as_declared_is_green(stage):
    _, names = stage
    assert verify.stream(names, argparse.Namespace()).endswith("ACTIVE, ON_DEMAND, 4 shards, retention 24 h")


def test_a_retention_that_drifted_is_red(stage):
    kinesis, names = stage
    kinesis.increase_stream_retention_period(StreamName=NAMES.stream, RetentionPeriodHours=48)
    with pytest.raises(verify.Red) as red:
        verify.stream(names, argparse.Namespace())
    assert str(red.value).endswith("retention 48 h; Pulumi.staging.yaml says ON_DEMAND, retention 24 h")
