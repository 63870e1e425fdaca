"""The monitor's wheelhouse: built from the pinned monitor group, wheels only, for the host's python
and architecture, packed reproducibly. The download itself runs in `make wheelhouse` (make preview/up),
not in the test suite: these tests prove what it asks pip for and what it refuses."""

from __future__ import annotations

import tomllib
from pathlib import Path

from components.packaging import pins_digest, tar_gz, wheelhouse_path
from tools.record_stack import ROOT
from tools.requirements import group_pins
from tools.wheelhouse import architecture_of, download_command, foreign_wheels


def _value(command: list[str], flag: str) -> list[str]:
    return [command[i + 1] for i, part in enumerate(command) if part == flag]


def test_download_asks_for_every_pinned_monitor_wheel_for_the_host(tmp_path: Path) -> None:
    command = download_command(ROOT, "arm64", tmp_path)
    pins = group_pins(tomllib.loads((ROOT / "pyproject.toml").read_text()), "monitor")
    assert "web3==8.0.0" in pins and "boto3==1.44.8" in pins  # the group includes `lambda`
    assert command[-len(pins) :] == pins and "pip==26.3" in command
    assert "--only-binary=:all:" in command
    assert _value(command, "--python-version") == ["3.12"]
    assert _value(command, "-c") == [str(ROOT / "constraints.txt")]
    assert all(platform.endswith("_aarch64") for platform in _value(command, "--platform"))
    assert "manylinux_2_34_aarch64" in _value(command, "--platform")  # AL2023's glibc
    assert _value(command, "--dest") == [str(tmp_path)]


def test_wheels_the_host_cannot_install_are_refused() -> None:
    wheels = [
        "web3-8.0.0-py3-none-any.whl",
        "cytoolz-1.2.0-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        "cryptography-50.0.2-cp311-abi3-manylinux_2_28_aarch64.whl",
        "psutil-7.2.2-cp312-cp312-manylinux_2_17_x86_64.whl",
        "bitarray-3.12.3-cp311-cp311-manylinux_2_17_aarch64.whl",
    ]
    assert foreign_wheels([Path(w) for w in wheels], "arm64") == wheels[3:]


def test_the_stack_files_name_the_architecture_the_wheelhouse_is_built_for() -> None:
    assert architecture_of("prod") == "arm64"
    assert wheelhouse_path(ROOT, "arm64").name == "monitor-wheelhouse-cp312-aarch64.tar.gz"


def test_archives_are_reproducible_and_keyed_by_the_pins(tmp_path: Path) -> None:
    (tmp_path / "a.whl").write_bytes(b"a")
    (tmp_path / "b.whl").write_bytes(b"b")
    first = tar_gz({"b.whl": tmp_path / "b.whl", "a.whl": tmp_path / "a.whl"}, tmp_path / "one.tar.gz")
    second = tar_gz({"a.whl": tmp_path / "a.whl", "b.whl": tmp_path / "b.whl"}, tmp_path / "two.tar.gz")
    assert first.sha256 == second.sha256 and first.members == ("a.whl", "b.whl")
    assert len(pins_digest(ROOT)) == 64
