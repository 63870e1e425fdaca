"""Every command, run as an operator runs it against an AWS that lacks something: one line, exit 1."""

import base64
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.local.services import ROOT, MotoServer
from tests.support.chain import address

A = address(0xA)
QUEUE, BUCKET, STREAM = "errors-quarantine", "errors-failures", "errors-stream"


@pytest.fixture(scope="module")
def moto():
    with MotoServer() as server:
        sqs = server.client("sqs")
        url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
        server.client("s3").create_bucket(Bucket=BUCKET)
        yield server, url


def python_m_app(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app", *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    # No profile, no instance metadata: only what each case gives.
    env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true")
    return env


TABLES = ("--tokens-table", "no-such-tokens", "--points-table", "no-such-points")
CASES = [
    (("points", A, *TABLES), "error: table no-such-points: not found (GetItem: ResourceNotFoundException)"),
    (("token", f"1:{A}:1", *TABLES), "error: table no-such-tokens: not found (GetItem: ResourceNotFoundException)"),
    (("holdings", A, *TABLES), "error: table no-such-tokens: not found (Query: ResourceNotFoundException)"),
    (("leaderboard", *TABLES), "error: table no-such-points: not found (Scan: ResourceNotFoundException)"),
    (
        ("redrive", "--stream", STREAM, "--bucket", "no-such-bucket"),
        "error: bucket no-such-bucket: not found (ListObjectsV2: NoSuchBucket)",
    ),
    (
        ("redrive", "--stream", STREAM, "--queue-url", "{endpoint}/123456789012/no-such-queue", "--dry-run"),
        "error: queue {endpoint}/123456789012/no-such-queue: not found (ReceiveMessage: ",
    ),
    # The queue holds a message, the stream is missing: named, and the message stays.
    (
        ("redrive", "--stream", "no-such-stream", "--queue-url", "{queue}"),
        "error: stream no-such-stream: not found (PutRecords: ResourceNotFoundException)",
    ),
]


@pytest.mark.integration
def test_a_missing_resource_is_one_line_naming_it(moto):
    server, _ = moto
    queue = server.client("sqs").create_queue(QueueName="errors-held")["QueueUrl"]
    body = {"reason": "test", "partitionKey": "pk", "data": base64.b64encode(b"x").decode()}
    server.client("sqs").send_message(QueueUrl=queue, MessageBody=json.dumps(body))
    env = {**base_env(), **server.env()}

    def run(case):
        argv, expected = case
        filled = [a.format(endpoint=server.endpoint, queue=queue) for a in argv]
        return python_m_app(env, *filled), expected.format(endpoint=server.endpoint)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run, CASES))
    for result, expected in results:
        assert result.returncode == 1, (expected, result.stderr)
        assert result.stderr.startswith(expected) and result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""
    attributes = server.client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "1"  # not lost, and visible again at once


@pytest.mark.integration
@pytest.mark.parametrize(
    ("drop", "expected"),
    [
        (("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"), "error: no AWS credentials: set AWS_ACCESS_KEY_ID and"),
        (("AWS_REGION", "AWS_DEFAULT_REGION"), "error: no AWS region: set AWS_REGION"),
    ],
)
def test_no_credentials_or_no_region_is_one_line_for_every_command(moto, drop, expected):
    server, queue = moto
    env = {k: v for k, v in {**base_env(), **server.env()}.items() if k not in drop}
    commands = [
        ("points", A, *TABLES),
        ("leaderboard", *TABLES),
        ("redrive", "--stream", STREAM, "--queue-url", queue, "--dry-run"),
        ("redrive", "--stream", STREAM, "--bucket", BUCKET),
    ]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda argv: python_m_app(env, *argv), commands))
    for result in results:
        assert result.returncode == 1 and result.stderr.startswith(expected), result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.integration
def test_a_dry_run_then_the_real_redrive_moves_every_message(moto):
    server, queue = moto
    sqs, kinesis = server.client("sqs"), server.client("kinesis")
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=STREAM, WaiterConfig={"Delay": 0.1})
    for i in range(12):
        body = {"reason": "test", "partitionKey": f"pk{i}", "data": base64.b64encode(f"d{i}".encode()).decode()}
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(body))
    env = {**base_env(), **server.env()}
    dry = python_m_app(env, "redrive", "--stream", STREAM, "--queue-url", queue, "--dry-run")
    assert (dry.returncode, dry.stdout) == (0, "would redrive 12 records from 12 sources\n"), dry.stderr
    real = python_m_app(env, "redrive", "--stream", STREAM, "--queue-url", queue)
    assert (real.returncode, real.stdout) == (0, "redrove 12 records from 12 sources\n"), real.stderr
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]) == (
        "0",
        "0",
    )
