"""The stack program started exactly as the Pulumi CLI starts it: `main` resolved from Pulumi.yaml as
the engine does, then the language host's exec shim (a copy, tests/pulumi/exec_shim.py) run from a
folder outside the repository with no PYTHONPATH and without the editable install of this project
that `make venv` adds (the venv `pulumi install` creates has none). In-process tests have the
repository on sys.path and cannot see an import that only works there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pulumi.conftest import STACKS
from tools.program_entry import EntryError, project_entry, resolve_main
from tools.record_stack import PROJECT, ROOT, RecordedStack, stack_config

SHIM = Path(__file__).with_name("exec_shim.py")


def test_main_resolves_as_the_engine_resolves_it(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "__main__.py").write_text("")
    (tmp_path / "prog.py").write_text("")
    assert resolve_main(tmp_path, None) == (tmp_path, ".")
    assert resolve_main(tmp_path, "src") == (tmp_path / "src", ".")
    assert resolve_main(tmp_path, "prog.py") == (tmp_path, "prog.py")
    assert resolve_main(tmp_path, str(tmp_path / "src" / "__main__.py")) == (tmp_path / "src", "__main__.py")
    with pytest.raises(EntryError, match=r"main: missing\.py does not exist"):
        resolve_main(tmp_path, "missing.py")


def test_the_project_runs_its_folder_so_the_folder_is_on_sys_path() -> None:
    assert project_entry(ROOT) == (ROOT, ".")


def _start(stack: str, pwd: Path, program: str, folder: Path) -> subprocess.Popen[str]:
    """The shim from `folder` (outside the repository), its own environment as the language host builds it."""
    values, secret_keys = stack_config(stack)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("PULUMI_")}
    env |= {"PULUMI_CONFIG": json.dumps(values), "PULUMI_CONFIG_SECRET_KEYS": json.dumps(secret_keys)}
    shim = folder / "pulumi-language-python-exec"
    shutil.copy(SHIM, shim)
    command = [sys.executable, str(shim), "--project", PROJECT, "--stack", stack, "--pwd", str(pwd)]
    command += ["--mocks", str(ROOT / "tools" / "stack_mocks.py"), "--out", str(folder / "out.json"), program]
    return subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(process: subprocess.Popen[str]) -> str:
    """Its output; a shim that hangs is stopped, never left running after the test."""
    try:
        output, _ = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return output


def _folder(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    assert ROOT not in folder.parents
    return folder


def test_both_stacks_run_as_the_cli_runs_them_and_declare_what_the_tests_record(
    tmp_path: Path, recorded: dict[str, RecordedStack]
) -> None:
    pwd, program = project_entry(ROOT)
    started = {stack: _start(stack, pwd, program, _folder(tmp_path, stack)) for stack in STACKS}
    for stack, process in started.items():
        output = _finish(process)
        assert process.returncode == 0, output[-3000:]
        declared = json.loads((tmp_path / stack / "out.json").read_text())
        # Registration order depends on when outputs resolve; the set of resources does not.
        assert sorted(map(tuple, declared)) == sorted((r.type, r.name, r.import_id) for r in recorded[stack].resources)
        assert len(declared) > 90


def test_a_main_naming_the_file_fails_as_the_cli_would(tmp_path: Path) -> None:
    # What `main: __main__.py` made the CLI do: the program runs, its first import of the repository fails.
    pwd, program = resolve_main(ROOT, "__main__.py")
    process = _start("staging", pwd, program, _folder(tmp_path, "file-main"))
    output = _finish(process)
    assert process.returncode != 0
    assert "ModuleNotFoundError: No module named 'app'" in output
