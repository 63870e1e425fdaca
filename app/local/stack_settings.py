"""The event source mapping's settings from a stack file (`Pulumi.staging.yaml`), read without pulumi.

components/settings.py validates the whole stack config but imports pulumi, which the runtime never
does; the local stack needs only the `consumer` knobs of the mapping, validated here with the same
bounds, and an error names the key as `pulumi config set --path` spells it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from app.local.resources import MappingConfig
from app.local.services import ROOT
from app.names import PROJECT

LOCAL_STACK = "staging"  # the local stage runs with staging's settings


class ConsumerSection(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, extra="ignore", frozen=True)

    timeout_seconds: Annotated[int, Field(ge=1, le=900)]
    batch_size: Annotated[int, Field(ge=1, le=10000)]
    maximum_retry_attempts: Annotated[int, Field(ge=0, le=10000)]
    bisect_batch_on_error: bool
    parallelization_factor: Annotated[int, Field(ge=1, le=10)]
    reserved_concurrency: Annotated[int, Field(gt=0)]
    starting_position: Literal["TRIM_HORIZON", "LATEST"]
    maximum_record_age_seconds: Annotated[int, Field(ge=60, le=604800)]
    remaining_time_guard_ms: Annotated[int, Field(ge=0)]


class StackFileError(ValueError):
    """A missing or invalid stack file value; the message names the file and the key."""


def consumer_settings(stack: str = LOCAL_STACK, root: Path = ROOT) -> ConsumerSection:
    path = root / f"Pulumi.{stack}.yaml"
    key = f"{PROJECT}:consumer"
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise StackFileError(f"{path.name}: cannot read ({error})") from None
    section = (document.get("config") or {}).get(key)
    if not isinstance(section, dict):
        raise StackFileError(f"{path.name}: {key}: missing or not a mapping")
    try:
        return ConsumerSection.model_validate(section)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise StackFileError(f"{path.name}: {key}.{where}: {first['msg']}") from None


def mapping_config(consumer: ConsumerSection) -> MappingConfig:
    return MappingConfig(
        batch_size=consumer.batch_size,
        maximum_retry_attempts=consumer.maximum_retry_attempts,
        bisect_batch_on_error=consumer.bisect_batch_on_error,
        parallelization_factor=consumer.parallelization_factor,
        maximum_record_age_seconds=consumer.maximum_record_age_seconds,
        starting_position=consumer.starting_position,
        function_timeout_seconds=consumer.timeout_seconds,
    )
