"""Laws of the ledger under Kinesis-style delivery, against a reference model written the simplest way.

Histories over up to 20 tokens (two contracts, two rates) and 8 holders are delivered through the
real handler in per-token order, interleaved arbitrarily across tokens, with duplicates and
re-delivered suffixes. The tables must equal what the history alone implies, and points at any
later time must equal the brute-force integral of holdings x rate.

The handler commits groups of events; the law also draws the group limits (down to one event,
or three items) and injects faults before a commit (refused, conflicted), after it (committed, the
response lost) and stale reads (every lock lost), re-delivering what the handler reports failed as
Kinesis does. The tables must still equal the model, and the metrics must account for every record.
"""

import contextlib
import io
import json
from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import processor
from app.events import ZERO_ADDRESS, ChainEvent
from tests.support.aws import POINTS, TOKENS, moto_ledger
from tests.support.chain import CHAIN_ID, KinesisBatch, LambdaContext, address, transfer
from tests.support.emf import metric_totals

CONTRACTS = {address(0xC1): 10, address(0xC2): 3}
HOLDERS = [address(0x100 + i) for i in range(8)]


@dataclass
class History:
    events: list[ChainEvent] = field(default_factory=list)
    rates: dict[str, int] = field(default_factory=dict)


@st.composite
def histories(draw) -> History:
    """A valid chain history: every transfer is from the token's current owner."""
    tokens = [(c, t) for c in CONTRACTS for t in range(10)][: draw(st.integers(1, 20))]
    owner: dict[tuple[str, int], str] = {}
    history = History(rates={f"{CHAIN_ID}:{c}": r for c, r in CONTRACTS.items()})
    block, now, log_index = 1, 1_700_000_000, 0
    for _ in range(draw(st.integers(1, 60))):
        if draw(st.booleans()):  # a new block, after some time (sometimes none)
            block += 1
            now += draw(st.sampled_from([0, 1, 12, 3600, 86_400, 5 * 86_400]))
            log_index = 0
        contract, token_id = draw(st.sampled_from(tokens))
        current = owner.get((contract, token_id), ZERO_ADDRESS)
        if current == ZERO_ADDRESS:
            to = draw(st.sampled_from(HOLDERS))
        else:
            to = draw(st.sampled_from([*HOLDERS, ZERO_ADDRESS]))
        history.events.append(
            transfer(token_id, current, to, block=block, timestamp=now, log_index=log_index, contract=contract)
        )
        owner[(contract, token_id)] = to
        log_index += 1
    return history


@st.composite
def deliveries(draw, events: list[ChainEvent]) -> list[ChainEvent]:
    """Per-token order kept, tokens interleaved at random, duplicates and re-delivered suffixes."""
    queues: dict[str, list[ChainEvent]] = defaultdict(list)
    for event in events:
        queues[event.token_key].append(event)
    position = dict.fromkeys(queues, 0)
    delivered: list[ChainEvent] = []
    while any(position[k] < len(q) for k, q in queues.items()):
        key = draw(st.sampled_from(sorted(k for k, q in queues.items() if position[k] < len(q))))
        delivered.append(queues[key][position[key]])
        position[key] += 1
        roll = draw(st.integers(0, 9))
        if roll == 0:
            delivered.append(delivered[-1])  # duplicate
        elif roll == 1:
            position[key] = draw(st.integers(0, position[key]))  # re-deliver a suffix
    return delivered


def expected_tables(history: History) -> tuple[dict, dict]:
    tokens: dict[str, dict] = {}
    points: dict[str, dict] = defaultdict(
        lambda: {"weightedSeconds": 0, "weightedHeld": 0, "weightedSinceSum": 0, "tokensHeld": 0, "lastChangeAt": 0}
    )
    for event in history.events:
        w = history.rates[event.rate_key]
        if event.token_key in tokens and tokens[event.token_key]["owner"] != ZERO_ADDRESS:
            was = tokens[event.token_key]
            row = points[was["owner"]]
            row["weightedSeconds"] += w * (event.block_timestamp - was["acquiredAt"])
            row["weightedHeld"] -= w
            row["weightedSinceSum"] -= w * was["acquiredAt"]
            row["tokensHeld"] -= 1
            row["lastChangeAt"] = event.block_timestamp  # histories never go back in time
        if event.to_address != ZERO_ADDRESS:
            row = points[event.to_address]
            row["weightedHeld"] += w
            row["weightedSinceSum"] += w * event.block_timestamp
            row["tokensHeld"] += 1
            row["lastChangeAt"] = event.block_timestamp
        tokens[event.token_key] = {"owner": event.to_address, "acquiredAt": event.block_timestamp, "lastSeq": event.seq}
    return tokens, dict(points)


