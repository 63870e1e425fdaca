"""Points rates: points per token per day, by `chainId:contract` (DESIGN §10 `POINTS_PER_DAY`)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_KEY = re.compile(r"[1-9][0-9]*:0x[0-9a-f]{40}")
# A rate times a block timestamp (< 2**32) stays far below DynamoDB's 38 significant digits.
MAX_RATE = 10**12


class RatesError(ValueError):
    pass


@dataclass(frozen=True)
class Rates:
    by_contract: Mapping[str, int] = field(default_factory=dict)
    default: int | None = None

    def weight(self, rate_key: str) -> int | None:
        """The rate for `chainId:contract`, the default when it has none, or None: no rate at all."""
        return self.by_contract.get(rate_key, self.default)

    @classmethod
    def parse(cls, points_per_day: str | None, default: str | None = None, *, source: str = "POINTS_PER_DAY"):
        """Parse the JSON map and the optional default; errors name the variable and the entry."""
        try:
            raw = json.loads(points_per_day) if points_per_day and points_per_day.strip() else {}
        except json.JSONDecodeError as error:
            raise RatesError(f"{source}: not JSON ({error})") from None
        if not isinstance(raw, dict):
            raise RatesError(f"{source}: expected a JSON object of 'chainId:contract' to integer")
        rates: dict[str, int] = {}
        for key, value in raw.items():
            normalised = key.lower()
            if not _KEY.fullmatch(normalised):
                raise RatesError(f"{source}: key {key!r} is not 'chainId:0x<40 hex>'")
            rates[normalised] = _rate(value, f"{source}[{key!r}]")
        default_rate = None
        if default is not None and default.strip():
            try:
                default_rate = _rate(int(default), "DEFAULT_POINTS_PER_DAY")
            except ValueError:
                raise RatesError(f"DEFAULT_POINTS_PER_DAY: not an integer: {default!r}") from None
        return cls(rates, default_rate)


def _rate(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RATE:
        raise RatesError(f"{name}: expected an integer from 0 to {MAX_RATE}, got {value!r}")
    return value
