"""Download every wheel the monitor needs, for the monitor host's python and architecture, into one
reproducible archive the stack uploads (components/packaging.py names it).

The host then installs offline (`pip install --no-index --find-links`): a boot never depends on a
public package index. Only wheels: a package without a wheel for the host fails here, on the
operator's machine, not at 3 a.m. on a replacement host.

    python -m tools.wheelhouse --stack prod     # `make wheelhouse STACK=prod`; make preview/up run it
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import yaml
from packaging.tags import Tag
from packaging.utils import parse_wheel_filename

from components.packaging import HOST_PYTHON, MACHINES, tar_gz, wheelhouse_path
from tools.requirements import group_pins

ROOT = Path(__file__).resolve().parent.parent
GROUP = "monitor"
PIP_VERSION = "26.3"  # the host's venv first upgrades pip from the wheelhouse (`--group` needs pip >= 25.1)
# AL2023 ships glibc 2.34: any manylinux wheel up to that, or a pure-Python one.
_GLIBC = ((2, 34), (2, 28), (2, 17))


def platforms(architecture: str) -> list[str]:
    machine = MACHINES[architecture]
    return [f"manylinux_{major}_{minor}_{machine}" for major, minor in _GLIBC] + [f"manylinux2014_{machine}"]


def download_command(root: Path, architecture: str, dest: Path) -> list[str]:
    pins = group_pins(tomllib.loads((root / "pyproject.toml").read_text()), GROUP)
    python = HOST_PYTHON.replace(".", "")
    command = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--dest", str(dest)]
    command += ["--only-binary=:all:", "--implementation", "cp", "--python-version", HOST_PYTHON]
    command += ["--abi", f"cp{python}", "--abi", "abi3", "--abi", "none"]
    for platform in platforms(architecture):
        command += ["--platform", platform]
    return [*command, "-c", str(root / "constraints.txt"), f"pip=={PIP_VERSION}", *pins]


def foreign_wheels(wheels: list[Path], architecture: str) -> list[str]:
    """Wheels the host could not install (another python, arch or libc): none, or the build is wrong."""
    python = HOST_PYTHON.replace(".", "")
    accepted = {
        Tag(interpreter, abi, platform)
        for interpreter in (f"cp{python}", "py3", f"py{python}")
        for abi in (f"cp{python}", "abi3", "none")
        for platform in [*platforms(architecture), "any"]
    }
    foreign = []
    for wheel in wheels:
        tags = parse_wheel_filename(wheel.name)[3]
        if not any(_compatible(tag, accepted) for tag in tags):
            foreign.append(wheel.name)
    return foreign


def _compatible(tag: Tag, accepted: set[Tag]) -> bool:
    if tag in accepted:
        return True
    # cp3X-abi3 wheels built for an older CPython install on 3.12 too.
    return (
        tag.abi == "abi3"
        and tag.interpreter.startswith("cp3")
        and Tag(f"cp{HOST_PYTHON.replace('.', '')}", "abi3", tag.platform) in accepted
    )


def architecture_of(stack: str, root: Path = ROOT) -> str:
    config = yaml.safe_load((root / f"Pulumi.{stack}.yaml").read_text())["config"]
    return str(config["ngu-points-event-processor:monitor"]["architecture"])


def build(root: Path, architecture: str) -> Path:
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(download_command(root, architecture, Path(folder)), check=True)
        wheels = sorted(Path(folder).glob("*.whl"))
        others = sorted(p.name for p in Path(folder).iterdir() if p.suffix != ".whl")
        foreign = foreign_wheels(wheels, architecture)
        if others or foreign:
            raise ValueError(f"wheelhouse: not installable on the host: {', '.join(others + foreign)}")
        return tar_gz({wheel.name: wheel for wheel in wheels}, wheelhouse_path(root, architecture)).path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="reads monitor.architecture from Pulumi.STACK.yaml")
    args = parser.parse_args(argv)
    try:
        path = build(ROOT, architecture_of(args.stack))
    except (OSError, KeyError, ValueError, subprocess.CalledProcessError) as error:
        print(f"wheelhouse: {error}", file=sys.stderr)
        return 1
    print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
