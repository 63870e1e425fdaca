"""The local event source mapping honours Lambda's Kinesis semantics."""

import base64
import json
import threading
import time
from collections import defaultdict
from contextlib import contextmanager

import boto3
import pytest
import yaml
from moto import mock_aws

from app.errors import OperatorError
from app.local.esm import EventSourceMapping, MappingSettings
from app.local.resources import MappingConfig, create_stage_resources, register_mapping
from app.local.services import ROOT
from app.local.stack_settings import consumer_settings, mapping_config
from app.names import StageNames

STREAM, BUCKET = "esm-test-stream", "esm-test-failures"


@contextmanager
def stream(shards):
    with mock_aws():
        kinesis = boto3.client("kinesis", region_name="us-east-1")
        kinesis.create_stream(StreamName=STREAM, ShardCount=shards)
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield kinesis, s3


@pytest.fixture
def aws():
    with stream(shards=1) as clients:
        yield clients


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


# -- parallelization factor -------------------------------------------------------------------------


class Recorder:
    """A handler that records what it applied per partition key and how many batches overlapped."""

    def __init__(self, fail_once=None, pause=0.003):
        self.lock = threading.Lock()
        self.applied = defaultdict(list)
        self.in_flight = 0
        self.most_in_flight = 0
        self.batch_keys = []
        self.fail_once = set(fail_once or ())
        self.pause = pause

    def __call__(self, event, _context):
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(self.pause)  # long enough for other lanes' batches to overlap this one
            records = event["Records"]
            self.batch_keys.append({r["kinesis"]["partitionKey"] for r in records})
            for index, record in enumerate(records):
                key, n = record["kinesis"]["partitionKey"], numbers([record])[0]
                with self.lock:
                    if n in self.fail_once:
                        self.fail_once.discard(n)
                        failed = records[index:]
                        return {
                            "batchItemFailures": [{"itemIdentifier": r["kinesis"]["sequenceNumber"]} for r in failed]
                        }
                    self.applied[key].append(n)
            return {"batchItemFailures": []}
        finally:
            with self.lock:
                self.in_flight -= 1


def put_keyed(kinesis, keys, per_key):
    """Records n = 0, 1, 2, ... with keys round-robin: each key's numbers increase in stream order."""
    sent = defaultdict(list)
    for n in range(keys * per_key):
        key = f"token-{n % keys}"
        kinesis.put_record(StreamName=STREAM, Data=json.dumps({"n": n}).encode(), PartitionKey=key)
        sent[key].append(n)
    return sent


def test_parallelization_runs_up_to_n_batches_of_one_shard_at_once_and_keeps_each_keys_order(aws):
    sent = put_keyed(aws[0], keys=24, per_key=10)
    recorder = Recorder()
    with mapping(aws, recorder, batch_size=5, parallelization_factor=4) as esm:
        esm.run_until_idle()
    assert dict(recorder.applied) == dict(sent)  # every record once, each key in stream order
    assert 1 < recorder.most_in_flight <= 4
    assert esm.counters.max_batches_in_flight == recorder.most_in_flight
    # a key lives in one lane: no two batches in flight ever share a key
    lanes = {key: esm._lane_of(key) for key in sent}
    assert len(set(lanes.values())) == 4
    assert all(len({lanes[k] for k in keys}) == 1 for keys in recorder.batch_keys)


def test_a_failing_lane_retries_in_order_while_the_other_lanes_go_on(aws):
    sent = put_keyed(aws[0], keys=12, per_key=6)
    recorder = Recorder(fail_once={13, 40})
    with mapping(aws, recorder, batch_size=4, parallelization_factor=3) as esm:
        esm.run_until_idle()
    assert dict(recorder.applied) == dict(sent)
    assert esm.counters.records_delivered == 72 and destination(aws[1]) == []


def test_factor_one_is_one_batch_at_a_time_per_shard(aws):
    put_keyed(aws[0], keys=6, per_key=5)
    recorder = Recorder()
    with mapping(aws, recorder, batch_size=3, parallelization_factor=1) as esm:
        esm.run_until_idle()
    assert recorder.most_in_flight == 1


