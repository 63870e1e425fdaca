"""The event monitor as the host runs it: `python -m app monitor --config FILE`, following the chain
until stopped, its output in a log file. The demo kills it (SIGKILL, no clean-up) and starts it again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from app.local.services import ROOT, start_process, stop_process
from app.local.signals import shielded


class MonitorProcess:
    def __init__(self, config: Path, environment: dict[str, str], log: Path) -> None:
        self.config = config
        self.environment = environment
        self.log = log
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> MonitorProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | self.environment
        env["PYTHONPATH"] = str(ROOT)
        try:
            with self.log.open("a") as log, shielded():  # a signal held here is raised at the block's end
                self.process = start_process(
                    [sys.executable, "-m", "app", "monitor", "--config", str(self.config)],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        except BaseException:
            self.stop()
            raise
        self.starts += 1
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def check(self) -> None:
        """Raise when the monitor exited on its own (it should run until stopped)."""
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"monitor exited {self.process.returncode} by itself: {self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no chance to save a checkpoint or flush anything, as when a host dies."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    def stop(self) -> int | None:
        """SIGTERM, as systemd stops it; returns its exit status."""
        if self.process is None:
            return None
        process, self.process = self.process, None
        stop_process(process)
        return process.returncode

    def tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log.read_text().strip().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> MonitorProcess:
        return self.start()

    def __exit__(self, *_: Any) -> None:
        self.stop()
