"""What Pulumi's own flow needs from the repository: requirements.txt in sync with pyproject.toml and
installable, and `make preview` / `make up` always with the policy pack and the stack's config."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tools.record_stack import ROOT
from tools.requirements import render


def test_requirements_txt_is_generated_from_pyproject_and_in_sync() -> None:
    text = (ROOT / "requirements.txt").read_text()
    assert text == render(ROOT), "requirements.txt is out of date: run `make requirements`"
    pins = [line for line in text.splitlines() if line and not line.startswith(("#", "-"))]
    assert "pulumi==3.272.0" in pins and "pulumi-aws==7.51.1" in pins
    assert all("==" in pin for pin in pins)
    assert "://" not in text and "--index-url" not in text  # no registry address is recorded


def test_pip_reads_requirements_txt_as_the_cli_would_install_it() -> None:
    # Offline: everything is installed here already; pip must parse the file (its -c path included)
    # and find every pin satisfied under the constraints.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--no-index",
            "--disable-pip-version-check",
            "-r",
            str(ROOT / "requirements.txt"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT.parent,
    )
    assert result.returncode == 0, result.stderr
    assert "Would install" not in result.stdout


@pytest.mark.parametrize("target", ["preview", "up"])
@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_make_preview_and_up_always_run_the_policy_pack(target: str, stack: str) -> None:
    result = subprocess.run(["make", "-n", target, f"STACK={stack}"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    [command] = [line for line in result.stdout.splitlines() if line.startswith("pulumi ")]
    assert command.startswith(f"pulumi {target} -s {stack} ")
    assert f"--policy-pack policy --policy-pack-config policy/config/{stack}.json" in command
    assert (ROOT / "policy" / "config" / f"{stack}.json").is_file()
    assert "tools.wheelhouse --stack " + stack in result.stdout  # the artifact the stack uploads


def test_the_runbooks_deploy_only_through_make_or_with_the_policy_pack() -> None:
    for runbook in ("deploy.md", "alarms.md"):
        for line in (ROOT / "docs" / runbook).read_text().splitlines():
            for command in ("pulumi up -s", "pulumi preview -s"):
                if command in line and "thin wrapper" not in line:
                    assert "--policy-pack policy --policy-pack-config policy/config/" in line, (runbook, line)
    deploy = (ROOT / "docs" / "deploy.md").read_text().split("\n## Deploy\n", 1)[1]
    steps = [deploy.index(s) for s in ("app preflight --stage prod", "make preview STACK=prod", "make up STACK=prod")]
    assert steps == sorted(steps)
    assert "no `~ update`" in deploy and "= import" in deploy