def test_shards_are_polled_in_parallel():
    with stream(shards=4) as clients:
        sent = put_keyed(clients[0], keys=40, per_key=3)
        recorder = Recorder(pause=0.02)
        with mapping(clients, recorder, batch_size=100) as esm:
            esm.run_until_idle()
    assert dict(recorder.applied) == dict(sent)
    assert recorder.most_in_flight > 1  # factor 1: only different shards can overlap


# -- settings and state from the registered mapping --------------------------------------------------


@pytest.fixture
def stage():
    with mock_aws():

        def client(service):
            return boto3.client(service, region_name="us-east-1")

        resources = create_stage_resources(client, StageNames("local"))
        yield client, resources


def test_settings_come_from_the_registered_mapping_and_its_function(stage):
    client, resources = stage
    config = MappingConfig(
        batch_size=7,
        maximum_retry_attempts=2,
        bisect_batch_on_error=False,
        parallelization_factor=3,
        maximum_record_age_seconds=600,
        function_timeout_seconds=12,
    )
    mapping_id = register_mapping(client, resources, config)
    esm = EventSourceMapping.from_registered(client, mapping_id, lambda event, context: None)
    assert esm.settings == MappingSettings(
        batch_size=7,
        maximum_retry_attempts=2,
        bisect_batch_on_function_error=False,
        maximum_record_age_seconds=600,
        starting_position="TRIM_HORIZON",
        function_timeout_seconds=12,
        report_batch_item_failures=True,
        parallelization_factor=3,
    )
    assert esm.stream_name == resources.names.stream and esm.failure_bucket == resources.bucket
    assert esm.mapping_id == mapping_id
    assert all(len(cursor.lanes) == 3 for cursor in esm.cursors)
    esm.close()


def test_a_disabled_mapping_is_not_polled_until_enabled_again(stage):
    client, resources = stage
    mapping_id = register_mapping(client, resources, MappingConfig(batch_size=10))
    seen = []
    esm = EventSourceMapping.from_registered(client, mapping_id, lambda event, _: seen.extend(event["Records"]))
    client("kinesis").put_record(StreamName=resources.names.stream, Data=b'{"n": 1}', PartitionKey="k")
    client("lambda").update_event_source_mapping(UUID=mapping_id, Enabled=False)
    esm.run_until_idle()
    assert seen == [] and esm.counters.records_fetched == 0
    client("lambda").update_event_source_mapping(UUID=mapping_id, Enabled=True)
    esm.run_until_idle()
    assert len(seen) == 1
    esm.close()


def test_the_local_stack_takes_the_mapping_settings_from_the_staging_stack_file():
    consumer = consumer_settings()
    document = yaml.safe_load((ROOT / "Pulumi.staging.yaml").read_text())["config"]
    section = document["ngu-points-event-processor:consumer"]
    assert mapping_config(consumer) == MappingConfig(
        batch_size=section["batchSize"],
        maximum_retry_attempts=section["maximumRetryAttempts"],
        bisect_batch_on_error=section["bisectBatchOnError"],
        parallelization_factor=section["parallelizationFactor"],
        maximum_record_age_seconds=section["maximumRecordAgeSeconds"],
        starting_position=section["startingPosition"],
        function_timeout_seconds=section["timeoutSeconds"],
    )


@pytest.mark.parametrize(
    ("change", "key"),
    [({"batchSize": 0}, "batchSize"), ({"parallelizationFactor": 11}, "parallelizationFactor")],
)
def test_a_bad_consumer_setting_is_named(tmp_path, change, key):
    document = yaml.safe_load((ROOT / "Pulumi.staging.yaml").read_text())
    document["config"]["ngu-points-event-processor:consumer"].update(change)
    (tmp_path / "Pulumi.staging.yaml").write_text(yaml.safe_dump(document))
    with pytest.raises(OperatorError) as error:
        consumer_settings(tmp_path / "Pulumi.staging.yaml")
    message = str(error.value)
    assert message.startswith("Pulumi.staging.yaml: ") and key in message and "\n" not in message
