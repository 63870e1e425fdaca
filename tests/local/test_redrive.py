"""Records that left the pipeline go back on the stream whole, and their sources are cleared."""

import base64
import json

import boto3
import pytest
from moto import mock_aws

from app.local.esm import EventSourceMapping, MappingSettings
from app.redrive import Redriver

STREAM, BUCKET = "redrive-stream", "redrive-failures"


@pytest.fixture
def aws():
    with mock_aws():
        kinesis = boto3.client("kinesis", region_name="us-east-1")
        kinesis.create_stream(StreamName=STREAM, ShardCount=1)
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue = sqs.create_queue(QueueName="redrive-quarantine")["QueueUrl"]
        yield kinesis, s3, sqs, queue


def stream_contents(kinesis):
    shard = kinesis.list_shards(StreamName=STREAM)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName=STREAM, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records = kinesis.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    return [(r["PartitionKey"], r["Data"]) for r in records]


def test_failed_batches_in_s3_are_put_back_in_order_and_moved_aside(aws):
    kinesis, s3, _, _ = aws
    for i in range(4):
        kinesis.put_record(StreamName=STREAM, Data=f"r{i}".encode(), PartitionKey=f"k{i % 2}")

    def always_fails(event, _):
        raise RuntimeError("down")

    esm = EventSourceMapping(
        kinesis=kinesis,
        s3=s3,
        stream_name=STREAM,
        handler=always_fails,
        settings=MappingSettings(maximum_retry_attempts=0, bisect_batch_on_function_error=False),
        failure_bucket=BUCKET,
    )
    esm.run_until_idle()
    assert esm.counters.records_sent_to_destination == 4

    report = Redriver(kinesis, STREAM).from_failure_bucket(s3, BUCKET)
    assert (report.sources, report.records) == (1, 4)
    assert stream_contents(kinesis)[4:] == [(f"k{i % 2}", f"r{i}".encode()) for i in range(4)]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert len(keys) == 1 and keys[0].startswith("redriven/aws/lambda/")


def test_dry_run_changes_nothing(aws):
    kinesis, _, sqs, queue = aws
    body = {"reason": "no points rate", "partitionKey": "pk", "data": base64.b64encode(b"x").decode()}
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(body))
    report = Redriver(kinesis, STREAM, dry_run=True).from_quarantine(sqs, queue)
    assert report.records == 1 and stream_contents(kinesis) == []


def test_quarantined_records_are_put_back_and_deleted(aws):
    kinesis, _, sqs, queue = aws
    for i in range(3):
        body = {
            "reason": "no points rate",
            "partitionKey": f"pk{i}",
            "data": base64.b64encode(f"d{i}".encode()).decode(),
        }
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(body))
    report = Redriver(kinesis, STREAM).from_quarantine(sqs, queue)
    assert report.records == 3
    assert sorted(stream_contents(kinesis)) == [(f"pk{i}", f"d{i}".encode()) for i in range(3)]
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
