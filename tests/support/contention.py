"""DynamoDB under contention, for tests and bench/: moto plus round-trip latency and item conflicts.

`with Contention(latency) as contention: contention.attach(client)` registers botocore event
handlers on a client (inside `mock_aws`), so the code under test keeps its own client, retries and
error handling. Every client attached to one `Contention` shares its model of the service:

- every call takes `latency` seconds;
- a `TransactWriteItems` holds each item it touches for its round trip. Another one touching a held
  item is cancelled (`TransactionCanceledException`, reason `TransactionConflict` on the held items
  and `None` on the others), and a `PutItem` / `UpdateItem` / `DeleteItem` of a held item fails with
  `TransactionConflictException`, as DynamoDB documents ("Transaction conflict handling"). Reads are
  never refused: they see the last committed state. A conflicted call takes its round trip too;
- moto runs one call at a time: its backend is not thread-safe (a cancelled transaction restores
  whole tables from a copy, which would undo another thread's write in between), and runs with
  tests/support/moto_speedups.py, so that a benchmark measures the code under test, not moto.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from typing import Any

from botocore.awsrequest import AWSResponse

from tests.support.moto_speedups import faster_moto

_SINGLE_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem"})
ItemId = tuple[str, str]  # (table, key as canonical JSON)


class Contention:
    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.conflicts: Counter[str] = Counter()  # refused calls by operation
        self.moto_seconds = 0.0  # time moto spent on the calls, one at a time
        self._held: set[ItemId] = set()
        self._lock = threading.Lock()  # guards _held and conflicts
        self._moto = threading.Lock()  # one moto call at a time
        self._speedups: Any = None

    def attach(self, client: Any) -> Any:
        events = client.meta.events
        events.register("before-call.dynamodb.*", self._before_call)
        events.register("after-call.dynamodb.*", self._after_call)
        events.register("after-call-error.dynamodb.*", self._after_call)
        return client

    def holding(self) -> int:
        """How many items in-flight transactions hold now."""
        with self._lock:
            return len(self._held)

    def __enter__(self) -> Contention:
        self._speedups = faster_moto()
        self._speedups.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._speedups.__exit__(*exc)

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
        time.sleep(self.latency)
        if refused:
            return _conflict(operation, held)
        if operation == "TransactWriteItems":
            # The round trip is over: what moto spends applying it is an artefact, not a hold.
            with self._lock:
                self._held.difference_update(touched)
        self._moto.acquire()
        context["contention_moto"] = time.perf_counter()
        return None

    def _after_call(self, context: dict[str, Any], **_: Any) -> None:
        started = context.pop("contention_moto", None)
        if started is not None:
            self.moto_seconds += time.perf_counter() - started
            self._moto.release()


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
