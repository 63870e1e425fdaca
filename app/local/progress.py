"""The demo's live progress: blocks read, records published, applied, lag.

rich's live display on a terminal; elsewhere (a log, a test, CI) one plain line every few seconds.
A background thread samples `read()`; notes (faults injected, phases) print above the live view.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table


@dataclass(frozen=True)
class Snapshot:
    head: int  # the chain's newest block
    checkpoint: int  # the monitor's checkpoint: every record up to this block is on the stream
    published: int  # records the mapping has read from the stream
    applied: int  # records the consumer has handled (applied, skipped as duplicates, quarantined)
    failed: int  # records the mapping sent to the on-failure destination
    monitor: str  # running / killed / stopped

    @property
    def blocks_behind(self) -> int:
        return max(0, self.head - self.checkpoint)

    @property
    def records_behind(self) -> int:
        return max(0, self.published - self.applied - self.failed)

    def line(self) -> str:
        return (
            f"progress      head {self.head}, monitor {self.monitor} at block {self.checkpoint} "
            f"({self.blocks_behind} behind); records published {self.published}, applied {self.applied}, "
            f"failed {self.failed}, lag {self.records_behind}"
        )

    def table(self) -> Table:
        table = Table(title="ngu-points local pipeline", title_justify="left")
        for column in ("head", "monitor", "blocks read", "behind", "published", "applied", "failed", "lag"):
            table.add_column(column, justify="right")
        table.add_row(
            str(self.head),
            self.monitor,
            str(self.checkpoint),
            str(self.blocks_behind),
            str(self.published),
            str(self.applied),
            str(self.failed),
            str(self.records_behind),
        )
        return table


class ProgressView:
    def __init__(self, read: Callable[[], Snapshot], out: TextIO, interval: float | None = None) -> None:
        self.read = read
        self.out = out
        self.console = Console(file=out, highlight=False)
        self.live_view = self.console.is_terminal
        self.interval = interval if interval is not None else (0.25 if self.live_view else 2.0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live: Live | None = None
        self._lock = threading.Lock()

    def note(self, text: str) -> None:
        with self._lock:
            if self._live is not None:
                self._live.console.print(text, markup=False)
            else:
                print(text, file=self.out, flush=True)

    def __enter__(self) -> ProgressView:
        if self.live_view:
            self._live = Live(console=self.console, auto_refresh=False, transient=False)
            self._live.start()
        self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._show()

    def _show(self) -> None:
        try:
            snapshot = self.read()
        except Exception as error:  # a sample that fails is skipped, never fatal
            snapshot = None
            reason = error
        with self._lock:
            if snapshot is None:
                if self._live is None:
                    print(f"progress      (unavailable: {reason})", file=self.out, flush=True)
            elif self._live is not None:
                self._live.update(snapshot.table(), refresh=True)
            else:
                print(snapshot.line(), file=self.out, flush=True)

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if exc[0] is None:
            self._show()  # the final numbers
        if self._live is not None:
            self._live.stop()
            self._live = None
