"""Start the stack program exactly as the Pulumi CLI does, so a stand-in cannot hide what the CLI breaks.

The engine resolves Pulumi.yaml's `main` (pkg/engine/project.go, getPwdMain): unset -> pwd is the
project folder and the program is `.`; a folder -> pwd is that folder, program `.`; a file -> pwd is
the file's folder and the program its base name. The Python language host passes both to its exec
shim (sdk/python/cmd/pulumi-language-python-exec), which chdirs to pwd and calls
`runpy.run_path(program, run_name="__main__")`. Only a folder (`.`) puts itself on sys.path; a file
does not, so `from components import ...` then fails although every in-process test passes.
"""

from __future__ import annotations

import os
import runpy
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml


class EntryError(ValueError):
    """Pulumi.yaml names a `main` the CLI cannot run."""


def resolve_main(root: Path, main: str | None) -> tuple[Path, str]:
    """(pwd, program) for a project at `root` whose Pulumi.yaml has `main` (None when unset)."""
    if not main:
        return root, "."
    target = Path(main) if Path(main).is_absolute() else root / main
    if not target.exists():
        raise EntryError(f"Pulumi.yaml main: {main} does not exist under {root}")
    if target.is_dir():
        return target, "."
    return target.parent, target.name


def project_entry(root: Path) -> tuple[Path, str]:
    """(pwd, program) as the CLI computes them from the project's own Pulumi.yaml."""
    project = yaml.safe_load((root / "Pulumi.yaml").read_text()) or {}
    return resolve_main(root, project.get("main"))


@contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def run_program(root: Path) -> None:
    """What the exec shim does inside `run_in_stack` (the working directory is restored afterwards)."""
    pwd, program = project_entry(root)
    with _working_directory(pwd):
        runpy.run_path(program, run_name="__main__")