def brute_force_points(history: History, holder: str, at: int) -> Fraction:
    """Integrate holdings x rate second-interval by interval, straight from the history."""
    total = Fraction(0)
    held: dict[str, int] = {}  # token -> rate, for the tokens `holder` holds
    last = history.events[0].block_timestamp
    for event in history.events:
        total += sum(held.values()) * (event.block_timestamp - last)
        last = event.block_timestamp
        held.pop(event.token_key, None)
        if event.to_address == holder:
            held[event.token_key] = history.rates[event.rate_key]
    total += sum(held.values()) * (at - last)
    return total / 86_400


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TOKENS_TABLE", TOKENS)
        patch.setenv("POINTS_TABLE", POINTS)
        patch.setenv("POINTS_PER_DAY", json.dumps({f"{CHAIN_ID}:{c}": r for c, r in CONTRACTS.items()}))
        patch.delenv("DEFAULT_POINTS_PER_DAY", raising=False)
        patch.setenv("STAGE", "test")
        yield patch


COMMIT_FAULTS = ("none", "refused", "conflicted", "response lost")


class Faults:
    """Wraps the consumer's DynamoDB calls: each transaction takes the next drawn commit fault, each
    prefetch the next drawn staleness (True: every token as it was read the time before)."""

    def __init__(self, consumer, commits: list[str], stale: list[bool], history: History) -> None:
        self.commits, self.stale = iter(commits), iter(stale)
        self.history = history
        self.lost_applied = 0  # events that commits with a lost response applied
        self.seen: dict[str, list] = defaultdict(list)  # every state read of each token, in order
        client, store = consumer.store.client, consumer.store
        self.transact, self.prefetch = client.transact_write_items, store.prefetch
        client.transact_write_items = self._transact
        store.prefetch = self._prefetch

    def _transact(self, **kwargs):
        fault = next(self.commits, "none")
        if fault == "refused":
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, "TransactWriteItems")
        if fault == "conflicted":
            reasons = [{"Code": "TransactionConflict"} for _ in kwargs["TransactItems"]]
            raise ClientError(
                {"Error": {"Code": "TransactionCanceledException"}, "CancellationReasons": reasons},
                "TransactWriteItems",
            )
        response = self.transact(**kwargs)
        if fault == "response lost":
            self.lost_applied += self._events_applied_by(kwargs["TransactItems"])
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, "TransactWriteItems")
        return response

    def _prefetch(self, keys):
        states = self.prefetch(keys)
        for key, state in states.items():
            if self.seen[key][-1:] != [state]:
                self.seen[key].append(state)
        if next(self.stale, False):
            return {key: self.seen[key][-2] if len(self.seen[key]) > 1 else None for key in states}
        return states

    def _events_applied_by(self, items) -> int:
        applied = 0
        for item in items:
            update = item["Update"]
            if "token" not in update["Key"]:
                continue
            values = update["ExpressionAttributeValues"]
            read = int(values[":readSeq"]["N"]) if ":readSeq" in values else -1
            written = int(values[":seq"]["N"])
            key = update["Key"]["token"]["S"]
            applied += sum(1 for e in self.history.events if e.token_key == key and read < e.seq <= written)
        return applied


