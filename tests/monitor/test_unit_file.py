"""The systemd unit matches the monitor host's seam (how issue 4 installs and runs it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "ngu-points-monitor.service"


def settings() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_the_unit_runs_the_monitor_as_the_host_installs_it():
    unit = settings()
    assert unit["ExecStart"] == ["/opt/ngu-points/venv/bin/python -m app monitor --config /etc/ngu-points/monitor.yaml"]
    assert unit["WorkingDirectory"] == ["/opt/ngu-points/app"]
    assert unit["User"] == ["ngu-points"]
    assert unit["EnvironmentFile"] == ["/etc/ngu-points/monitor.env"]
    assert unit["Restart"] == ["on-failure"]
    assert unit["RestartPreventExitStatus"] == ["2"], "a config error (exit 2) is not restarted in a loop"
    assert unit["StartLimitIntervalSec"] == ["0"], "no start limit can leave the monitor stopped"
    assert "StartLimitBurst" not in unit
    for hardening in ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp"):
        assert unit[hardening] != ["no"], hardening


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_accepts_the_unit():
    result = subprocess.run(["systemd-analyze", "verify", str(UNIT)], capture_output=True, text=True)
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "/opt/ngu-points/venv/bin/python" not in line  # not installed on this machine
    ]
    assert problems == []
