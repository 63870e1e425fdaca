"""moto's DynamoDB TransactWriteItems without copying whole tables: the local stack's speed-up.

To roll a failed transaction back, moto deep-copies every table it touches, once per action, before
running it: the cost grows with the table (DESIGN §9: ~230 tx/s empty, ~2 tx/s at 20k items; in the
demo at 200 tokens it was the pipeline's bottleneck, measured in bench/local_moto.py). The
rollback only needs the items the transaction can change, so the snapshot here shares every other
item with the live table and deep-copies just the touched keys. Same semantics: a cancelled
transaction leaves every item as it was, a new item put by it disappears; tests/local prove it.
(Tables with DynamoDB Streams are copied whole, as moto does: their stream records must roll back too.)
"""

from __future__ import annotations

import copy
import threading
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table

_ORIGINAL = DynamoDBBackend.transact_write_items
_touched = threading.local()  # table name -> hash keys the running transaction may change


class _Snapshots:
    """Stands in for the `copy` module inside moto.dynamodb.models while this is installed."""

    def deepcopy(self, value: Any, memo: dict | None = None) -> Any:
        keys = getattr(_touched, "keys", None)
        if keys is not None and isinstance(value, Table) and not getattr(value, "stream_shard", None):
            return _snapshot(value, keys.get(value.name, ()))
        return copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def _snapshot(table: Table, hash_keys: Iterable[DynamoType]) -> Table:
    snapshot = copy.copy(table)
    snapshot.items = defaultdict(dict, table.items)  # untouched items are shared: this transaction cannot change them
    for key in hash_keys:
        if key in table.items:
            snapshot.items[key] = copy.deepcopy(table.items[key])  # update_item changes items in place
    return snapshot


def _touched_keys(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> dict[str, set[DynamoType]]:
    keys: dict[str, set[DynamoType]] = defaultdict(set)
    for action in transact_items:
        kind, op = next(iter(action.items()))
        table = backend.tables.get(op.get("TableName"))
        key = op.get("Item") if kind == "Put" else op.get("Key")
        if table is not None and isinstance(key, dict) and table.hash_key_attr in key:
            keys[table.name].add(DynamoType(key[table.hash_key_attr]))
    return keys


def _transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    _touched.keys = _touched_keys(self, transact_items)
    try:
        return _ORIGINAL(self, transact_items)
    finally:
        _touched.keys = None


def install() -> bool:
    """Install in this process; False when it already was (then leave the uninstall to whoever did)."""
    if DynamoDBBackend.transact_write_items is _transact_write_items:
        return False
    dynamodb_models.copy = _Snapshots()
    DynamoDBBackend.transact_write_items = _transact_write_items
    return True


def uninstall() -> None:
    dynamodb_models.copy = copy
    DynamoDBBackend.transact_write_items = _ORIGINAL
