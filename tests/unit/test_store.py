import pytest

from app.events import ZERO_ADDRESS
from app.store import Outcome
from tests.support.aws import POINTS, moto_ledger
from tests.support.chain import address, burn, mint, transfer

A, B, C = address(0xA), address(0xB), address(0xC)
W = 10


@pytest.fixture
def ledger():
    with moto_ledger() as ledger:
        yield ledger


def test_mint_writes_the_token_and_the_holder_exactly_as_design_section_4(ledger):
    event = mint(7, A, block=10, timestamp=1000, log_index=2)
    result = ledger.store.apply(event, W)
    assert result.outcome is Outcome.APPLIED
    assert ledger.tokens() == {
        event.token_key: {
            "token": event.token_key,
            "owner": A,
            "acquiredAt": 1000,
            "lastSeq": event.seq,
            "lastEventId": event.id,
            "weight": W,
            "chainId": event.chain_id,
            "contract": event.contract,
            "tokenId": "7",
        }
    }
    assert ledger.points() == {
        A: {
            "holder": A,
            "weightedSeconds": 0,
            "weightedHeld": W,
            "weightedSinceSum": W * 1000,
            "tokensHeld": 1,
            "lastChangeAt": 1000,
        }
    }


def test_transfer_then_burn_closes_every_interval(ledger):
    for event in (
        mint(7, A, block=1, timestamp=1000),
        transfer(7, A, B, block=2, timestamp=4000),
        burn(7, B, block=3, timestamp=9000),
    ):
        assert ledger.store.apply(event, W).outcome is Outcome.APPLIED
    points = ledger.points()
    assert points[A] == {
        "holder": A,
        "weightedSeconds": 30000,
        "weightedHeld": 0,
        "weightedSinceSum": 0,
        "tokensHeld": 0,
        "lastChangeAt": 4000,
    }
    assert points[B] == {
        "holder": B,
        "weightedSeconds": 50000,
        "weightedHeld": 0,
        "weightedSinceSum": 0,
        "tokensHeld": 0,
        "lastChangeAt": 9000,
    }
    assert ZERO_ADDRESS not in points
    (token,) = ledger.tokens().values()
    assert token["owner"] == ZERO_ADDRESS and token["acquiredAt"] == 9000


def test_duplicate_and_stale_events_change_nothing(ledger):
    first = mint(7, A, block=1, timestamp=1000)
    second = transfer(7, A, B, block=2, timestamp=2000)
    ledger.store.apply(first, W)
    ledger.store.apply(second, W)
    before = (ledger.tokens(), ledger.points())
    assert ledger.store.apply(second, W).outcome is Outcome.DUPLICATE
    assert ledger.store.apply(first, W).outcome is Outcome.DUPLICATE  # stale: older seq
    assert (ledger.tokens(), ledger.points()) == before


def test_gap_settles_the_known_owner_and_moves_the_token_to_the_receiver(ledger):
    ledger.store.apply(mint(7, A, block=1, timestamp=1000), W)
    result = ledger.store.apply(transfer(7, B, C, block=2, timestamp=3000), W)
    assert result.outcome is Outcome.APPLIED and result.gap
    points = ledger.points()
    assert points[A]["weightedSeconds"] == 20000 and points[A]["tokensHeld"] == 0
    assert B not in points
    assert points[C]["tokensHeld"] == 1 and points[C]["weightedSinceSum"] == 30000


def test_unknown_token_arriving_mid_history_is_a_gap_owned_by_the_receiver(ledger):
    result = ledger.store.apply(transfer(9, A, B, block=5, timestamp=500), W)
    assert result.gap
    assert set(ledger.points()) == {B}


def test_lost_optimistic_lock_re_reads_and_applies_on_the_new_state(ledger):
    minted = mint(7, A, block=1, timestamp=1000)
    moved = transfer(7, A, B, block=2, timestamp=5000)
    stale_view = ledger.store.prefetch([moved.token_key])[moved.token_key]
    assert stale_view is None
    ledger.store.apply(minted, W)  # a concurrent writer between our read and our write
    result = ledger.store.apply(moved, W, stale_view)
    assert result.outcome is Outcome.APPLIED and result.attempts == 2 and not result.gap
    points = ledger.points()
    assert points[A]["weightedSeconds"] == 40000 and points[A]["tokensHeld"] == 0
    assert points[B]["tokensHeld"] == 1


