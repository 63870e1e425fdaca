"""DynamoDB under contention, for tests and bench/: moto plus round-trip latency and item conflicts.

`with Contention(latency) as contention: contention.attach(client)` registers botocore event
handlers on a client (inside `mock_aws`), so the code under test keeps its own client, retries and
error handling. Every client attached to one `Contention` shares its model of the service:

- every call takes `latency` seconds;
- a `TransactWriteItems` holds each item it touches for the whole call. Another one touching a held
  item is cancelled (`TransactionCanceledException`, reason `TransactionConflict` on the held items
  and `None` on the others), and a `PutItem` / `UpdateItem` / `DeleteItem` of a held item fails with
  `TransactionConflictException`, as DynamoDB documents ("Transaction conflict handling"). Reads are
  never refused: they see the last committed state. A conflicted call takes its round trip too;
- moto runs one call at a time: its backend is not thread-safe (a cancelled transaction restores
  whole tables from a copy, which would undo another thread's write in between);
- moto's transaction rollback copies only the items the transaction touches, not whole tables:
  otherwise each transaction costs time in proportion to the table (~2 tx/s at 20k items) and a
  benchmark would measure moto's copying, not the code under test.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections import Counter, defaultdict
from types import SimpleNamespace
from typing import Any

import moto.dynamodb.models as moto_dynamodb
from botocore.awsrequest import AWSResponse
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table

_SINGLE_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem"})
ItemId = tuple[str, str]  # (table, key as canonical JSON)


class Contention:
    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.conflicts: Counter[str] = Counter()  # refused calls by operation
        self._held: set[ItemId] = set()
        self._lock = threading.Lock()  # guards _held and conflicts
        self._moto = threading.Lock()  # one moto call at a time
        self._touched: dict[str, set[str]] = {}  # what the transaction inside moto now touches
        self._real_copy: Any = None

    def attach(self, client: Any) -> Any:
        events = client.meta.events
        events.register("before-call.dynamodb.*", self._before_call)
        events.register("after-call.dynamodb.*", self._after_call)
        events.register("after-call-error.dynamodb.*", self._after_call)
        return client

    def __enter__(self) -> Contention:
        self._real_copy = moto_dynamodb.copy
        moto_dynamodb.copy = SimpleNamespace(deepcopy=self._snapshot, copy=copy.copy)
        return self

    def __exit__(self, *_: object) -> None:
        moto_dynamodb.copy = self._real_copy

    # -- botocore handlers ------------------------------------------------------------------------

    def _before_call(self, model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> Any:
        operation = model.name
        body = json.loads(params.get("body") or b"{}")
        touched = _touched(operation, body)
        with self._lock:
            held = [item in self._held for item in touched]
            refused = any(held)
            if refused:
                self.conflicts[operation] += 1
            elif operation == "TransactWriteItems":
                self._held.update(touched)
                context["contention_held"] = touched
        time.sleep(self.latency)
        if refused:
            return _conflict(operation, held)
        self._moto.acquire()
        context["contention_moto"] = True
        self._touched = _by_table(touched)
        return None

    def _after_call(self, context: dict[str, Any], **_: Any) -> None:
        if context.pop("contention_moto", False):
            self._touched = {}
            self._moto.release()
        held = context.pop("contention_held", None)
        if held:
            with self._lock:
                self._held.difference_update(held)

    def _snapshot(self, value: Any) -> Any:
        touched = self._touched.get(getattr(value, "name", None)) if isinstance(value, Table) else None
        if touched is None or value.has_range_key:
            return copy.deepcopy(value)
        clone = copy.copy(value)
        clone.items = defaultdict(dict, value.items)
        for key in touched:
            hash_value = DynamoType(json.loads(key)[value.hash_key_attr])
            if hash_value in value.items:
                clone.items[hash_value] = copy.deepcopy(value.items[hash_value])
        return clone


def _touched(operation: str, body: dict[str, Any]) -> list[ItemId]:
    if operation == "TransactWriteItems":
        ops = [next(iter(item.values())) for item in body.get("TransactItems", [])]
    elif operation in _SINGLE_WRITES:
        ops = [body]
    else:
        return []
    if any("Key" not in op for op in ops):
        # A Put names its key among its attributes, and the key schema is not known here.
        raise NotImplementedError(f"{operation}: the contention model identifies items by Key; Put is not modelled")
    return [(op["TableName"], json.dumps(op["Key"], sort_keys=True)) for op in ops]


def _by_table(items: list[ItemId]) -> dict[str, set[str]]:
    tables: dict[str, set[str]] = defaultdict(set)
    for table, key in items:
        tables[table].add(key)
    return tables


def _conflict(operation: str, held: list[bool]) -> tuple[AWSResponse, dict[str, Any]]:
    if operation == "TransactWriteItems":
        codes = ["TransactionConflict" if h else "None" for h in held]
        error = {
            "Error": {
                "Code": "TransactionCanceledException",
                "Message": f"Transaction cancelled, please refer cancellation reasons for specific reasons [{', '.join(codes)}]",
            },
            "CancellationReasons": [
                {"Code": c, "Message": "Transaction is ongoing for the item"} if c != "None" else {"Code": c}
                for c in codes
            ],
        }
    else:
        error = {
            "Error": {
                "Code": "TransactionConflictException",
                "Message": "Transaction is ongoing for the item",
            }
        }
    error["ResponseMetadata"] = {"HTTPStatusCode": 400, "HTTPHeaders": {}, "RetryAttempts": 0}
    return AWSResponse("", 400, {}, None), error
