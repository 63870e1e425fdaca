"""A stage's stack file (Pulumi.{stage}.yaml) read without Pulumi: the operator commands (`cost`,
`verify`) validate it with the stack's own settings model, components/settings.py, which imports
pulumi only where the program reads its config. No schema is copied here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from app.errors import OperatorError
from app.names import PROJECT

ROOT = Path(__file__).resolve().parents[1]


def stack_file(stage: str) -> Path:
    return ROOT / f"Pulumi.{stage}.yaml"


def stack_settings(path: Path) -> Any:
    """The stack file, validated; secrets (`secure:` values) are left out: nothing here needs them."""
    from components.settings import ConfigError, parse

    try:
        document = yaml.safe_load(path.read_text()) or {}
    except OSError as error:
        raise OperatorError(f"--stack-file {path}: cannot read ({error.strerror})", code=1) from None
    except yaml.YAMLError:
        raise OperatorError(f"--stack-file {path}: not valid YAML") from None
    config = document.get("config") or {}
    raw = {
        key.removeprefix(f"{PROJECT}:"): value
        for key, value in config.items()
        if key.startswith(f"{PROJECT}:") and not (isinstance(value, dict) and "secure" in value)
    }
    try:
        return parse(raw, config.get("aws:region"))
    except ConfigError as error:
        raise OperatorError(f"{path.name}: {error}") from None
