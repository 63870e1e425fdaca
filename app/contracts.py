"""Rules over the monitored contracts and their points rates, in one home.

The monitor's config (app/monitor/config.py) and the stack settings (components/settings.py) both
check them: the stack must refuse what the monitor would refuse at boot. Dependency-free, so the
stack program may import it. Each rule returns the reason (without the key, which each caller
names its own way) or None.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def rate_key(chain_id: int, address: str) -> str:
    """A contract's key in the points rates (`POINTS_PER_DAY`, `points.perDay`)."""
    return f"{chain_id}:{address.lower()}"


def listed_twice(addresses: Sequence[str]) -> str | None:
    seen: dict[str, int] = {}
    for index, address in enumerate(addresses):
        first = seen.setdefault(address.lower(), index)
        if first != index:
            return f"an address is listed twice ({address.lower()} at [{first}] and [{index}])"
    return None


def unrated(
    chain_id: int,
    addresses: Sequence[str],
    rates: Mapping[str, int],
    default: int | None,
    *,
    contracts_key: str,
    default_key: str,
) -> str | None:
    """A monitored contract without a rate and no default: the consumer would quarantine every event."""
    if default is not None:
        return None
    for index, address in enumerate(addresses):
        key = rate_key(chain_id, address)
        if key not in rates:
            return f"no rate for {contracts_key}[{index}] ({key}) and no {default_key}"
    return None
