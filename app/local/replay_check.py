"""The demo's own check until the product's `reconcile` command exists: the ledger against a straight
replay of the chain's Transfer logs (as the chain reported them to the scenario, not to the monitor)."""

from __future__ import annotations

from app.events import ChainEvent, build_event
from app.ledger import HolderPoints, TokenState, transition
from app.local.chain import Chain, ChainTransfer
from app.local.services import CHAIN_ID
from app.store import Store


def replay(chain: Chain, head: int, rate: int) -> tuple[dict[str, TokenState], dict[str, HolderPoints]]:
    """The ledger straight from the chain's Transfer logs up to `head`."""
    tokens: dict[str, TokenState] = {}
    points: dict[str, HolderPoints] = {}
    for t in sorted(chain.transfers, key=lambda t: t.seq):
        if t.block_number > head:
            continue
        event = event_of(chain, t)
        change = transition(tokens.get(event.token_key), event, rate)
        tokens[event.token_key] = change.token
        for delta in change.deltas:
            points[delta.holder] = points.get(delta.holder, HolderPoints()).plus(delta)
    return tokens, points


def event_of(chain: Chain, t: ChainTransfer) -> ChainEvent:
    """The event the monitor should have published for a Transfer log the node reported."""
    return build_event(
        chain_id=CHAIN_ID,
        contract=chain.address,
        token_id=t.token_id,
        from_address=t.from_address,
        to_address=t.to_address,
        block_number=t.block_number,
        block_hash=t.block_hash,
        block_timestamp=chain.timestamp(t.block_number),
        tx_hash=t.tx_hash,
        tx_index=t.tx_index,
        log_index=t.log_index,
    )


def mismatches(chain: Chain, store: Store, head: int, rate: int) -> list[str]:
    """Every token and holder whose ledger row differs from the replay, one line each."""
    expected_tokens, expected_points = replay(chain, head, rate)
    problems = []
    actual_tokens = store.prefetch(expected_tokens)
    for key, expected in sorted(expected_tokens.items()):
        actual = actual_tokens.get(key)
        want = (expected.owner, expected.acquired_at, expected.last_seq)
        got = (actual.owner, actual.acquired_at, actual.last_seq) if actual else None
        if got != want:
            problems.append(f"token {key}: ledger {got}, chain (owner, acquired_at, last_seq) {want}")
    actual_points = dict(store.holders())
    for holder in sorted(set(expected_points) | set(actual_points)):
        if actual_points.get(holder) != expected_points.get(holder):
            problems.append(f"holder {holder}: ledger {actual_points.get(holder)}, chain {expected_points.get(holder)}")
    return problems
