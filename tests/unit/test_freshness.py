"""The consumer's freshness metric: per batch, apply time minus the block timestamp of the oldest
event it applied (`EndToEndLag`, seconds); duplicates and poison do not count."""

import json
import time

from app import processor
from tests.support.chain import KinesisBatch, LambdaContext, address, mint
from tests.unit.test_processor import emitted_metrics

A = address(0xA)


def test_lag_is_apply_time_minus_the_oldest_applied_block_time(ledger, capsys):
    processor.metrics.clear_metrics()  # nothing left over from another test's batch
    capsys.readouterr()
    now = int(time.time())
    batch = KinesisBatch()
    batch.add_event(mint(1, A, block=10, timestamp=now - 300))
    batch.add_event(mint(2, A, block=11, timestamp=now - 60, log_index=1))
    batch.add_raw(b"not json")
    before = time.time()
    processor.handler(batch.event(), LambdaContext())
    after = time.time()
    (lag,) = lag_values(capsys.readouterr().out)
    assert before - (now - 300) <= lag <= after - (now - 300)


def lag_values(out: str) -> list[float]:
    values = []
    for line in out.splitlines():
        blob = json.loads(line) if line.startswith("{") else {}
        if processor.LAG_METRIC in blob:
            value = blob[processor.LAG_METRIC]
            values += value if isinstance(value, list) else [value]
    return values


def test_a_batch_of_duplicates_reports_no_lag(ledger, capsys):
    event = mint(1, A, block=10, timestamp=0)
    first = KinesisBatch()
    first.add_event(event)
    processor.handler(first.event(), LambdaContext())
    capsys.readouterr()
    again = KinesisBatch()
    again.add_event(event)
    processor.handler(again.event(), LambdaContext())
    metrics = emitted_metrics(capsys)
    assert metrics["DuplicatesSkipped"] == 1 and processor.LAG_METRIC not in metrics
