"""Fixtures of the monitor's tests: one moto server for the session, a fresh anvil per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.monitor.harness import ANVIL, Anvil, Aws, Chain, MotoServer


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    server = MotoServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def anvil() -> Iterator[Anvil]:
    if not ANVIL.exists():
        pytest.fail(f"{ANVIL} missing: run `make node` (npm ci)")
    node = Anvil().start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def chain(anvil: Anvil) -> Chain:
    return Chain(anvil)


@pytest.fixture
def aws(moto: MotoServer) -> Aws:
    return Aws(moto).create()
