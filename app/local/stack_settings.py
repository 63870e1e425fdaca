"""The event source mapping's settings for the local stage: the `consumer` section of the staging
stack file, validated by the stack's own settings model (app/stack_file.py), so the local mapping
runs with exactly what `pulumi up -s staging` would configure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.local.resources import MappingConfig
from app.stack_file import stack_file, stack_settings

LOCAL_STACK = "staging"  # the local stage runs with staging's settings


def consumer_settings(path: Path | None = None) -> Any:
    """components.settings.ConsumerSettings; a bad file is an OperatorError naming the key."""
    return stack_settings(path or stack_file(LOCAL_STACK)).consumer


def mapping_config(consumer: Any) -> MappingConfig:
    return MappingConfig(
        batch_size=consumer.batch_size,
        maximum_retry_attempts=consumer.maximum_retry_attempts,
        bisect_batch_on_error=consumer.bisect_batch_on_error,
        parallelization_factor=consumer.parallelization_factor,
        maximum_record_age_seconds=consumer.maximum_record_age_seconds,
        starting_position=consumer.starting_position,
        function_timeout_seconds=consumer.timeout_seconds,
    )
