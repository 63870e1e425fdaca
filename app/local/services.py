"""Local servers for development and tests: anvil (the chain) and moto in server mode (AWS).

Both bind 127.0.0.1 on a free port and are context managers: whoever starts one stops it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import boto3

from app.local.signals import shielded

ROOT = Path(__file__).resolve().parents[2]
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"
CHAIN_ID = 31337
REGION = "us-east-1"

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], T], timeout: float, interval: float = 0.1, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def start_process(command: list[str], **kwargs: Any) -> subprocess.Popen:
    """A child in its own session: a terminal's Ctrl-C reaches only its parent, which stops it in order."""
    return subprocess.Popen(command, start_new_session=True, **kwargs)


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Anvil:
    """A local chain; `state` keeps it across a stop and start (anvil --state).

    anvil writes the states of older blocks under $HOME/.foundry/anvil/tmp and leaves them there when
    stopped (4.3 GB for the dense benchmark chain; 78 GB had piled up here and filled the disk). Each
    chain gets its own home, removed once the process has exited."""

    def __init__(self, port: int | None = None, state: Path | None = None, extra: Iterable[str] = ()) -> None:
        self.port = port or free_port()
        self.state = state
        self.extra = list(extra)
        self.process: subprocess.Popen | None = None
        self.home: str | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> Anvil:
        if not ANVIL.exists():
            raise RuntimeError(f"anvil: {ANVIL} is missing; run `make node` (npm ci) first")
        command = [str(ANVIL), "--host", "127.0.0.1", "--port", str(self.port), "--silent", *self.extra]
        if self.state is not None:
            command += ["--state", str(self.state)]
        # The shield delays a stop signal to the end of its block: still inside the try, so that
        # signal stops the child just started instead of leaking it.
        try:
            with shielded():
                self.home = tempfile.mkdtemp(prefix="ngu-anvil-home-")
                self.process = start_process(
                    command,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env={**os.environ, "HOME": self.home},
                )
            wait_until(self._answers, 20, what=f"anvil on port {self.port}")
        except BaseException:
            self.stop()  # a failed or interrupted start leaves nothing running
            raise
        return self

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"anvil exited with {self.process.returncode}")
        if not _listening(self.port):
            return False
        from web3 import Web3

        try:
            return Web3(Web3.HTTPProvider(self.http_url, request_kwargs={"timeout": 2})).eth.chain_id == CHAIN_ID
        except Exception:
            return False

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)  # SIGTERM: anvil writes --state on the way out
            self.process = None
        if self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)
            self.home = None

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(self, *_: Any) -> None:
        self.stop()


class MotoServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        # moto with requests serialised: its Kinesis shards lose records to concurrent writers.
        try:
            with shielded():  # as in Anvil.start: a signal held by the shield stops this child too
                self.process = start_process(
                    [sys.executable, "-m", "app.local.moto_server", "-H", "127.0.0.1", "-p", str(self.port)],
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            wait_until(lambda: _listening(self.port), 30, what="moto_server")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *_: Any) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }

    def client(self, service: str, **kwargs: Any) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            **kwargs,
        )
