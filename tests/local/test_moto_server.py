"""The local moto server keeps every record under concurrent PutRecords (stock moto loses some)."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from app.local.services import MotoServer

WRITERS, CALLS, BATCH = 4, 5, 500


@pytest.mark.integration
def test_concurrent_put_records_to_one_shard_lose_nothing():
    with MotoServer() as moto:
        kinesis = moto.client("kinesis")
        kinesis.create_stream(StreamName="race", ShardCount=1)
        kinesis.get_waiter("stream_exists").wait(StreamName="race", WaiterConfig={"Delay": 0.1})

        def writer(w: int) -> None:
            client = moto.client("kinesis")
            for c in range(CALLS):
                records = [{"Data": f"{w}:{c}:{i}".encode(), "PartitionKey": f"k{i}"} for i in range(BATCH)]
                assert client.put_records(StreamName="race", Records=records)["FailedRecordCount"] == 0

        with ThreadPoolExecutor(WRITERS) as pool:
            list(pool.map(writer, range(WRITERS)))

        shard = kinesis.list_shards(StreamName="race")["Shards"][0]["ShardId"]
        iterator = kinesis.get_shard_iterator(StreamName="race", ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
            "ShardIterator"
        ]
        seen, sequences = set(), set()
        while True:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            if not page["Records"]:
                break
            seen |= {r["Data"] for r in page["Records"]}
            sequences |= {r["SequenceNumber"] for r in page["Records"]}
            iterator = page["NextShardIterator"]
        assert len(seen) == len(sequences) == WRITERS * CALLS * BATCH
