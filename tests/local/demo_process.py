"""`python -m app demo` as a child of a test: its output read line by line as it runs, the processes
it started found by walking its process tree, and their ports."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import sys
import threading
import time

import psutil

from app.local.services import ROOT


class DemoRun:
    def __init__(self, *flags: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app", "demo", *flags],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, pattern: str, timeout: float = 60) -> re.Match:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    if found := re.search(pattern, line):
                        return found
                if self.process.poll() is not None and not self._reader.is_alive():
                    raise AssertionError(f"demo exited {self.process.returncode} before {pattern!r}:\n{self.output}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"no line matching {pattern!r} within {timeout}s:\n{self.output}")
                self._changed.wait(0.05)

    def wait_for_child(self, fragment: str, timeout: float = 60) -> psutil.Process:
        """A descendant whose command line contains `fragment`, as soon as it exists."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for child in self.descendants():
                try:
                    if fragment in " ".join(child.cmdline()):
                        return child
                except psutil.NoSuchProcess:
                    continue
            time.sleep(0.01)
        raise AssertionError(f"no child process running {fragment!r} within {timeout}s:\n{self.output}")

    def descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def finish(self, timeout: float = 120) -> int:
        code = self.process.wait(timeout)
        self._reader.join(10)
        return code

    def kill(self) -> None:
        """For a failed test: take down the demo and whatever it left."""
        for process in self.descendants():
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


def listening_ports(processes: list[psutil.Process]) -> set[int]:
    ports = set()
    for process in processes:
        try:
            connections = process.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        ports |= {c.laddr.port for c in connections if c.status == psutil.CONN_LISTEN}
    return ports


def still_running(processes: list[psutil.Process], grace: float = 5) -> list[psutil.Process]:
    """Those of `processes` (the same processes: psutil checks the start time) still alive after `grace`."""
    _, alive = psutil.wait_procs(processes, timeout=grace)
    return [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def port_is_free(port: int) -> bool:
    """A server could listen on it again (as servers do, with SO_REUSEADDR: closed connections may
    linger in TIME_WAIT, a listening socket may not)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
        return True
