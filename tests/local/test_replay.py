"""`replay --stage S --since T` against the local stack: re-applying a window through the consumer's
own code leaves the tables unchanged (every event a duplicate) and quarantines poison again."""

from __future__ import annotations

import json
import time

import pytest

from app.__main__ import main
from tests.local.stage import local_stage, trade
from tests.local.test_reconcile import scan

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stage():
    with local_stage() as stage:
        stage.started = time.time() - 1
        trade(stage.chain)
        stage.publish(stage.confirmed())
        stage.client("kinesis").put_record(StreamName=stage.names.stream, Data=b'{"v": 1', PartitionKey="junk")
        stage.consume()
        stage.client("sqs").purge_queue(QueueUrl=stage.resources.queue_url)
        yield stage


def replay(capsys, stage, *argv):
    code = main(["replay", "--stage", stage.stage, *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_replaying_the_window_leaves_the_tables_unchanged(stage, capsys):
    before = scan(stage)
    code, out, _ = replay(capsys, stage, "--since", str(stage.started), "--json")
    assert code == 0
    # 10 mints, 3 transfers and a burn, all already applied; the junk record is poison again
    assert json.loads(out) == {
        "shards": 4,
        "records": 15,
        "applied": 0,
        "duplicates": 14,
        "poison": 1,
        "gaps": 0,
        "failed": 0,
    }
    assert scan(stage) == before
    waiting = stage.client("sqs").get_queue_attributes(
        QueueUrl=stage.resources.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"]
    assert waiting == "1"


def test_a_window_before_any_record_replays_nothing(stage, capsys):
    code, out, _ = replay(capsys, stage, "--since", str(stage.started - 3600), "--until", str(stage.started - 1800))
    assert code == 0 and out.strip() == (
        "replayed 0 records from 4 shards: 0 applied, 0 duplicates, 0 poison, 0 failed"
    )


def test_replay_restores_events_missing_from_the_tables(stage, capsys):
    dynamodb = stage.client("dynamodb")
    before = scan(stage)
    key = f"31337:{stage.chain.address}:6"
    item = dynamodb.get_item(TableName=stage.names.tokens_table, Key={"token": {"S": key}})["Item"]
    owner = item["owner"]["S"]
    # Undo the mint of token 6 by hand, as if its record had never been applied.
    dynamodb.delete_item(TableName=stage.names.tokens_table, Key={"token": {"S": key}})
    dynamodb.update_item(
        TableName=stage.names.points_table,
        Key={"holder": {"S": owner}},
        UpdateExpression="ADD weightedHeld :w, weightedSinceSum :s, tokensHeld :t",
        ExpressionAttributeValues={
            ":w": {"N": "-10"},
            ":s": {"N": str(-10 * int(item["acquiredAt"]["N"]))},
            ":t": {"N": "-1"},
        },
    )
    code, out, _ = replay(capsys, stage, "--since", "1h", "--json")
    assert code == 0 and json.loads(out)["applied"] == 1
    assert scan(stage) == before


@pytest.mark.parametrize("since", ["yesterday", "-5"])
def test_a_bad_time_is_bad_input(capsys, since):
    with pytest.raises(SystemExit) as exited:
        main(["replay", "--stage", "local", "--since", since])
    assert exited.value.code == 2
    assert "--since: expected ISO 8601, unix seconds or an age like 2h" in capsys.readouterr().err


def test_a_stream_that_is_not_there_is_one_line(stage, capsys):
    code, _, err = replay(capsys, stage, "--stream", "nosuch", "--since", "1h")
    assert (
        code == 1
        and err.startswith("error: stream nosuch: not found (ListShards: ResourceNotFoundException)")
        and err.count("\n") == 1
    )
