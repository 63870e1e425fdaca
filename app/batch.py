"""Group commits (DESIGN §4): the next run of a batch's events planned as one transaction, in memory.

From the token states the table held when read, every event's transition is computed in batch order
by app/ledger.py; a token's chain of transitions becomes one update (its last state, conditional on
the `lastSeq` it was read at) and each holder's deltas are summed into one ADD. DynamoDB refuses two
operations on one item in a transaction and more than 100 items: folding rules out the first, and a
group closes before the event that would take it past `max_items`. 100 items of under 1 KB each (a
token item's fields are bounded by the record schema) stay far below the 4 MB transaction limit.

No AWS here: app/store.py commits a group and re-plans it from fresh states when a lock is lost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from app.events import ChainEvent
from app.ledger import HolderDelta, InconsistentEvent, TokenState, Transition, is_stale, transition

MAX_ITEMS = 100  # DynamoDB's limit of items per TransactWriteItems


@dataclass(frozen=True, slots=True)
class Pending:
    """An event to apply, with the rate its contract earns at."""

    event: ChainEvent
    weight: int


@dataclass(frozen=True, slots=True)
class Step:
    """What a group does with one event: its transition, or None when it is a duplicate or stale."""

    event: ChainEvent
    transition: Transition | None

    @property
    def applied(self) -> bool:
        return self.transition is not None


@dataclass(frozen=True, slots=True)
class TokenWrite:
    key: str
    read: TokenState | None  # the condition: the item is still as read (None: still absent)
    state: TokenState  # the token after the group's last event of it
    event: ChainEvent  # that event (the item's identity attributes come from it)


@dataclass(frozen=True)
class Group:
    steps: tuple[Step, ...]
    tokens: tuple[TokenWrite, ...]
    holders: tuple[HolderDelta, ...]  # one sum per holder; its `changed_at` the latest among them
    # The event right after the steps can never apply on the state they leave (a poison record):
    # the group ends before it, so that it is quarantined in its place in the batch.
    inconsistent: InconsistentEvent | None = None

    @property
    def items(self) -> int:
        return len(self.tokens) + len(self.holders)

    def states(self) -> dict[str, TokenState]:
        """The token states the table holds once this group has committed."""
        return {write.key: write.state for write in self.tokens}


def plan(
    pending: Sequence[Pending],
    states: Mapping[str, TokenState | None],
    *,
    max_items: int = MAX_ITEMS,
    max_events: int | None = None,
) -> Group:
    """The longest prefix of `pending` whose writes fit one transaction, folded into one write per
    item. `states` must hold every token of `pending` (None: the table has no such item)."""
    if max_items < 3:
        raise ValueError(f"max_items: one event may touch 3 items, got {max_items}")
    reads: dict[str, TokenState | None] = {}
    tokens: dict[str, TokenWrite] = {}
    holders: dict[str, HolderDelta] = {}
    steps: list[Step] = []
    inconsistent = None
    for item in pending[:max_events]:
        event, key = item.event, item.event.token_key
        current = tokens[key].state if key in tokens else states[key]
        if is_stale(current, event):
            steps.append(Step(event, None))
            continue
        try:
            change = transition(current, event, item.weight)
        except InconsistentEvent as error:
            inconsistent = error
            break
        new_items = (key not in tokens) + sum(d.holder not in holders for d in change.deltas)
        if len(tokens) + len(holders) + new_items > max_items:
            break
        reads.setdefault(key, current)
        tokens[key] = TokenWrite(key, reads[key], change.token, event)
        for delta in change.deltas:
            holders[delta.holder] = holders[delta.holder] + delta if delta.holder in holders else delta
        steps.append(Step(event, change))
    return Group(tuple(steps), tuple(tokens.values()), tuple(holders.values()), inconsistent)
