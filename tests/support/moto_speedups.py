"""moto's DynamoDB made cheap per item, for concurrency tests and benchmarks (DESIGN §9: "make the
local stack faster — honestly, and measured"). Same results as stock moto (tests/unit/test_contention.py
compares them); what changes is only what moto spends:

- a `TransactWriteItems` snapshots only the items it touches to roll back (app/local/moto_transactions.py,
  the local stack's own speed-up), where stock moto deep-copies every table it touches once per item;
- an `UpdateItem` whose expression is plain `SET name = :value, ...` and/or `ADD name :number, ...`
  (what app/store.py writes) is applied directly; its condition still goes through moto's own
  condition evaluation. Stock moto parses, copies and walks an expression tree about a dozen times
  per item (~1-3 ms an item here), which would make moto, not the code under test, the bottleneck.
  Every other expression goes to stock moto, and the request layer parses each distinct update
  expression once (it only lists the names it uses).

Not thread-safe, like moto itself: callers run one moto call at a time (tests/support/contention.py).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import moto.dynamodb.models as moto_dynamodb
import moto.dynamodb.responses as moto_responses
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import ConditionalCheckFailed
from moto.dynamodb.models.dynamo_type import DynamoType

from app.local import moto_transactions

_NAME = r"#?[A-Za-z_][A-Za-z0-9_]*"
_SET = re.compile(rf"\s*({_NAME})\s*=\s*(:[A-Za-z0-9_]+)\s*")
_ADD = re.compile(rf"\s*({_NAME})\s+(:[A-Za-z0-9_]+)\s*")


@contextmanager
def faster_moto() -> Iterator[None]:
    backend = moto_dynamodb.DynamoDBBackend
    real_update = backend.update_item
    installed_here = moto_transactions.install()

    def update_item(
        self: Any,
        table_name: str,
        key: dict[str, Any],
        update_expression: str,
        expression_attribute_names: dict[str, Any],
        expression_attribute_values: dict[str, Any],
        attribute_updates: dict[str, Any] | None = None,
        expected: dict[str, Any] | None = None,
        condition_expression: str | None = None,
        return_values_on_condition_check_failure: str | None = None,
    ) -> Any:
        table = self.get_table(table_name)
        plan = _plain_update(update_expression, expression_attribute_names or {}, expression_attribute_values or {})
        hash_value = DynamoType(key[table.hash_key_attr]) if table.hash_key_attr in key else None
        item = table.get_item(hash_value) if hash_value is not None and not table.has_range_key else None
        direct = (
            plan is not None
            and hash_value is not None
            and not (attribute_updates or expected or table.has_range_key or table.stream_shard)
            and all(name != table.hash_key_attr for _, name, _ in plan)
            and not any(
                action == "ADD" and item is not None and name in item.attrs and not item.attrs[name].is_number()
                for action, name, _ in plan
            )
        )
        if not direct:
            return real_update(
                self,
                table_name,
                key,
                update_expression,
                expression_attribute_names,
                expression_attribute_values,
                attribute_updates,
                expected,
                condition_expression,
                return_values_on_condition_check_failure,
            )
        if condition_expression:
            condition = get_filter_expression(
                condition_expression, expression_attribute_names, expression_attribute_values
            )
            if not condition.expr(item):
                old = (
                    item.to_json()["Attributes"]
                    if item and return_values_on_condition_check_failure == "ALL_OLD"
                    else None
                )
                raise ConditionalCheckFailed(item=old)
        if item is None:
            table.put_item({table.hash_key_attr: key[table.hash_key_attr]})
            item = table.get_item(hash_value)
        for action, name, value in plan:
            current = item.attrs.get(name)
            item.attrs[name] = value if action == "SET" or current is None else current + value
        return item

    # The response layer parses every update expression only to list the names it uses.
    real_parser = moto_responses.UpdateExpressionParser
    moto_responses.UpdateExpressionParser = SimpleNamespace(make=functools.cache(real_parser.make))
    backend.update_item = update_item
    try:
        yield
    finally:
        backend.update_item = real_update
        moto_responses.UpdateExpressionParser = real_parser
        if installed_here:
            moto_transactions.uninstall()


def _plain_update(expression: str, names: dict[str, str], values: dict[str, Any]) -> list[tuple] | None:
    """[(SET|ADD, attribute, DynamoType)] for plain SET and ADD clauses of distinct top-level
    attributes (numbers only for ADD); None for anything else."""
    parts = re.split(r"\b(SET|ADD)\b", expression or "")
    if len(parts) < 3 or parts[0].strip() or len(set(parts[1::2])) != len(parts[1::2]):
        return None
    plan = []
    for action, body in zip(parts[1::2], parts[2::2], strict=True):
        pattern = _SET if action == "SET" else _ADD
        for part in body.split(","):
            match = pattern.fullmatch(part)
            if not match or match.group(2) not in values:
                return None
            name = names.get(match.group(1), match.group(1)) if match.group(1).startswith("#") else match.group(1)
            value = DynamoType(values[match.group(2)])
            if action == "ADD" and not value.is_number():
                return None
            plan.append((action, name, value))
    if len({name for _, name, _ in plan}) != len(plan) or any(name.startswith("#") for _, name, _ in plan):
        return None
    return plan
