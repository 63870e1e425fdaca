"""SIGINT / SIGTERM for the demo: the first one unwinds the main thread (every `with` closes, so every
process the demo started is stopped) and the exit status is 128 + the signal, as a shell reports it.

A signal landing between `Popen` forking a child and the caller keeping its handle would leak that
child, so starting a process is `shielded()`: the signal waits until the handle is kept. Further
signals during the clean-up are ignored, so a second Ctrl-C cannot interrupt the stopping itself.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(BaseException):
    """Raised in the main thread by the first SIGINT or SIGTERM (a BaseException, like KeyboardInterrupt)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


class StopSignals:
    def __init__(self) -> None:
        self.received: int | None = None
        self._shield = 0
        self._raised = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        global _active
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        _active = self
        return self

    def __exit__(self, *_: Any) -> None:
        global _active
        _active = None
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.received is not None:
            return
        self.received = signum
        if self._shield == 0:
            self._raise()

    def _raise(self) -> None:
        if self.received is not None and not self._raised:
            self._raised = True
            raise Stopped(self.received)

    @contextmanager
    def shield(self) -> Iterator[None]:
        self._shield += 1
        try:
            yield
        finally:
            self._shield -= 1
        if self._shield == 0:
            self._raise()


_active: StopSignals | None = None


@contextmanager
def shielded() -> Iterator[None]:
    """Delay a stop signal until the block ends (a no-op when no StopSignals is installed)."""
    if _active is None:
        yield
        return
    with _active.shield():
        yield
