"""The contention stand-in behaves like DynamoDB under contention, and group commits stay exact in it."""

import threading
import time

import pytest
from botocore.exceptions import ClientError

from app.batch import Pending
from app.events import ZERO_ADDRESS
from app.store import Store, StoreError, dynamodb_client
from tests.support.aws import POINTS, TOKENS, moto_ledger
from tests.support.chain import address, mint
from tests.support.contention import Contention

A, B = address(0xA), address(0xB)


def add(holder: str, n: int = 1) -> dict:
    return {
        "Update": {
            "TableName": POINTS,
            "Key": {"holder": {"S": holder}},
            "UpdateExpression": "ADD tokensHeld :n",
            "ExpressionAttributeValues": {":n": {"N": str(n)}},
        }
    }


@pytest.fixture
def contended():
    with moto_ledger() as ledger, Contention(latency=1.0) as contention:
        yield ledger, contention, contention.attach(dynamodb_client(region_name="us-east-1"))


def in_thread(call) -> tuple[threading.Thread, list]:
    outcome: list = []

    def run() -> None:
        try:
            outcome.append(call())
        except ClientError as error:
            outcome.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def wait_until_held(contention: Contention) -> None:
    deadline = time.monotonic() + 5
    while not contention.holding():
        assert time.monotonic() < deadline, "the first transaction never started"
        time.sleep(0.005)


def test_a_transaction_touching_an_item_another_holds_is_cancelled_as_dynamodb_does(contended):
    ledger, contention, client = contended
    holder, _ = in_thread(lambda: client.transact_write_items(TransactItems=[add(A)]))
    wait_until_held(contention)  # the first transaction is in flight for 1 s
    late_tx, tx_outcome = in_thread(lambda: client.transact_write_items(TransactItems=[add(B), add(A)]))
    late_update, update_outcome = in_thread(lambda: client.update_item(**add(A)["Update"]))
    for thread in (holder, late_tx, late_update):
        thread.join()
    (cancelled,) = tx_outcome
    assert cancelled.response["Error"]["Code"] == "TransactionCanceledException"
    assert [r["Code"] for r in cancelled.response["CancellationReasons"]] == ["None", "TransactionConflict"]
    (refused,) = update_outcome
    assert refused.response["Error"]["Code"] == "TransactionConflictException"
    assert contention.conflicts == {"TransactWriteItems": 1, "UpdateItem": 1}
    assert ledger.points() == {A: {"holder": A, "tokensHeld": 1}}
    client.transact_write_items(TransactItems=[add(B), add(A)])  # released once the first committed
    assert ledger.points()[A]["tokensHeld"] == 2 and ledger.points()[B]["tokensHeld"] == 1


def test_reads_of_a_held_item_are_never_refused(contended):
    _, contention, client = contended
    client.transact_write_items(TransactItems=[add(A)])
    holder, _ = in_thread(lambda: client.transact_write_items(TransactItems=[add(A, 5)]))
    wait_until_held(contention)
    item = client.get_item(TableName=POINTS, Key={"holder": {"S": A}}, ConsistentRead=True)["Item"]
    holder.join()
    assert item["tokensHeld"] == {"N": "6"}  # read when its own round trip reached the table
    assert contention.conflicts == {}


def test_a_cancelled_transaction_is_rolled_back_item_by_item_and_leaves_every_other_item_alone():
    with moto_ledger() as ledger, Contention() as contention:
        client = contention.attach(dynamodb_client(region_name="us-east-1"))
        client.transact_write_items(TransactItems=[add(A), add(B)])
        failing = {
            "Update": {
                **add(B)["Update"],
                "ConditionExpression": "tokensHeld > :n",
                "ExpressionAttributeValues": {":n": {"N": "5"}},
            }
        }
        with pytest.raises(ClientError, match="TransactionCanceledException"):
            client.transact_write_items(TransactItems=[add(A, 10), add(address(0xC)), failing])
        assert ledger.points() == {A: {"holder": A, "tokensHeld": 1}, B: {"holder": B, "tokensHeld": 1}}
        client.transact_write_items(TransactItems=[add(A, 10), add(address(0xC))])
        assert ledger.points()[A]["tokensHeld"] == 11 and ledger.points()[address(0xC)]["tokensHeld"] == 1


def test_concurrent_group_commits_on_one_hot_holder_apply_every_event_exactly_once():
    workers, per_worker = 6, 40
    with moto_ledger() as ledger, Contention(latency=0.005) as contention:
        errors: list[BaseException] = []

        def work(worker: int) -> None:
            store = Store(TOKENS, POINTS, client=contention.attach(dynamodb_client(region_name="us-east-1")))
            store.max_items = 11  # groups of 10 tokens and the holder
            pending = [
                Pending(mint(worker * 1000 + i, A, block=1 + i, timestamp=100 + i, log_index=worker), 10)
                for i in range(per_worker)
            ]
            states: dict = {}
            try:
                while pending:
                    try:
                        committed = store.apply_group(pending, states)
                    except StoreError:  # gave up on conflicts: the batch would come again
                        continue
                    pending = pending[len(committed.group.steps) :]
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(ledger.tokens()) == workers * per_worker
        row = ledger.points()[A]
        assert row["tokensHeld"] == workers * per_worker and row["weightedHeld"] == 10 * workers * per_worker
        assert contention.conflicts["TransactWriteItems"] > 0  # the hot holder did contend


def replay(events, speedups: bool) -> tuple[dict, dict, list]:
    """Apply events one at a time and then in groups (with stale reads: locks lost), optionally with
    moto's speedups; returns both tables and every cancellation seen."""
    from contextlib import nullcontext

    from tests.support.moto_speedups import faster_moto

    cancellations: list = []
    with moto_ledger() as ledger, faster_moto() if speedups else nullcontext():
        real = ledger.client.transact_write_items

        def recording(**kwargs):
            try:
                return real(**kwargs)
            except ClientError as error:
                cancellations.append(error.response.get("CancellationReasons"))
                raise

        ledger.client.transact_write_items = recording
        for event in events[:20]:
            ledger.store.apply(event, 10)
        ledger.store.max_items = 7
        pending = [Pending(e, 10) for e in events[20:]]
        while pending:
            stale = dict.fromkeys({p.event.token_key for p in pending})  # every lock lost once
            committed = ledger.store.apply_group(pending, stale)
            pending = pending[len(committed.group.steps) :]
        return ledger.tokens(), ledger.points(), cancellations


def test_moto_speedups_give_exactly_what_stock_moto_gives():
    from tests.support.chain import transfer

    events, owner = [], {}
    for i in range(60):
        token = i % 9
        to = address(0x100 + (i * 7) % 5)
        events.append(transfer(token, owner.get(token, ZERO_ADDRESS), to, block=1 + i, timestamp=1000 + 17 * i))
        owner[token] = to
    stock, fast = replay(events, speedups=False), replay(events, speedups=True)
    assert fast == stock
    assert stock[2] and any(r and r[0].get("Item") for r in stock[2])  # lost locks did occur, items returned
