"""One mocked program run per stack file, shared by every test of this folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.record_stack import ROOT, RecordedResource, RecordedStack, record_stack

STACKS = ("prod", "staging")


@pytest.fixture(scope="session")
def recorded() -> dict[str, RecordedStack]:
    return {stack: record_stack(stack) for stack in STACKS}


@pytest.fixture(scope="session")
def prod(recorded: dict[str, RecordedStack]) -> RecordedStack:
    return recorded["prod"]


@pytest.fixture(scope="session")
def staging(recorded: dict[str, RecordedStack]) -> RecordedStack:
    return recorded["staging"]


def stack_file(stack: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]


def project_config(stack: str, section: str) -> Any:
    return stack_file(stack)[f"ngu-points-event-processor:{section}"]


def policy_documents(stack: RecordedStack) -> dict[str, dict[str, Any]]:
    """Every inline IAM role policy, parsed, by resource name."""
    return {r.name: json.loads(r.inputs["policy"]) for r in stack.of_type("aws:iam/rolePolicy:RolePolicy")}


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = document["Statement"]
    return found if isinstance(found, list) else [found]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def one(stack: RecordedStack, type_: str) -> RecordedResource:
    (resource,) = stack.of_type(type_)
    return resource


def archive_path(stack: RecordedStack) -> Path:
    return Path(one(stack, "aws:lambda/function:Function").inputs["code"].path)