def deliver_until_done(delivered: list[ChainEvent], batch_size: int) -> tuple[dict[str, float], int]:
    """Batches through the handler; what it reports failed comes again first (Kinesis resumes from
    the lowest failed sequence number). Returns the summed metrics and the records sent."""
    pending, sent, totals = list(delivered), 0, {}
    for _ in range(10 * len(delivered) + 50):
        if not pending:
            return totals, sent
        batch = KinesisBatch()
        for event in pending[:batch_size]:
            batch.add_event(event)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            response = processor.handler(batch.event(), LambdaContext())
        for name, value in metric_totals(out.getvalue()).items():
            totals[name] = totals.get(name, 0) + value
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        first_failed = next((i for i, r in enumerate(batch.records) if r["kinesis"]["sequenceNumber"] in failed), None)
        done = len(batch.records) if first_failed is None else first_failed
        assert failed == {r["kinesis"]["sequenceNumber"] for r in batch.records[done:]}  # fail-fast: a suffix
        sent += len(batch.records)
        pending = pending[done:]
    raise AssertionError("the handler never finished the delivery")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_tables_equal_the_reference_model_under_any_delivery_grouping_and_faults(data, monkeypatch_module):
    history = data.draw(histories())
    delivered = data.draw(deliveries(history.events))
    batch_size = data.draw(st.integers(1, 6) | st.integers(1, 100))
    max_items = data.draw(st.sampled_from([3, 4, 5, 8, 100]))
    max_events = data.draw(st.sampled_from(["", "1", "2", "7"]))
    commits = data.draw(st.lists(st.sampled_from(COMMIT_FAULTS), max_size=12))
    stale = data.draw(st.lists(st.booleans(), max_size=12))
    monkeypatch_module.setattr("app.store._backoff", lambda attempt: None)
    monkeypatch_module.setenv("MAX_EVENTS_PER_TRANSACTION", max_events)
    with moto_ledger() as ledger:
        monkeypatch_module.setenv("QUARANTINE_QUEUE_URL", ledger.queue_url)
        processor.consumer.cache_clear()
        consumer = processor.consumer()
        consumer.store.max_items = max_items
        faults = Faults(consumer, commits, stale, history)
        totals, sent = deliver_until_done(delivered, batch_size)

        tokens, points = expected_tables(history)
        actual_tokens = {
            k: {"owner": v["owner"], "acquiredAt": v["acquiredAt"], "lastSeq": v["lastSeq"]}
            for k, v in ledger.tokens().items()
        }
        assert actual_tokens == tokens
        actual_points = {h: {k: v for k, v in row.items() if k != "holder"} for h, row in ledger.points().items()}
        assert actual_points == points
        # Every event applied once: by an invocation that counted it, or by a commit whose response
        # was lost (its events then come again and count as duplicates); every record sent accounted.
        assert totals["EventsApplied"] + faults.lost_applied == len(history.events)
        assert totals["EventsApplied"] + totals["DuplicatesSkipped"] + totals["RecordsFailed"] == sent
        assert totals["OwnershipGaps"] == 0 and totals["PoisonRecords"] == 0

        end = history.events[-1].block_timestamp
        for at in (end, end + 1, end + data.draw(st.integers(0, 30 * 86_400))):
            for holder in points:
                assert ledger.store.holder(holder).points_at(at) == brute_force_points(history, holder, at)
    processor.consumer.cache_clear()
    monkeypatch_module.delenv("MAX_EVENTS_PER_TRANSACTION")


def test_reference_model_is_not_trivially_satisfied():
    """Guard against a vacuous model: a transfer halfway through one day splits ten points 5/5."""
    a, b = HOLDERS[:2]
    contract = next(iter(CONTRACTS))
    history = History(
        events=[
            transfer(1, ZERO_ADDRESS, a, block=1, timestamp=0, contract=contract),
            transfer(1, a, b, block=2, timestamp=43_200, contract=contract),
        ],
        rates={f"{CHAIN_ID}:{c}": r for c, r in CONTRACTS.items()},
    )
    assert brute_force_points(history, a, 86_400) == 5
    assert brute_force_points(history, b, 86_400) == 5
    _, points = expected_tables(history)
    assert points[a]["weightedSeconds"] == 10 * 43_200 and points[b]["tokensHeld"] == 1