def test_lost_lock_to_the_same_event_becomes_a_skip(ledger):
    moved = transfer(7, A, B, block=2, timestamp=5000)
    ledger.store.apply(mint(7, A, block=1, timestamp=1000), W)
    view = ledger.store.read_token(moved.token_key)
    ledger.store.apply(moved, W)  # another delivery of the same event won the race
    before = ledger.points()
    result = ledger.store.apply(moved, W, view)
    assert result.outcome is Outcome.DUPLICATE and result.attempts == 2
    assert ledger.points() == before


def test_prefetch_reads_many_tokens_and_marks_unknown_ones(ledger):
    events = [mint(i, A, block=1, timestamp=10, log_index=i) for i in range(150)]
    for event in events[:120]:
        ledger.store.apply(event, W)
    states = ledger.store.prefetch(e.token_key for e in events)
    assert len(states) == 150
    assert all(states[e.token_key].owner == A for e in events[:120])
    assert all(states[e.token_key] is None for e in events[120:])


def test_operator_reads_token_points_and_leaderboard(ledger):
    ledger.store.apply(mint(1, A, block=1, timestamp=0), W)
    ledger.store.apply(mint(2, B, block=1, timestamp=0, log_index=1), W)
    ledger.store.apply(mint(3, B, block=1, timestamp=0, log_index=2), W)
    assert ledger.store.token(mint(1, A, block=1, timestamp=0).token_key)["owner"] == A
    assert ledger.store.holder(A.upper().replace("0X", "0x")).points_at(86400) == 10
    assert ledger.store.holder(C) is None
    board = ledger.store.leaderboard(at=86400, limit=1)
    assert [(holder, points) for holder, points, _ in board] == [(B, 20)]


def _cancelled(*codes):
    from botocore.exceptions import ClientError

    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": [{"Code": code} for code in codes],
        },
        "TransactWriteItems",
    )


def test_a_transaction_conflict_on_a_shared_holder_is_retried_with_the_same_state(ledger, monkeypatch):
    monkeypatch.setattr("app.store.time.sleep", lambda _: None)
    real = ledger.client.transact_write_items
    failures = iter([_cancelled("None", "TransactionConflict")])

    def conflicted_once(**kwargs):
        error = next(failures, None)
        if error:
            raise error
        return real(**kwargs)

    ledger.client.transact_write_items = conflicted_once
    result = ledger.store.apply(mint(7, A, block=1, timestamp=1000), W)
    assert result.outcome is Outcome.APPLIED and result.attempts == 2
    assert ledger.points()[A]["tokensHeld"] == 1


def test_endless_conflicts_give_up_with_an_error_naming_the_event(ledger, monkeypatch):
    from app.store import StoreError

    monkeypatch.setattr("app.store.time.sleep", lambda _: None)

    def always_conflicted(**_):
        raise _cancelled("None", "TransactionConflict")

    ledger.client.transact_write_items = always_conflicted
    event = mint(7, A, block=1, timestamp=1000)
    with pytest.raises(StoreError, match=f"event {event.id}: gave up after 8 attempts"):
        ledger.store.apply(event, W)
    assert ledger.tokens() == {} and ledger.points() == {}


def test_other_cancellations_are_not_retried(ledger):
    from botocore.exceptions import ClientError

    calls = []

    def invalid(**_):
        calls.append(1)
        raise _cancelled("ValidationError")

    ledger.client.transact_write_items = invalid
    with pytest.raises(ClientError):
        ledger.store.apply(mint(7, A, block=1, timestamp=1000), W)
    assert len(calls) == 1


def test_last_change_keeps_the_latest_time_when_shards_deliver_out_of_order(ledger):
    calls = []
    real = ledger.client.transact_write_items

    def counted(**kwargs):
        calls.append(kwargs)
        return real(**kwargs)

    ledger.client.transact_write_items = counted
    # Two tokens of one holder on different shards: the later change arrives first.
    assert ledger.store.apply(mint(1, A, block=5, timestamp=5000), W).attempts == 1
    older = ledger.store.apply(mint(2, A, block=3, timestamp=3000), W)
    assert older.outcome is Outcome.APPLIED and older.attempts == 2  # the SET was refused, the ADDs kept
    assert "lastChangeAt" not in calls[-1]["TransactItems"][1]["Update"]["UpdateExpression"]
    row = ledger.points()[A]
    assert row["lastChangeAt"] == 5000
    assert (row["weightedHeld"], row["weightedSinceSum"], row["tokensHeld"]) == (2 * W, W * 8000, 2)
    # The older event's token item is written too: the retry was the whole transaction.
    assert ledger.tokens()[mint(2, A, block=3, timestamp=3000).token_key]["acquiredAt"] == 3000


