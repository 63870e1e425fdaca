"""anvil keeps the states of older blocks under $HOME/.foundry/anvil/tmp and leaves them behind when
stopped (4.3 GB for the dense benchmark chain; they once filled this machine's disk). Each chain the
project starts gets a home of its own, removed when it stops."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.local.services import Anvil


@pytest.mark.integration
def test_each_chain_runs_in_its_own_home_which_is_removed_when_it_stops():
    anvil = Anvil().start()
    try:
        home = Path(anvil.home)
        environ = Path(f"/proc/{anvil.process.pid}/environ").read_bytes().split(b"\0")
        assert f"HOME={home}".encode() in environ
        assert home.is_dir() and not str(home).startswith(str(Path.home()))
        (home / ".foundry" / "anvil" / "tmp").mkdir(parents=True, exist_ok=True)
    finally:
        anvil.stop()
    assert not home.exists()
    assert anvil.home is None
