"""Points accounting (DESIGN §4) as pure, integer-exact functions. No AWS here.

A holder's row keeps three running sums, so points at any time T need no history:
    points(T) = (weightedSeconds + weightedHeld * T - weightedSinceSum) / 86400
Every change to a row is an additive delta; deltas of different tokens commute.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from app.events import ZERO_ADDRESS, ChainEvent

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True, slots=True)
class TokenState:
    """A `tokens` item. `weight` is the rate the holder earns at, fixed when the token was acquired,
    so that a later change of a contract's rate never unbalances a holder's running sums."""

    owner: str
    acquired_at: int
    last_seq: int
    last_event_id: str
    weight: int | None  # None: an item written before weights were stored


class InconsistentEvent(ValueError):
    """An event no real chain emits after the token's last one (a poison record, never retried)."""


class BeforeLastChange(ValueError):
    """Points asked for a time before the holder's last change: the running sums cannot answer."""

    def __init__(self, holder: str, at: int, last_change_at: int | None) -> None:
        super().__init__(
            f"{at} is before the last change of holder {holder} at {last_change_at}: "
            f"the ledger answers only from each holder's last change on"
        )
        self.holder, self.at, self.last_change_at = holder, at, last_change_at


@dataclass(frozen=True, slots=True)
class HolderDelta:
    """What one event adds to one `points` item (every sum a DynamoDB ADD), and when it happened."""

    holder: str
    weighted_seconds: int = 0
    weighted_held: int = 0
    weighted_since_sum: int = 0
    tokens_held: int = 0
    changed_at: int = 0  # block time of the change; the item keeps the latest (`lastChangeAt`)

    def __add__(self, other: HolderDelta) -> HolderDelta:
        assert self.holder == other.holder
        return HolderDelta(
            self.holder,
            self.weighted_seconds + other.weighted_seconds,
            self.weighted_held + other.weighted_held,
            self.weighted_since_sum + other.weighted_since_sum,
            self.tokens_held + other.tokens_held,
            max(self.changed_at, other.changed_at),
        )


@dataclass(frozen=True, slots=True)
class HolderPoints:
    """A `points` item. The running sums give points only from `last_change_at` on: before it, an
    interval the sums already closed (or a token acquired later) would be counted wrongly."""

    weighted_seconds: int = 0
    weighted_held: int = 0
    weighted_since_sum: int = 0
    tokens_held: int = 0
    last_change_at: int | None = None  # None: an item written before the time was stored

    def points_at(self, at: int) -> Fraction:
        return points_at(self, at)

    def answers_at(self, at: int) -> bool:
        """Whether the running sums give this holder's points at `at` (unknowable without the time)."""
        return self.last_change_at is None or at >= self.last_change_at

    def require_answer(self, holder: str, at: int) -> None:
        if not self.answers_at(at):
            raise BeforeLastChange(holder, at, self.last_change_at)

    def plus(self, delta: HolderDelta) -> HolderPoints:
        return HolderPoints(
            self.weighted_seconds + delta.weighted_seconds,
            self.weighted_held + delta.weighted_held,
            self.weighted_since_sum + delta.weighted_since_sum,
            self.tokens_held + delta.tokens_held,
            max(self.last_change_at or 0, delta.changed_at),
        )


@dataclass(frozen=True, slots=True)
class Transition:
    token: TokenState
    # At most one delta per holder (a self-transfer merges into one), never for the zero address:
    # DynamoDB refuses two operations on one item in a transaction.
    deltas: tuple[HolderDelta, ...]
    previous: TokenState | None  # the token as the table knew it
    gap: bool

    @property
    def previous_owner(self) -> str | None:
        return self.previous.owner if self.previous is not None else None


def is_stale(current: TokenState | None, event: ChainEvent) -> bool:
    """A duplicate or an older event than the one the table already reflects."""
    return current is not None and current.last_seq >= event.seq


def transition(current: TokenState | None, event: ChainEvent, weight: int) -> Transition:
    """The token's next state and the holder deltas of applying `event` at its block time.

    The chain wins: the token goes to `event.to_address` even when `event.from_address` is not the
    owner the table knew (a gap). That owner is settled as the table knew it.
    """
    if is_stale(current, event):
        raise ValueError(f"event {event.id} (seq {event.seq}) is not newer than the token's {current}")
    at = event.block_timestamp
    if current is not None and at < current.acquired_at:
        # Block times never go back along a chain: applying it would make the owner's interval negative.
        raise InconsistentEvent(
            f"inconsistent: block.timestamp {at} of seq {event.seq} is earlier than the token's acquiredAt "
            f"{current.acquired_at} (seq {current.last_seq}, event {current.last_event_id})"
        )
    previous_owner = current.owner if current is not None else None
    gap = (previous_owner or ZERO_ADDRESS) != event.from_address

    deltas: dict[str, HolderDelta] = {}
    if current is not None and current.owner != ZERO_ADDRESS:
        w = current.weight if current.weight is not None else weight
        since = current.acquired_at
        deltas[current.owner] = HolderDelta(current.owner, w * (at - since), -w, -w * since, -1, at)
    if event.to_address != ZERO_ADDRESS:
        to = event.to_address
        gained = HolderDelta(to, 0, weight, weight * at, 1, at)
        deltas[to] = deltas[to] + gained if to in deltas else gained

    token = TokenState(event.to_address, at, event.seq, event.id, weight)
    return Transition(token, tuple(deltas.values()), current, gap)


def points_at(row: HolderPoints, at: int) -> Fraction:
    """Exact points of a holder at unix time `at` (a Fraction; callers round for display)."""
    return Fraction(row.weighted_seconds + row.weighted_held * at - row.weighted_since_sum, SECONDS_PER_DAY)
