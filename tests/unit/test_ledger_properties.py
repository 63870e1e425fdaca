"""Laws of the ledger under Kinesis-style delivery, against a reference model written the simplest way.

Histories over up to 20 tokens (two contracts, two rates) and 8 holders are delivered through the
real handler in per-token order, interleaved arbitrarily across tokens, with duplicates and
re-delivered suffixes. The tables must equal what the history alone implies, and points at any
later time must equal the brute-force integral of holdings x rate.
"""

import json
from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import processor
from app.events import ZERO_ADDRESS, ChainEvent
from tests.support.aws import POINTS, TOKENS, moto_ledger
from tests.support.chain import CHAIN_ID, KinesisBatch, LambdaContext, address, transfer

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


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_tables_equal_the_reference_model_under_any_delivery(data, monkeypatch_module):
    history = data.draw(histories())
    delivered = data.draw(deliveries(history.events))
    batch_size = data.draw(st.integers(1, 100))
    with moto_ledger() as ledger:
        monkeypatch_module.setenv("QUARANTINE_QUEUE_URL", ledger.queue_url)
        processor.consumer.cache_clear()
        for start in range(0, len(delivered), batch_size):
            batch = KinesisBatch()
            for event in delivered[start : start + batch_size]:
                batch.add_event(event)
            assert processor.handler(batch.event(), LambdaContext()) == {"batchItemFailures": []}

        tokens, points = expected_tables(history)
        actual_tokens = {
            k: {"owner": v["owner"], "acquiredAt": v["acquiredAt"], "lastSeq": v["lastSeq"]}
            for k, v in ledger.tokens().items()
        }
        assert actual_tokens == tokens
        actual_points = {h: {k: v for k, v in row.items() if k != "holder"} for h, row in ledger.points().items()}
        assert actual_points == points

        end = history.events[-1].block_timestamp
        for at in (end, end + 1, end + data.draw(st.integers(0, 30 * 86_400))):
            for holder in points:
                assert ledger.store.holder(holder).points_at(at) == brute_force_points(history, holder, at)
    processor.consumer.cache_clear()


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
