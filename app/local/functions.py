"""Lambda execution environments for the local stack: one process each, as Lambda gives each
concurrent invocation its own environment.

The handler is not safe to run in threads of one process: powertools' Logger keeps the correlation
id and Lambda context keys, and Metrics its metric set, at module level, so one batch's flush would
emit (and clear) another's metrics and its log lines would carry the other's ids. The mapping
emulator's lanes therefore invoke through this pool: each environment is a separate interpreter
that imports the handler once (a cold start) and then serves one invocation at a time.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import time
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any

from app.local.esm import InvocationContext
from app.local.signals import shielded

_handler: Any = None


class FunctionError(Exception):
    """The handler raised (or timed out): Lambda reports a function error to the mapping."""


def _start_environment(handler_path: str, environment: dict[str, str], log: str | None) -> None:
    global _handler
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the demo stops its environments itself
    if log is not None:  # the function's output goes to its log, as Lambda's goes to CloudWatch Logs
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    os.environ.update(environment)
    module, name = handler_path.rsplit(".", 1)
    _handler = getattr(importlib.import_module(module), name)


def _invoke(event: dict[str, Any], remaining_ms: int) -> tuple[bool, Any]:
    context = InvocationContext(deadline=time.monotonic() + remaining_ms / 1000)
    try:
        return True, _handler(event, context)
    except Exception as error:  # crosses the process boundary as text: not every exception pickles
        return False, f"{type(error).__name__}: {error}"


class ExecutionEnvironments:
    """`handler(event, context)` that runs in one of `size` environment processes."""

    def __init__(self, handler_path: str, environment: dict[str, str], size: int, log: Path | None = None) -> None:
        self.handler_path = handler_path
        self.environment = environment
        self.size = size
        self.log = log
        self.pool: Pool | None = None

    def start(self) -> ExecutionEnvironments:
        # spawn, not fork: the parent runs threads (the mapping's pollers) and holds sockets.
        context = multiprocessing.get_context("spawn")
        arguments = (self.handler_path, self.environment, str(self.log) if self.log else None)
        try:
            with shielded():  # a stop signal held here is raised at the block's end: stop the pool too
                self.pool = context.Pool(self.size, _start_environment, arguments)
        except BaseException:
            self.stop()
            raise
        return self

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        if self.pool is None:
            raise RuntimeError("execution environments are not started")
        remaining_ms = context.get_remaining_time_in_millis()
        pending = self.pool.apply_async(_invoke, (event, remaining_ms))
        try:
            # Lambda's own limit: an invocation that outlives the function timeout is a function error
            # (one second of slack for the hand-over; the environment finishes its work, unlike Lambda's).
            ok, value = pending.get(timeout=remaining_ms / 1000 + 1)
        except multiprocessing.TimeoutError:
            raise FunctionError(f"Task timed out after {remaining_ms / 1000:.1f} seconds") from None
        if not ok:
            raise FunctionError(value)
        return value

    def stop(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None

    def __enter__(self) -> ExecutionEnvironments:
        return self.start()

    def __exit__(self, *_: Any) -> None:
        self.stop()
