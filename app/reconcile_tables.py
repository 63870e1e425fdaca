"""Reconcile's reads and repairs of the `tokens` and `points` tables.

Reads are strongly consistent. A repair is conditional on the item being exactly as it was read (the
attributes reconcile recomputes), so an item the consumer changed in between is left alone and
re-checked, never overwritten. Attributes reconcile does not recompute (a holder's `lastChangeAt`)
are neither compared nor written.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from botocore.exceptions import ClientError

from app.events import ZERO_ADDRESS
from app.ledger import HolderPoints, TokenState
from app.reconcile_model import HOLDER_ATTRIBUTES, holder_values
from app.store import Store, holder_from_item, token_from_item


class Tables:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.client = store.client

    # -- reads ------------------------------------------------------------------------------------

    def tokens(self, prefixes: tuple[str, ...]) -> dict[str, TokenState]:
        """Every token of the reconciled contracts (keys starting with `chainId:contract:`)."""
        return {
            item["token"]["S"]: token_from_item(item)
            for item in self._scan(self.store.tokens_table)
            if item["token"]["S"].startswith(prefixes)
        }

    def holders(self) -> dict[str, HolderPoints | None]:
        return {item["holder"]["S"]: holder_from_item(item) for item in self._scan(self.store.points_table)}

    def token(self, key: str) -> TokenState | None:
        return self.store.read_token(key)

    def tokens_by_key(self, keys: Iterable[str]) -> dict[str, TokenState | None]:
        return self.store.prefetch(keys)

    def holder(self, address: str) -> HolderPoints | None:
        item = self.client.get_item(
            TableName=self.store.points_table, Key={"holder": {"S": address}}, ConsistentRead=True
        ).get("Item")
        return holder_from_item(item) if item else None

    def _scan(self, table: str) -> Iterator[dict[str, Any]]:
        for page in self.client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
            yield from page.get("Items", [])

    # -- repairs (each returns False when the item changed since it was read) ---------------------

    def put_token(self, key: str, read: TokenState | None, want: TokenState | None) -> bool:
        if want is None:
            if read is None:
                return True
            return self._write(
                self.client.delete_item,
                TableName=self.store.tokens_table,
                Key={"token": {"S": key}},
                ConditionExpression="lastSeq = :readSeq",
                ExpressionAttributeValues={":readSeq": _n(read.last_seq)},
            )
        chain_id, contract, token_id = key.split(":")
        values = {
            ":owner": {"S": want.owner},
            ":at": _n(want.acquired_at),
            ":seq": _n(want.last_seq),
            ":id": {"S": want.last_event_id},
            ":w": _n(want.weight or 0),
            ":chain": _n(int(chain_id)),
            ":contract": {"S": contract},
            ":tokenId": {"S": token_id},
        }
        names = {"#owner": "owner", "#token": "token"}
        if read is None:
            condition = "attribute_not_exists(#token)"
        else:
            condition = "lastSeq = :readSeq AND #owner = :readOwner AND acquiredAt = :readAt"
            values |= {":readSeq": _n(read.last_seq), ":readOwner": {"S": read.owner}, ":readAt": _n(read.acquired_at)}
        return self._write(
            self.client.update_item,
            TableName=self.store.tokens_table,
            Key={"token": {"S": key}},
            UpdateExpression=(
                "SET #owner = :owner, acquiredAt = :at, lastSeq = :seq, lastEventId = :id, weight = :w, "
                "chainId = :chain, contract = :contract, tokenId = :tokenId"
            ),
            ConditionExpression=condition,
            ExpressionAttributeNames=names if read is None else {"#owner": "owner"},
            ExpressionAttributeValues=values,
        )

    def put_holder(self, address: str, read: HolderPoints | None, want: HolderPoints) -> bool:
        if address == ZERO_ADDRESS:
            return True
        names, values, sets, conditions = {}, {}, [], []
        for index, (attribute, old, new) in enumerate(
            zip(HOLDER_ATTRIBUTES, holder_values(read), holder_values(want), strict=True)
        ):
            names[f"#a{index}"] = attribute
            values[f":new{index}"] = _n(new)
            sets.append(f"#a{index} = :new{index}")
            if old == 0:
                # An absent attribute reads as 0 (store.holder_from_item).
                values[f":old{index}"] = _n(0)
                conditions.append(f"(attribute_not_exists(#a{index}) OR #a{index} = :old{index})")
            else:
                values[f":old{index}"] = _n(old)
                conditions.append(f"#a{index} = :old{index}")
        return self._write(
            self.client.update_item,
            TableName=self.store.points_table,
            Key={"holder": {"S": address}},
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression=" AND ".join(conditions),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    @staticmethod
    def _write(call: Any, **request: Any) -> bool:
        if not request.get("ExpressionAttributeValues"):
            request.pop("ExpressionAttributeValues", None)
        try:
            call(**request)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}
