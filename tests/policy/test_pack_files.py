"""The pack as files: a thin entry point, its own pinned virtualenv, a taggable-type list that matches
the pinned provider, and no import from the rest of the repository."""

import ast
from pathlib import Path

import yaml
from ngu_policies import POLICIES

from tools import taggable_types

PACK = Path(__file__).resolve().parents[2] / "policy"
ROOT = PACK.parent


def test_policy_yaml_names_a_python_runtime_with_its_own_virtualenv():
    document = yaml.safe_load((PACK / "PulumiPolicy.yaml").read_text())
    assert document["runtime"]["name"] == "python"
    assert document["runtime"]["options"]["virtualenv"] == "venv"
    assert set(document) <= {"runtime", "version", "description", "main", "author", "website", "license"}


def test_requirements_are_pinned_and_agree_with_the_repository_constraints():
    pins = [line for line in (PACK / "requirements.txt").read_text().splitlines() if line and line[0] != "#"]
    assert all("==" in line for line in pins)
    normalize = lambda name: name.lower().replace("_", "-")  # noqa: E731
    constraints = {
        normalize(n): v
        for n, v in (line.split("==") for line in (ROOT / "constraints.txt").read_text().split() if "==" in line)
    }
    required = {normalize(n): v for n, v in (line.split("==") for line in pins)}
    assert {"pulumi-policy": "1.21.0", "pulumi": "3.272.0"}.items() <= required.items()
    assert {n: v for n, v in required.items() if n in constraints and constraints[n] != v} == {}


def test_entry_point_only_assembles_the_pack():
    tree = ast.parse((PACK / "__main__.py").read_text())
    statements = [
        node for node in tree.body if not isinstance(node, ast.Expr) or not isinstance(node.value, ast.Constant)
    ]
    assert [type(n).__name__ for n in statements] == ["ImportFrom", "ImportFrom", "Expr"]
    assert statements[-1].value.func.id == "PolicyPack"


def test_pack_imports_nothing_from_the_repository():
    for source in (PACK / "ngu_policies").glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                assert node.module.split(".")[0] in {
                    "pulumi_policy",
                    "collections",
                    "dataclasses",
                    "typing",
                    "pathlib",
                    "json",
                    "re",
                }, (source.name, node.module)
            if isinstance(node, ast.Import):
                assert all(a.name in {"json", "re"} for a in node.names), source.name


def test_taggable_types_match_the_pinned_provider():
    assert taggable_types.main(["--check"]) == 0
    listed = taggable_types.TYPES_FILE.read_text().splitlines()
    assert "aws:kinesis/stream:Stream" in listed and "aws:iam/rolePolicy:RolePolicy" not in listed


def test_readme_lists_every_policy():
    readme = (PACK / "README.md").read_text()
    assert [p.name for p in POLICIES if f"`{p.name}`" not in readme] == []
