"""Shared fixtures for the direct policy tests: the compliant stacks and each stack's policy config."""

import json
from functools import cache
from pathlib import Path
from typing import Any

from tests.policy import synthetic

CONFIG_DIR = Path(__file__).resolve().parents[2] / "policy" / "config"


@cache
def stack(stage: str) -> tuple:
    return tuple(synthetic.build(stage))


def policy_config(stage: str, policy_name: str) -> dict[str, Any]:
    entry = json.loads((CONFIG_DIR / f"{stage}.json").read_text()).get(policy_name, {})
    return {k: v for k, v in entry.items() if k != "enforcementLevel"} if isinstance(entry, dict) else {}
