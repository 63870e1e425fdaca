"""The group planner: one write per token and per holder, closed at DynamoDB's item limit."""

import pytest

from app.batch import Pending, plan
from app.events import ZERO_ADDRESS
from app.ledger import HolderDelta, InconsistentEvent, TokenState, transition
from tests.support.chain import address, mint, transfer

A, B, C = address(0xA), address(0xB), address(0xC)


def test_a_token_moved_several_times_is_one_write_from_its_read_state_to_its_last():
    first, second = transfer(1, A, B, block=2, timestamp=200), transfer(1, B, C, block=3, timestamp=500)
    read = TokenState(A, 100, 1_000_000, "e0", 10)
    group = plan([Pending(first, 10), Pending(second, 10)], {first.token_key: read})
    (write,) = group.tokens
    assert write.read == read and write.state == TokenState(C, 500, second.seq, second.id, 10)
    by_holder = {d.holder: d for d in group.holders}
    assert set(by_holder) == {A, B, C}
    assert by_holder[B] == HolderDelta(B, 10 * 300, 0, 0, 0, 500)  # held from 200 to 500: closed
    assert by_holder[A].changed_at == 200 and by_holder[C].changed_at == 500


def test_holder_sums_equal_the_sum_of_the_ledgers_transitions():
    events = [mint(i, A if i % 2 else B, block=1, timestamp=100 + i, log_index=i) for i in range(6)]
    group = plan([Pending(e, 3) for e in events], dict.fromkeys((e.token_key for e in events), None))
    expected: dict[str, HolderDelta] = {}
    for event in events:
        for delta in transition(None, event, 3).deltas:
            expected[delta.holder] = expected[delta.holder] + delta if delta.holder in expected else delta
    assert {d.holder: d for d in group.holders} == expected
    assert len(group.steps) == 6 and group.items == 6 + 2


def test_a_group_closes_before_the_event_that_would_pass_the_item_limit():
    events = [mint(i, address(0x100 + i), block=1, timestamp=100, log_index=i) for i in range(10)]
    states = dict.fromkeys((e.token_key for e in events), None)
    group = plan([Pending(e, 1) for e in events], states, max_items=7)
    assert len(group.steps) == 3 and group.items == 6  # a fourth mint would make 8
    assert plan([Pending(e, 1) for e in events], states, max_events=2).items == 4


def test_duplicates_are_steps_without_writes():
    event = mint(1, A, block=1, timestamp=100)
    seen = TokenState(A, 100, event.seq, event.id, 10)
    group = plan([Pending(event, 10)], {event.token_key: seen})
    assert [s.applied for s in group.steps] == [False] and group.tokens == () and group.holders == ()


def test_an_inconsistent_event_ends_the_group_before_it():
    ok, backwards = transfer(1, A, B, block=2, timestamp=500), transfer(1, B, C, block=3, timestamp=400)
    later = mint(2, C, block=3, timestamp=600, log_index=1)
    read = TokenState(A, 100, 1_000_000, "e0", 10)
    group = plan([Pending(e, 10) for e in (ok, backwards, later)], {ok.token_key: read, later.token_key: None})
    assert [s.event for s in group.steps] == [ok]
    assert isinstance(group.inconsistent, InconsistentEvent)
    assert {d.holder for d in group.holders} == {A, B} and ZERO_ADDRESS not in {d.holder for d in group.holders}


def test_a_limit_below_one_events_items_is_refused():
    with pytest.raises(ValueError, match="max_items"):
        plan([], {}, max_items=2)
