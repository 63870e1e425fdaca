"""`make venv` installs the project into its venv: `ngu-points` runs from any folder, and every
command explains itself with --help."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.__main__ import COMMANDS

SCRIPT = Path(sys.executable).parent / "ngu-points"


def ngu_points(*argv, cwd):
    return subprocess.run([str(SCRIPT), *argv], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_the_console_script_runs_from_a_folder_outside_the_repository(tmp_path):
    assert SCRIPT.exists(), f"{SCRIPT} missing: run `make venv`"
    done = ngu_points("--help", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("usage: ngu-points ")
    assert all(command.name in done.stdout for command in COMMANDS)
    done = ngu_points("cost", "--stage", "prod", "--events-per-month", "1000000", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["cheaperStreamMode"] == "ON_DEMAND"


@pytest.mark.parametrize("command", ["verify", "reconcile", "replay", "cost", "redrive", "points", "leaderboard"])
def test_every_command_explains_itself(command, capsys):
    from app.__main__ import main

    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    out = capsys.readouterr().out
    assert exited.value.code == 0
    assert "--json" in out and ("--stage" in out)
