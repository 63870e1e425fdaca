"""Exponential backoff with full jitter, in one place for every retry loop the monitor owns.

Full jitter (the AWS architecture blog's comparison): sleep U(0, min(cap, base * 2**attempt)); it
spreads retries of many records or reconnects so that they do not come back in lockstep.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    base: float = 0.05
    cap: float = 5.0

    def delay(self, attempt: int) -> float:
        """The wait before retry number `attempt` (1 = the first retry)."""
        return random.uniform(0, min(self.cap, self.base * 2 ** min(attempt, 32)))
