"""The local event source mapping honours Lambda's Kinesis semantics."""

import base64
import json

import boto3
import pytest
from moto import mock_aws

from app.local.esm import EventSourceMapping, MappingSettings

STREAM, BUCKET = "esm-test-stream", "esm-test-failures"


@pytest.fixture
def aws():
    with mock_aws():
        kinesis = boto3.client("kinesis", region_name="us-east-1")
        kinesis.create_stream(StreamName=STREAM, ShardCount=1)
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield kinesis, s3


def put(kinesis, count, start=0):
    for i in range(start, start + count):
        kinesis.put_record(StreamName=STREAM, Data=json.dumps({"n": i}).encode(), PartitionKey="k")


def numbers(records):
    return [json.loads(base64.b64decode(r["kinesis"]["data"]))["n"] for r in records]


def destination(s3):
    objects = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    documents = [json.loads(s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()) for o in objects]
    return [(d["requestContext"]["condition"], numbers(json.loads(d["payload"])["Records"])) for d in documents]


def mapping(aws, handler, **settings):
    kinesis, s3 = aws
    return EventSourceMapping(
        kinesis=kinesis,
        s3=s3,
        stream_name=STREAM,
        handler=handler,
        settings=MappingSettings(**settings),
        failure_bucket=BUCKET,
    )


def test_batches_respect_the_batch_size_and_deliver_each_record_once_in_order(aws):
    seen = []

    def handler(event, context):
        assert context.get_remaining_time_in_millis() > 0
        seen.append(numbers(event["Records"]))
        return {"batchItemFailures": []}

    put(aws[0], 25)
    mapping(aws, handler, batch_size=10).run_until_idle()
    assert [len(b) for b in seen] == [10, 10, 5]
    assert [n for batch in seen for n in batch] == list(range(25))


def test_partial_failure_resumes_from_the_lowest_failed_record(aws):
    calls = []

    def handler(event, _):
        batch = numbers(event["Records"])
        calls.append(batch)
        if 4 in batch and len(calls) < 3:
            at = batch.index(4)
            return {
                "batchItemFailures": [{"itemIdentifier": r["kinesis"]["sequenceNumber"]} for r in event["Records"][at:]]
            }
        return {"batchItemFailures": []}

    put(aws[0], 8)
    esm = mapping(aws, handler, batch_size=8)
    esm.run_until_idle()
    assert calls == [list(range(8)), [4, 5, 6, 7], [4, 5, 6, 7]]
    assert esm.counters.records_delivered == 8 and destination(aws[1]) == []


def test_a_record_failing_past_the_retries_goes_to_s3_with_its_full_body_and_the_shard_moves_on(aws):
    calls = []

    def handler(event, _):
        records = event["Records"]
        calls.append(numbers(records))
        bad = [r for r in records if numbers([r]) == [2]]
        if bad:
            at = records.index(bad[0])
            return {"batchItemFailures": [{"itemIdentifier": r["kinesis"]["sequenceNumber"]} for r in records[at:]]}
        return {"batchItemFailures": []}

    put(aws[0], 5)
    esm = mapping(aws, handler, batch_size=5, maximum_retry_attempts=2)
    esm.run_until_idle()
    # first try + 2 retries, then the failed part of the batch is sent away, then nothing is left
    assert calls == [[0, 1, 2, 3, 4], [2, 3, 4], [2, 3, 4]]
    assert destination(aws[1]) == [("RetryAttemptsExhausted", [2, 3, 4])]


def test_function_errors_are_bisected_down_to_the_poisoned_record(aws):
    calls = []

    def handler(event, _):
        batch = numbers(event["Records"])
        calls.append(batch)
        if 5 in batch:
            raise RuntimeError("boom")
        return {"batchItemFailures": []}

    put(aws[0], 8)
    esm = mapping(aws, handler, batch_size=8, maximum_retry_attempts=1)
    esm.run_until_idle()
    delivered = [n for batch in calls for n in batch if 5 not in batch]
    assert sorted(set(delivered)) == [0, 1, 2, 3, 4, 6, 7]
    assert destination(aws[1]) == [("FunctionError: boom", [5])]
    assert esm.counters.function_errors >= 3


def test_records_older_than_the_maximum_age_are_sent_away_not_dropped(aws):
    def handler(event, _):
        raise AssertionError("expired records must not be delivered")

    put(aws[0], 3)
    esm = mapping(aws, handler, maximum_record_age_seconds=-60)
    esm.run_until_idle()
    assert destination(aws[1]) == [("RecordAgeExceeded", [0, 1, 2])]
