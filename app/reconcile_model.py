"""What the tables should hold, recomputed from the chain's Transfer logs with app/ledger.py (pure).

A holder's attributes are sums of per-token contributions (every change is an ADD), so the expected
value of a holder is the sum over tokens of each token's contribution from its history *up to the
`lastSeq` the tokens table shows for it* (its prefix). That stays exact while the consumer keeps
applying events: a token the consumer moved on carries its new contribution in the same transaction
that moved it. A token whose `lastSeq` is no Transfer on chain, or that lags the chain at the
reconciled block, is itself a mismatch; it counts with its history up to that block, which is what a
fix writes.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from app.events import ZERO_ADDRESS, ChainEvent
from app.ledger import HolderDelta, HolderPoints, TokenState, transition
from app.rates import Rates

HOLDER_ATTRIBUTES = ("weightedSeconds", "weightedHeld", "weightedSinceSum", "tokensHeld")


@dataclass(frozen=True)
class Step:
    """A token after one of its Transfers, with every holder's running contribution so far."""

    seq: int
    block: int
    state: TokenState
    contributions: Mapping[str, HolderPoints]


@dataclass
class TokenHistory:
    key: str
    steps: list[Step] = field(default_factory=list)

    def at_seq(self, seq: int) -> Step | None:
        """The step whose Transfer has exactly this seq (None: no such Transfer on chain)."""
        index = bisect.bisect_left([s.seq for s in self.steps], seq)
        return self.steps[index] if index < len(self.steps) and self.steps[index].seq == seq else None

    def up_to_block(self, block: int) -> Step | None:
        """The token as of the end of `block` (None: not minted yet)."""
        index = bisect.bisect_right([s.block for s in self.steps], block)
        return self.steps[index - 1] if index else None

    @property
    def holders(self) -> set[str]:
        return {holder for step in self.steps for holder in step.contributions}


class MissingRate(ValueError):
    pass


def histories(events: Iterable[ChainEvent], rates: Rates) -> dict[str, TokenHistory]:
    """Each token's Transfers in seq order, folded with the consumer's own `transition`."""
    by_token: dict[str, list[ChainEvent]] = defaultdict(list)
    for event in events:
        by_token[event.token_key].append(event)
    result = {}
    for key, token_events in by_token.items():
        history = TokenHistory(key)
        state: TokenState | None = None
        running: dict[str, HolderPoints] = {}
        for event in sorted(token_events, key=lambda e: e.seq):
            weight = rates.weight(event.rate_key)
            if weight is None:
                raise MissingRate(f"no points rate for contract {event.rate_key} and no default")
            change = transition(state, event, weight)
            state = change.token
            running = _plus(running, change.deltas)
            history.steps.append(Step(event.seq, event.block_number, state, running))
        result[key] = history
    return result


def _plus(running: dict[str, HolderPoints], deltas: Iterable[HolderDelta]) -> dict[str, HolderPoints]:
    out = dict(running)
    for delta in deltas:
        out[delta.holder] = out.get(delta.holder, HolderPoints()).plus(delta)
    return out


@dataclass(frozen=True)
class Mismatch:
    kind: str  # "token" or "holder"
    key: str  # the token key or the holder address
    attribute: str
    table: object
    chain: object

    def line(self) -> str:
        return f"{self.kind} {self.key}: {self.attribute} table {_show(self.table)}, chain {_show(self.chain)}"

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "key": self.key,
            "attribute": self.attribute,
            "table": self.table,
            "chain": self.chain,
        }


def _show(value: object) -> str:
    return "(none)" if value is None else str(value)


def expected_step(history: TokenHistory | None, table: TokenState | None, to_block: int) -> Step | None:
    """The step the token should be at: the table's own prefix when it is a real Transfer at or past
    `to_block`'s state, else the chain's state at `to_block` (what a fix writes)."""
    at_block = history.up_to_block(to_block) if history else None
    if table is not None and history is not None:
        step = history.at_seq(table.last_seq)
        if step is not None and (at_block is None or step.seq >= at_block.seq):
            return step
    return at_block


def token_mismatches(key: str, table: TokenState | None, expected: Step | None) -> list[Mismatch]:
    want = expected.state if expected else None
    if table is None and want is None:
        return []
    if table is None or want is None:
        chain_owner = want.owner if want else None
        return [Mismatch("token", key, "owner", table.owner if table else None, chain_owner)]
    out = []
    for attribute, have, should in (
        ("lastSeq", table.last_seq, want.last_seq),
        ("owner", table.owner, want.owner),
        ("acquiredAt", table.acquired_at, want.acquired_at),
        ("lastEventId", table.last_event_id, want.last_event_id),
    ):
        if have != should:
            out.append(Mismatch("token", key, attribute, have, should))
    if table.weight is not None and table.weight != want.weight:
        out.append(Mismatch("token", key, "weight", table.weight, want.weight))
    return out


def expected_holders(steps: Mapping[str, Step | None]) -> dict[str, HolderPoints]:
    """Σ over tokens of each token's contribution at the step given for it."""
    totals: dict[str, HolderPoints] = {}
    for step in steps.values():
        if step is None:
            continue
        for holder, points in step.contributions.items():
            current = totals.get(holder, HolderPoints())
            totals[holder] = HolderPoints(
                current.weighted_seconds + points.weighted_seconds,
                current.weighted_held + points.weighted_held,
                current.weighted_since_sum + points.weighted_since_sum,
                current.tokens_held + points.tokens_held,
            )
    totals.pop(ZERO_ADDRESS, None)
    return totals


def holder_values(points: HolderPoints | None) -> tuple[int, int, int, int]:
    p = points or HolderPoints()
    return (p.weighted_seconds, p.weighted_held, p.weighted_since_sum, p.tokens_held)


def holder_mismatches(holder: str, table: HolderPoints | None, expected: HolderPoints | None) -> list[Mismatch]:
    return [
        Mismatch("holder", holder, attribute, have, should)
        for attribute, have, should in zip(
            HOLDER_ATTRIBUTES, holder_values(table), holder_values(expected), strict=True
        )
        if have != should
    ]
