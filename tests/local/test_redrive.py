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


def quarantine(sqs, queue, count):
    for i in range(count):
        body = {
            "reason": "no points rate",
            "partitionKey": f"pk{i}",
            "data": base64.b64encode(f"d{i}".encode()).decode(),
        }
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(body))


def visible(sqs, queue):
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_a_dry_run_counts_every_message_and_leaves_them_all_visible_for_the_real_run(aws):
    kinesis, _, sqs, queue = aws
    quarantine(sqs, queue, 25)
    report = Redriver(kinesis, STREAM, dry_run=True).from_quarantine(sqs, queue)
    assert (report.sources, report.records) == (25, 25)
    assert visible(sqs, queue) == (25, 0) and stream_contents(kinesis) == []

    report = Redriver(kinesis, STREAM).from_quarantine(sqs, queue)
    assert report.records == 25
    assert sorted(stream_contents(kinesis)) == sorted((f"pk{i}", f"d{i}".encode()) for i in range(25))
    assert visible(sqs, queue) == (0, 0)


def test_a_message_is_deleted_only_after_kinesis_acknowledged_its_record(aws):
    kinesis, _, sqs, queue = aws
    quarantine(sqs, queue, 3)
    kinesis.delete_stream(StreamName=STREAM)
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException):
        Redriver(kinesis, STREAM).from_quarantine(sqs, queue)
    assert visible(sqs, queue) == (3, 0)  # kept, and visible again for the run after the fix


def test_unreadable_messages_and_objects_are_counted_and_left_in_place(aws):
    kinesis, s3, sqs, queue = aws
    quarantine(sqs, queue, 2)
    sqs.send_message(QueueUrl=queue, MessageBody="not json")
    s3.put_object(Bucket=BUCKET, Key="aws/lambda/broken.json", Body=b'{"payload": null}')
    report = Redriver(kinesis, STREAM).from_quarantine(sqs, queue)
    assert (report.records, report.unreadable) == (2, 1)
    assert report.summary(dry_run=False) == "redrove 2 records from 2 sources; 1 unreadable sources left in place"
    assert visible(sqs, queue) == (1, 0)
    report = Redriver(kinesis, STREAM).from_failure_bucket(s3, BUCKET)
    assert (report.records, report.unreadable) == (0, 1)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]] == ["aws/lambda/broken.json"]
