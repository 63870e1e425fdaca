"""Build the two code artifacts the stack deploys, byte-for-byte reproducible from the checkout.

- The Lambda archive: exactly the modules `app.processor` reaches by import (found by reading the
  imports, so a new module the handler uses is never forgotten) — never pulumi or web3.
- The monitor bundle: the `app/` package, pyproject.toml, constraints.txt and the systemd unit.
- The monitor wheelhouse: every wheel the monitor group needs for the host's python and arch, so the
  host installs offline (`pip --no-index --find-links`). `make wheelhouse` downloads it
  (tools/wheelhouse.py); the program only names it, keyed by the pins it was built from.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import io
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

HANDLER_MODULE = "app.processor"
# The Lambda must not carry these: pulumi is the deploy tool, web3 the monitor's chain client.
FORBIDDEN_IN_LAMBDA = frozenset({"pulumi", "pulumi_aws", "web3"})
MONITOR_UNIT = Path("deploy/ngu-points-monitor.service")
HOST_PYTHON = "3.12"
# The host's machine name for each EC2 architecture (wheel platform tags use it).
MACHINES = {"arm64": "aarch64", "x86_64": "x86_64"}
_EPOCH = (1980, 1, 1, 0, 0, 0)


class PackagingError(ValueError):
    pass


@dataclass(frozen=True)
class Artifact:
    path: Path
    sha256: str
    members: tuple[str, ...]


def module_path(root: Path, module: str) -> Path | None:
    """The file of a first-party module (`app.store` -> app/store.py), or None when not ours."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, module: str) -> set[str]:
    """Every module name a file imports, relative imports resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names.add(prefix)
            # `from app import store` imports a module, not a name.
            names.update(f"{prefix}.{alias.name}" for alias in node.names)
    return names


def handler_modules(root: Path, module: str = HANDLER_MODULE) -> dict[str, Path]:
    """The first-party modules `module` needs (itself, what it imports, their packages), by name.

    Raises PackagingError when any of them imports a forbidden package.
    """
    first_party = module.split(".")[0]
    found: dict[str, Path] = {}
    pending = [module]
    while pending:
        name = pending.pop()
        if name in found:
            continue
        path = module_path(root, name)
        if path is None:
            continue
        found[name] = path
        parts = name.split(".")
        pending.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        for imported in _imports(path, name):
            top = imported.split(".")[0]
            if top in FORBIDDEN_IN_LAMBDA:
                raise PackagingError(
                    f"{path.relative_to(root)}: imports {imported}, which the Lambda package must not carry"
                )
            if top == first_party:
                pending.append(imported)
    return found


def lambda_archive(root: Path, dest: Path, module: str = HANDLER_MODULE) -> Artifact:
    modules = handler_modules(root, module)
    members = sorted(str(path.relative_to(root)) for path in modules.values())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for member in members:
            info = zipfile.ZipInfo(member, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, (root / member).read_bytes())
    return _write(dest, buffer.getvalue(), members)


def monitor_bundle(root: Path, dest: Path) -> Artifact:
    unit = root / MONITOR_UNIT
    if not unit.is_file():
        raise PackagingError(f"{MONITOR_UNIT}: missing; the monitor host installs this systemd unit from the bundle")
    files = sorted(p for p in (root / "app").rglob("*.py") if "__pycache__" not in p.parts)
    files += [root / "pyproject.toml", root / "constraints.txt", unit]
    return tar_gz({str(p.relative_to(root)): p for p in files}, dest)


def tar_gz(members: dict[str, Path], dest: Path) -> Artifact:
    """A reproducible .tar.gz of `members` (archive name -> file): no times, owners or varying modes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for member in sorted(members):
            data = members[member].read_bytes()
            info = tarfile.TarInfo(member)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            archive.addfile(info, io.BytesIO(data))
    return _write(dest, gzip.compress(buffer.getvalue(), mtime=0), sorted(members))


def wheelhouse_path(root: Path, architecture: str) -> Path:
    return root / "build" / f"monitor-wheelhouse-cp{HOST_PYTHON.replace('.', '')}-{MACHINES[architecture]}.tar.gz"


def pins_digest(root: Path) -> str:
    """What a wheelhouse is built from (pyproject.toml's groups and constraints.txt): its S3 key carries
    this, so new pins are a new object and a new launch template version."""
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "constraints.txt"):
        digest.update((root / name).read_bytes())
    return digest.hexdigest()


def _write(dest: Path, data: bytes, members: list[str]) -> Artifact:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.is_file() or dest.read_bytes() != data:
        dest.write_bytes(data)
    return Artifact(dest, hashlib.sha256(data).hexdigest(), tuple(members))
