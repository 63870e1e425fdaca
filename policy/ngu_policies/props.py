"""Reading resource inputs as the analyzer delivers them.

Inputs arrive camelCase, numbers as floats (protobuf Struct), and during preview any value that
depends on another resource's output is unknown: the runtime wraps the inputs in a proxy that
raises on access. Policies read through `get` and `elements`, which turn that into `UNKNOWN`, so a
check whose inputs are not known yet is skipped instead of crashing (it runs again on `pulumi up`).
"""

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyConfigSchema
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()

_SENTINELS = frozenset(
    {
        UNKNOWN_ARCHIVE_VALUE,
        UNKNOWN_ARRAY_VALUE,
        UNKNOWN_ASSET_VALUE,
        UNKNOWN_BOOLEAN_VALUE,
        UNKNOWN_NUMBER_VALUE,
        UNKNOWN_OBJECT_VALUE,
        UNKNOWN_STRING_VALUE,
    }
)


def is_unknown(value: Any) -> bool:
    return value is UNKNOWN or (isinstance(value, str) and value in _SENTINELS)


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def get(value: Any, *path: str | int, default: Any = None) -> Any:
    """The input at `path`, `default` when absent or null, `UNKNOWN` when not known yet."""
    for key in path:
        if is_unknown(value):
            return UNKNOWN
        try:
            if isinstance(value, Mapping) or (_is_list(value) and isinstance(key, int)):
                value = value[key]
            else:
                return default
        except (KeyError, IndexError):
            return default
        except UnknownValueError:
            return UNKNOWN
        if value is None:
            return default
    return UNKNOWN if is_unknown(value) else value


def elements(value: Any) -> Any:
    """The items of a list input (unknown items as `UNKNOWN`); [] when absent; `UNKNOWN` when the list is."""
    if value is None:
        return []
    if is_unknown(value):
        return UNKNOWN
    if not _is_list(value):
        return [value]
    return [get(value, i) for i in range(len(value))]


def known_strings(value: Any) -> Iterator[str]:
    """The known string items of a string-or-list input (IAM's `Action: "x"` or `Action: ["x", "y"]`)."""
    items = elements(value)
    if items is UNKNOWN:
        return
    for item in items:
        if isinstance(item, str) and not is_unknown(item):
            yield item


def number(value: Any) -> Any:
    """A numeric input as float; `UNKNOWN` stays unknown; None when absent or not a number."""
    if is_unknown(value):
        return UNKNOWN
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def fmt(value: float) -> str:
    """Numbers as a person writes them: 24, not 24.0."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def schema(**properties: dict[str, Any]) -> PolicyConfigSchema:
    """A policy's config schema; every property carries its `default`, so the CLI fills gaps."""
    for name, spec in properties.items():
        if "default" not in spec:
            raise ValueError(f"config property {name!r} needs a default")
    return PolicyConfigSchema(properties=properties)


def settings(args: Any, config_schema: PolicyConfigSchema) -> dict[str, Any]:
    """The policy's configuration: schema defaults, overridden by what the stack configured."""
    values = {name: spec["default"] for name, spec in config_schema.properties.items()}
    values.update(args.get_config() or {})
    return values
