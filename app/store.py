"""DynamoDB adapter for the points ledger (DESIGN §4): table definitions, apply, and operator reads.

A run of events costs one `TransactWriteItems` per group (app/batch.py: each token's optimistic
lock plus one ADD per holder, up to 100 items); a batch prefetches every token it touches with
`BatchGetItem`. Throttling is retried by botocore (adaptive mode); only the semantics botocore
cannot know are retried here: a lost optimistic lock (re-read and re-plan) and a transaction
cancelled by a conflict on a shared item.
"""

from __future__ import annotations

import heapq
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction
from typing import Any

from botocore.exceptions import ClientError

from app import aws
from app.batch import MAX_ITEMS, Group, Pending, TokenWrite, plan
from app.events import ChainEvent
from app.ledger import HolderDelta, HolderPoints, TokenState, Transition

BATCH_GET_LIMIT = 100
_RETRYABLE_CANCELLATIONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})


def dynamodb_client(**kwargs: Any) -> Any:
    return aws.client("dynamodb", **kwargs)


def tokens_table_definition(name: str) -> dict[str, Any]:
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": "token", "AttributeType": "S"},
            {"AttributeName": "owner", "AttributeType": "S"},
        ],
        "KeySchema": [{"AttributeName": "token", "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "owner-index",
                "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    }


def points_table_definition(name: str) -> dict[str, Any]:
    return _single_key_table(name, "holder")


def monitor_table_definition(name: str) -> dict[str, Any]:
    return _single_key_table(name, "id")


def _single_key_table(name: str, key: str) -> dict[str, Any]:
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": key, "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": key, "KeyType": "HASH"}],
    }


def create_tables(client: Any, *, tokens: str, points: str, monitor: str | None = None) -> None:
    """Create the tables (tests and the local stack; production tables come from Pulumi)."""
    definitions = [tokens_table_definition(tokens), points_table_definition(points)]
    if monitor:
        definitions.append(monitor_table_definition(monitor))
    for definition in definitions:
        client.create_table(**definition)
    for definition in definitions:
        client.get_waiter("table_exists").wait(TableName=definition["TableName"])


class Outcome(Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class ApplyResult:
    outcome: Outcome
    state: TokenState | None  # the token as the table now holds it
    transition: Transition | None = None
    attempts: int = 1

    @property
    def gap(self) -> bool:
        return self.transition is not None and self.transition.gap


@dataclass(frozen=True, slots=True)
class Committed:
    group: Group  # as committed: its steps are the events it consumed, in order
    attempts: int


class LostLocks(Exception):
    """Conditions cancelled a group: tokens' (each key maps to the item DynamoDB returned, or None:
    re-read it) and holders' `lastChangeAt` (holder -> the time refused: a later one is kept)."""

    def __init__(self, current: dict[str, TokenState | None], later: dict[str, int]) -> None:
        self.current = current
        self.later = later


class StoreError(RuntimeError):
    """Events could not be applied after the retries this store owns."""


UNREAD: Any = object()  # `known` not given: read the token first


class Store:
    def __init__(
        self,
        tokens_table: str,
        points_table: str,
        *,
        client: Any = None,
        max_attempts: int = 8,
        max_items: int = MAX_ITEMS,
    ):
        self.tokens_table = tokens_table
        self.points_table = points_table
        self.client = client or dynamodb_client()
        self.max_attempts = max_attempts
        self.max_items = max_items

    # -- writes -----------------------------------------------------------------------------------

    def apply(self, event: ChainEvent, weight: int, known: TokenState | None = UNREAD) -> ApplyResult:
        """Apply one event exactly once. `known` is the token as prefetched (saves the read)."""
        states = {} if known is UNREAD else {event.token_key: known}
        committed = self.apply_group([Pending(event, weight)], states)
        if committed.group.inconsistent:
            raise committed.group.inconsistent
        (step,) = committed.group.steps
        if step.transition is None:
            return ApplyResult(Outcome.DUPLICATE, states[event.token_key], attempts=committed.attempts)
        return ApplyResult(Outcome.APPLIED, step.transition.token, step.transition, attempts=committed.attempts)

    def apply_group(
        self, pending: Sequence[Pending], states: dict[str, TokenState | None], *, max_events: int | None = None
    ) -> Committed:
        """Apply the longest prefix of `pending` that fits one transaction, exactly once.

        `states` are the tokens as last read (tokens missing from it are read first); it is updated
        to what the table holds afterwards. A lost lock re-plans the group from the states DynamoDB
        returned (events may turn into duplicates, or the group may shrink); a conflict retries
        after a backoff. Exactly-once rests on the token conditions alone: the holders' ADDs
        commit only with them.
        """
        unread = {p.event.token_key for p in pending} - states.keys()
        if unread:
            states.update(self.prefetch(unread))
        # Holders whose item records a later change than the time the group would set: their update
        # only ADDs (see holder_update). holder -> the change time its condition refused.
        later: dict[str, int] = {}
        for attempt in range(1, self.max_attempts + 1):
            group = plan(pending, states, max_items=self.max_items, max_events=max_events)
            if not group.tokens:  # nothing to write: duplicates only, or an inconsistent event first
                return Committed(group, attempt)
            try:
                self._commit(group, later)
            except LostLocks as lost:
                unknown = [key for key, state in lost.current.items() if state is None]
                states.update({key: state for key, state in lost.current.items() if state is not None})
                states.update(self.prefetch(unknown) if unknown else {})
                later.update(lost.later)
                continue
            except _Contended:
                _backoff(attempt)
                continue
            states.update(group.states())
            return Committed(group, attempt)
        first = pending[0].event.id
        more = f" and the {len(group.steps) - 1} after it in its group" if len(group.steps) > 1 else ""
        raise StoreError(f"event {first}{more}: gave up after {self.max_attempts} attempts (lock or conflicts)")

    def _commit(self, group: Group, later: dict[str, int]) -> None:
        updates = [self._token_update(write) for write in group.tokens]
        updates += [
            holder_update(self.points_table, d, keep_latest_change=d.changed_at > later.get(d.holder, -1))
            for d in group.holders
        ]
        try:
            self.client.transact_write_items(TransactItems=[{"Update": update} for update in updates])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = error.response.get("CancellationReasons") or []
            lost = {
                write.key: token_from_item(reason["Item"]) if reason.get("Item") else None
                for write, reason in zip(group.tokens, reasons, strict=False)
                if reason.get("Code") == "ConditionalCheckFailed"
            }
            kept = later_change_kept(updates, reasons)
            if lost or kept:
                raise LostLocks(lost, {d.holder: d.changed_at for d in group.holders if d.holder in kept}) from None
            if any(r.get("Code") in _RETRYABLE_CANCELLATIONS for r in reasons):
                raise _Contended() from None
            raise

    def _token_update(self, write: TokenWrite) -> dict[str, Any]:
        token, event, read = write.state, write.event, write.read
        update: dict[str, Any] = {
            "TableName": self.tokens_table,
            "Key": {"token": {"S": write.key}},
            "UpdateExpression": (
                "SET #owner = :owner, acquiredAt = :at, lastSeq = :seq, lastEventId = :id, weight = :w, "
                "chainId = :chain, contract = :contract, tokenId = :tokenId"
            ),
            "ExpressionAttributeNames": {"#owner": "owner"},
            "ExpressionAttributeValues": {
                ":owner": {"S": token.owner},
                ":at": _n(token.acquired_at),
                ":seq": _n(token.last_seq),
                ":id": {"S": token.last_event_id},
                ":w": _n(token.weight),
                ":chain": _n(event.chain_id),
                ":contract": {"S": event.contract},
                ":tokenId": {"S": str(event.token_id)},
            },
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if read is None:
            update["ConditionExpression"] = "attribute_not_exists(#token)"
            update["ExpressionAttributeNames"]["#token"] = "token"
        else:
            update["ConditionExpression"] = "lastSeq = :readSeq"
            update["ExpressionAttributeValues"][":readSeq"] = _n(read.last_seq)
        return update

    # -- reads ------------------------------------------------------------------------------------

    def read_token(self, token_key: str) -> TokenState | None:
        response = self.client.get_item(
            TableName=self.tokens_table, Key={"token": {"S": token_key}}, ConsistentRead=True
        )
        item = response.get("Item")
        return token_from_item(item) if item else None

    def prefetch(self, token_keys: Iterable[str]) -> dict[str, TokenState | None]:
        """Strongly consistent states of many tokens: one BatchGetItem per 100 keys (plus retries of
        unprocessed keys). Keys absent from the table map to None."""
        keys = list(dict.fromkeys(token_keys))
        states: dict[str, TokenState | None] = dict.fromkeys(keys)
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            request = {
                self.tokens_table: {
                    "Keys": [{"token": {"S": k}} for k in keys[start : start + BATCH_GET_LIMIT]],
                    "ConsistentRead": True,
                }
            }
            attempt = 0
            while request:
                attempt += 1
                response = self.client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.tokens_table, []):
                    states[item["token"]["S"]] = token_from_item(item)
                request = response.get("UnprocessedKeys") or {}
                if request:
                    _backoff(attempt)
        return states

    def token(self, token_key: str) -> dict[str, Any] | None:
        response = self.client.get_item(TableName=self.tokens_table, Key={"token": {"S": token_key}})
        item = response.get("Item")
        return _plain(item) if item else None

    def tokens_of(self, owner: str) -> list[dict[str, Any]]:
        """Every token the table says `owner` holds (the `owner-index` GSI: eventually consistent)."""
        items: list[dict[str, Any]] = []
        pages = self.client.get_paginator("query").paginate(
            TableName=self.tokens_table,
            IndexName="owner-index",
            KeyConditionExpression="#owner = :owner",
            ExpressionAttributeNames={"#owner": "owner"},
            ExpressionAttributeValues={":owner": {"S": owner.lower()}},
        )
        for page in pages:
            items.extend(_plain(item) for item in page.get("Items", []))
        return sorted(items, key=lambda item: item["token"])

    def holder(self, address: str) -> HolderPoints | None:
        response = self.client.get_item(TableName=self.points_table, Key={"holder": {"S": address.lower()}})
        item = response.get("Item")
        return holder_from_item(item) if item else None

    def holders(self) -> Iterator[tuple[str, HolderPoints]]:
        for page in self.client.get_paginator("scan").paginate(TableName=self.points_table):
            for item in page.get("Items", []):
                yield item["holder"]["S"], holder_from_item(item)

    def leaderboard(self, at: int, limit: int = 10) -> list[tuple[str, Fraction, HolderPoints]]:
        """The top holders at `at`; raises BeforeLastChange when `at` precedes any holder's last change."""
        rows = []
        for holder, row in self.holders():
            row.require_answer(holder, at)
            rows.append((holder, row.points_at(at), row))
        return heapq.nlargest(limit, rows, key=lambda r: (r[1], r[0]))


class _Contended(Exception):
    pass


def holder_update(points_table: str, delta: HolderDelta, *, keep_latest_change: bool = True) -> dict[str, Any]:
    """The `points` item's update: ADD the delta and keep `lastChangeAt` = the latest change time.

    ADDs commute, so events of different tokens may land in any order across shards; a plain
    `SET lastChangeAt` would then leave an older time behind. The SET is conditional on the item
    holding no later time. When that condition fails (DynamoDB cancels the whole transaction with
    ConditionalCheckFailed on this item), the item already records a later change: retry the
    transaction with `keep_latest_change=False` for it (ADDs only). The time stays the exact maximum.
    """
    update: dict[str, Any] = {
        "TableName": points_table,
        "Key": {"holder": {"S": delta.holder}},
        "UpdateExpression": "ADD weightedSeconds :ws, weightedHeld :wh, weightedSinceSum :wss, tokensHeld :th",
        "ExpressionAttributeValues": {
            ":ws": _n(delta.weighted_seconds),
            ":wh": _n(delta.weighted_held),
            ":wss": _n(delta.weighted_since_sum),
            ":th": _n(delta.tokens_held),
        },
    }
    if keep_latest_change:
        update["UpdateExpression"] += " SET lastChangeAt = :at"
        update["ConditionExpression"] = "attribute_not_exists(lastChangeAt) OR lastChangeAt <= :at"
        update["ExpressionAttributeValues"][":at"] = _n(delta.changed_at)
    return update


def later_change_kept(updates: list[dict[str, Any]], reasons: list[dict[str, Any]]) -> frozenset[str]:
    """Holders whose `lastChangeAt` condition cancelled the transaction. `updates`: the Update of
    every item in transaction order (tokens too), aligned with the CancellationReasons."""
    return frozenset(
        update["Key"]["holder"]["S"]
        for update, reason in zip(updates, reasons, strict=False)
        if reason.get("Code") == "ConditionalCheckFailed"
        and "holder" in update["Key"]
        and "ConditionExpression" in update
    )


def token_from_item(item: dict[str, Any]) -> TokenState:
    return TokenState(
        owner=item["owner"]["S"],
        acquired_at=int(item["acquiredAt"]["N"]),
        last_seq=int(item["lastSeq"]["N"]),
        last_event_id=item.get("lastEventId", {}).get("S", ""),
        # Items written by the legacy monitor carry no weight: they settle at the current rate.
        weight=int(item["weight"]["N"]) if "weight" in item else None,
    )


def holder_from_item(item: dict[str, Any]) -> HolderPoints:
    def number(name: str) -> int:
        return int(item[name]["N"]) if name in item else 0

    return HolderPoints(
        number("weightedSeconds"),
        number("weightedHeld"),
        number("weightedSinceSum"),
        number("tokensHeld"),
        int(item["lastChangeAt"]["N"]) if "lastChangeAt" in item else None,
    )


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, typed in item.items():
        ((kind, value),) = typed.items()
        out[name] = int(value) if kind == "N" else value
    return out


def _backoff(attempt: int, base: float = 0.02, cap: float = 1.0) -> None:
    """Full jitter (AWS architecture blog): sleep U(0, min(cap, base * 2**attempt))."""
    time.sleep(random.uniform(0, min(cap, base * 2**attempt)))
