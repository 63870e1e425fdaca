"""A progress bar for operator commands that can take more than a few seconds: on stderr, so stdout
stays the command's report, and off when stderr is not a terminal (pipes, CI, tests)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def progress_bar(description: str, total: float | None = None) -> Iterator[Callable[[float], None]]:
    """Yields `advance(amount)`; `total` None shows a count without an end."""
    from rich.console import Console
    from rich.progress import Progress

    with Progress(transient=True, disable=not sys.stderr.isatty(), console=Console(stderr=True)) as progress:
        task = progress.add_task(description, total=total)
        yield lambda amount: progress.advance(task, amount)
