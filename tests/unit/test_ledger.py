from fractions import Fraction

import pytest

from app.events import ZERO_ADDRESS
from app.ledger import (
    BeforeLastChange,
    HolderDelta,
    HolderPoints,
    InconsistentEvent,
    TokenState,
    is_stale,
    points_at,
    transition,
)
from tests.support.chain import address, burn, mint, transfer

A, B, C = address(0xA), address(0xB), address(0xC)
W = 10  # points per token per day


def held(owner, since, seq=1, weight=W):
    return TokenState(owner, since, seq, "e", weight)


def test_mint_credits_only_the_receiver():
    change = transition(None, mint(1, A, block=1, timestamp=1000), W)
    assert change.deltas == (HolderDelta(A, 0, W, W * 1000, 1, 1000),)
    assert change.token == TokenState(A, 1000, 1_000_000, change.token.last_event_id, W)
    assert not change.gap and change.previous is None


def test_transfer_settles_the_previous_owner_and_credits_the_next():
    change = transition(held(A, 1000), transfer(1, A, B, block=2, timestamp=5000), W)
    assert set(change.deltas) == {
        HolderDelta(A, W * 4000, -W, -W * 1000, -1, 5000),
        HolderDelta(B, 0, W, W * 5000, 1, 5000),
    }
    assert change.token.owner == B and change.token.acquired_at == 5000 and not change.gap


def test_burn_settles_the_owner_and_credits_nobody():
    change = transition(held(A, 1000), burn(1, A, block=2, timestamp=2000), W)
    assert change.deltas == (HolderDelta(A, W * 1000, -W, -W * 1000, -1, 2000),)
    assert change.token.owner == ZERO_ADDRESS


def test_gap_settles_the_owner_the_table_knew_and_the_chain_wins():
    change = transition(held(A, 1000), transfer(1, B, C, block=2, timestamp=3000), W)
    assert change.gap
    assert change.previous_owner == A
    assert {d.holder for d in change.deltas} == {A, C}
    assert change.token.owner == C


def test_unknown_token_transferred_from_a_holder_is_a_gap_with_nobody_to_settle():
    change = transition(None, transfer(1, A, B, block=2, timestamp=3000), W)
    assert change.gap and change.deltas == (HolderDelta(B, 0, W, W * 3000, 1, 3000),)


def test_self_transfer_merges_into_one_delta_per_holder():
    change = transition(held(A, 1000), transfer(1, A, A, block=2, timestamp=4000), W)
    assert change.deltas == (HolderDelta(A, W * 3000, 0, W * 3000, 0, 4000),)


def test_settlement_uses_the_weight_the_token_was_acquired_at():
    change = transition(held(A, 0, weight=3), transfer(1, A, B, block=2, timestamp=100), 7)
    assert HolderDelta(A, 300, -3, 0, -1, 100) in change.deltas
    assert HolderDelta(B, 0, 7, 700, 1, 100) in change.deltas


def test_legacy_token_without_weight_settles_at_the_current_rate():
    change = transition(held(A, 0, weight=None), burn(1, A, block=2, timestamp=100), 7)
    assert change.deltas == (HolderDelta(A, 700, -7, 0, -1, 100),)


def test_stale_and_duplicate_events_are_refused():
    event = transfer(1, A, B, block=2, timestamp=100, log_index=3)
    assert is_stale(held(A, 0, seq=event.seq), event)
    assert is_stale(held(A, 0, seq=event.seq + 1), event)
    assert not is_stale(held(A, 0, seq=event.seq - 1), event)
    with pytest.raises(ValueError, match="not newer"):
        transition(held(A, 0, seq=event.seq), event, W)


def test_points_are_exact_integrals_of_holdings():
    # A holds one token from t=0 to t=86400 (closed) and one since t=43200 (open), both rate 10.
    row = HolderPoints(weighted_seconds=10 * 86400, weighted_held=10, weighted_since_sum=10 * 43200, tokens_held=1)
    assert points_at(row, 86400) == Fraction(15)
    assert row.points_at(86400 + 1) == Fraction(15) + Fraction(10, 86400)


def test_an_event_earlier_than_the_tokens_acquisition_is_inconsistent():
    with pytest.raises(
        InconsistentEvent, match=r"^inconsistent: block.timestamp 999 .* earlier than the token's acquiredAt 1000"
    ):
        transition(held(A, 1000), transfer(1, A, B, block=2, timestamp=999), W)
    assert transition(held(A, 1000), transfer(1, A, B, block=2, timestamp=1000), W).deltas  # same second is fine


def test_holder_deltas_merge_to_the_latest_change_time():
    merged = HolderDelta(A, 1, 0, 0, 0, 500) + HolderDelta(A, 2, 0, 0, 0, 300)
    assert merged == HolderDelta(A, 3, 0, 0, 0, 500)
    assert HolderPoints(last_change_at=400).plus(merged).last_change_at == 500


def test_points_answer_only_from_the_last_change_on():
    row = HolderPoints(weighted_held=10, weighted_since_sum=10 * 1000, tokens_held=1, last_change_at=1000)
    assert row.answers_at(1000) and not row.answers_at(999)
    with pytest.raises(BeforeLastChange, match=f"^999 is before the last change of holder {A} at 1000"):
        row.require_answer(A, 999)
    assert HolderPoints(weighted_held=1).answers_at(0)  # no time stored: the sums are all there is