def test_a_holder_item_written_before_the_time_was_stored_gains_it(ledger):
    ledger.client.update_item(
        TableName=POINTS,
        Key={"holder": {"S": A}},
        UpdateExpression="ADD weightedHeld :w, weightedSinceSum :s, tokensHeld :t",
        ExpressionAttributeValues={":w": {"N": str(W)}, ":s": {"N": str(W * 100)}, ":t": {"N": "1"}},
    )
    assert ledger.store.holder(A).last_change_at is None
    ledger.store.apply(mint(1, A, block=5, timestamp=700), W)
    assert ledger.store.holder(A).last_change_at == 700
    assert ledger.points()[A]["tokensHeld"] == 2


def test_leaderboard_before_a_holders_last_change_is_refused(ledger):
    from app.ledger import BeforeLastChange

    ledger.store.apply(mint(1, A, block=1, timestamp=100), W)
    ledger.store.apply(mint(2, B, block=2, timestamp=200), W)
    assert [h for h, _, _ in ledger.store.leaderboard(at=200)] == [A, B]
    with pytest.raises(BeforeLastChange) as refused:
        ledger.store.leaderboard(at=199)
    assert (refused.value.holder, refused.value.last_change_at) == (B, 200)


def test_later_change_kept_reads_holder_reasons_among_any_items():
    from app.ledger import HolderDelta
    from app.store import holder_update, later_change_kept

    token = {"TableName": "t", "Key": {"token": {"S": "1:0x:1"}}, "ConditionExpression": "lastSeq = :readSeq"}
    kept = holder_update(POINTS, HolderDelta(A, changed_at=5))
    plain = holder_update(POINTS, HolderDelta(B, changed_at=5), keep_latest_change=False)
    assert "ConditionExpression" not in plain and "lastChangeAt" not in plain["UpdateExpression"]
    failed = {"Code": "ConditionalCheckFailed"}
    assert later_change_kept([token, kept, plain], [failed, failed, failed]) == {A}
    assert later_change_kept([token, kept], [failed, {"Code": "None"}]) == frozenset()


def test_a_group_keeps_each_holders_latest_change_time(ledger):
    from app.batch import Pending

    events = [
        mint(1, A, block=1, timestamp=100),
        mint(2, A, block=2, timestamp=300),
        mint(3, B, block=2, timestamp=200),
    ]
    committed = ledger.store.apply_group([Pending(e, W) for e in events], {})
    assert committed.attempts == 1 and len(committed.group.steps) == 3
    points = ledger.points()
    assert points[A]["lastChangeAt"] == 300 and points[A]["tokensHeld"] == 2 and points[B]["lastChangeAt"] == 200


def test_a_group_adds_without_moving_back_a_holders_later_change(ledger):
    from app.batch import Pending

    ledger.store.apply(mint(9, A, block=50, timestamp=5000), W)  # another shard, a later block
    events = [mint(1, A, block=1, timestamp=100), mint(2, B, block=1, timestamp=100, log_index=1)]
    committed = ledger.store.apply_group([Pending(e, W) for e in events], {})
    assert committed.attempts == 2  # A's condition refused the time once; the retry only ADDs for A
    points = ledger.points()
    assert points[A]["lastChangeAt"] == 5000 and points[A]["tokensHeld"] == 2
    assert points[A]["weightedSinceSum"] == W * (5000 + 100)
    assert points[B]["lastChangeAt"] == 100


def test_a_group_re_plans_every_lost_lock_from_the_items_returned(ledger):
    from app.batch import Pending

    first = [mint(i, A, block=1, timestamp=100, log_index=i) for i in range(3)]
    moved = [transfer(i, A, B, block=2, timestamp=400, log_index=i) for i in range(3)]
    stale = {e.token_key: None for e in first}  # read before the mints landed
    for event in first:
        ledger.store.apply(event, W)
    committed = ledger.store.apply_group([Pending(e, W) for e in first + moved], stale)
    assert committed.attempts == 2
    assert [s.applied for s in committed.group.steps] == [False] * 3 + [True] * 3
    points = ledger.points()
    assert points[A]["tokensHeld"] == 0 and points[A]["weightedSeconds"] == 3 * W * 300
    assert points[B]["tokensHeld"] == 3
