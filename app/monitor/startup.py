"""Start-up that waits: the node or AWS being unreachable at boot is a state to wait out, not a
reason to exit. systemd's start limit once left a monitor stopped after a two-minute node outage;
now each failed try logs one warning line, counts `ProcessingErrors` (flushed at once, with
`WebSocketConnected` 0, so the heartbeat shows a live but disconnected monitor while CloudWatch is
reachable), and tries again after a full-jitter backoff. Configuration errors are not retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from app.monitor.backoff import Backoff
from app.monitor.telemetry import Telemetry, logger

T = TypeVar("T")


class Unreachable(Exception):
    """A dependency (the node, an AWS service) did not answer; worth waiting for."""


class Waiter:
    def __init__(
        self,
        telemetry: Telemetry,
        stopping: asyncio.Event,
        *,
        backoff: Backoff,
        transient: tuple[type[BaseException], ...],
    ) -> None:
        self.telemetry = telemetry
        self.stopping = stopping
        self.backoff = backoff
        self.transient = (Unreachable, TimeoutError, *transient)
        self.attempts = 0

    async def until_ready(self, key: str, where: str, attempt: Callable[[], Awaitable[T]]) -> T | None:
        """`attempt()` until it succeeds; None if a stop was requested first."""
        tries = 0
        while not self.stopping.is_set():
            try:
                return await attempt()
            except self.transient as error:
                tries += 1
                self.attempts += 1
                delay = self.backoff.delay(tries)
                reason = str(error) or type(error).__name__
                logger.warning(
                    f"{key}: {where} unreachable ({reason}); waiting {delay:.1f}s (attempt {tries})",
                    extra={"key": key, "attempt": tries, "retry_in_seconds": round(delay, 2)},
                )
                self.telemetry.count("ProcessingErrors")
                await asyncio.to_thread(self.telemetry.flush, quiet=True)
                stopper = asyncio.ensure_future(self.stopping.wait())
                try:
                    await asyncio.wait_for(asyncio.shield(stopper), delay)
                except TimeoutError:
                    pass
                finally:
                    stopper.cancel()
        return None
