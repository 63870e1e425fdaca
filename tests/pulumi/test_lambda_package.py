"""The Lambda archive the program builds carries the handler and what it imports, nothing else."""

from __future__ import annotations

import ast
import zipfile
from pathlib import Path

import pytest

from components.packaging import PackagingError, handler_modules, lambda_archive
from tests.pulumi.conftest import archive_path
from tools.record_stack import ROOT, RecordedStack


def _imported_tops(source: str) -> set[str]:
    tops: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            tops.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            tops.add(node.module.split(".")[0])
    return tops


def test_archive_holds_the_handler_and_every_module_it_imports(prod: RecordedStack) -> None:
    with zipfile.ZipFile(archive_path(prod)) as archive:
        members = set(archive.namelist())
        sources = {name: archive.read(name).decode() for name in members}
    assert "app/processor.py" in members
    assert {"app/__init__.py", "app/events.py", "app/rates.py", "app/store.py", "app/ledger.py"} <= members
    # Closed under import: every first-party module a member imports is in the archive too.
    for name, source in sources.items():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("app."):
                assert node.module.replace(".", "/") + ".py" in members, f"{name} imports {node.module}"


def test_archive_carries_nothing_that_imports_pulumi_or_web3(prod: RecordedStack) -> None:
    with zipfile.ZipFile(archive_path(prod)) as archive:
        for name in archive.namelist():
            tops = _imported_tops(archive.read(name).decode())
            assert not tops & {"pulumi", "pulumi_aws", "web3"}, name
            assert name.startswith("app/") and name.endswith(".py"), name


def test_modules_the_handler_does_not_import_stay_out(prod: RecordedStack) -> None:
    with zipfile.ZipFile(archive_path(prod)) as archive:
        members = set(archive.namelist())
    on_disk = {str(p.relative_to(ROOT)) for p in (ROOT / "app").rglob("*.py") if "__pycache__" not in p.parts}
    expected = {str(p.relative_to(ROOT)) for p in handler_modules(ROOT).values()}
    assert members == expected
    assert not {m for m in on_disk - expected if m.startswith("app/monitor/")} & members


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_new_import_of_the_handler_is_followed_without_a_hand_list(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/processor.py": "from app.util import helper\nfrom . import sibling\n",
            "app/util/__init__.py": "from .deep import value\n",
            "app/util/deep.py": "import json\nvalue = 1\n",
            "app/sibling.py": "",
            "app/unused.py": "import web3\n",
        },
    )
    assert set(handler_modules(root)) == {"app", "app.processor", "app.util", "app.util.deep", "app.sibling"}


@pytest.mark.parametrize("forbidden", ["import web3", "from pulumi import Output", "import pulumi_aws as aws"])
def test_a_handler_module_importing_pulumi_or_web3_is_refused(tmp_path: Path, forbidden: str) -> None:
    root = _package(
        tmp_path,
        {"app/__init__.py": "", "app/processor.py": "from app import store\n", "app/store.py": f"{forbidden}\n"},
    )
    with pytest.raises(PackagingError, match=r"app/store\.py: imports"):
        handler_modules(root)


def test_the_archive_is_reproducible(tmp_path: Path) -> None:
    first = lambda_archive(ROOT, tmp_path / "a.zip")
    second = lambda_archive(ROOT, tmp_path / "b.zip")
    assert first.sha256 == second.sha256
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
