"""Every knob of the stack, read from Pulumi config once and validated before any resource exists.

Stack files hold camelCase keys under the project namespace (`ngu-points-event-processor:consumer`,
with nested `reservedConcurrency`); an error names the key as an operator would type it for
`pulumi config set --path`, e.g. `ngu-points-event-processor:consumer.reservedConcurrency`.
Secrets (`rpcUrl`, `pagerdutyEndpoint`) stay Pulumi secrets: they are outputs, never plain values.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from app.contracts import listed_twice, unrated
from app.declared_tables import PROTECTED_STAGE, TableMode, stage_tags
from app.names import PROJECT, StageNames
from app.rates import MAX_RATE

if TYPE_CHECKING:  # pulumi only where the stack reads its config: operators' `cost` reads stack files without it
    import pulumi

Address = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-f]{40}$")]
RateKey = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]*:0x[0-9a-f]{40}$")]
Region = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")]
SsmName = Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9_.\-/]+$")]
Positive = Annotated[int, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
Percent = Annotated[float, Field(gt=0, le=100)]


class ConfigError(ValueError):
    """A bad or missing stack config value; the message starts with the config key."""


class Stage(StrEnum):
    PROD = "prod"
    STAGING = "staging"
    DEV = "dev"


class _Section(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class StreamSettings(_Section):
    mode: Literal["ON_DEMAND", "PROVISIONED"]
    retention_hours: Annotated[int, Field(ge=24, le=8760)]
    # PROVISIONED only; an on-demand stream starts with 4 shards and splits them itself.
    shard_count: Positive | None = None
    expected_shards: Positive = 4
    # The seed's KINESIS_STREAM_NAME SSM parameter: create it, or adopt the one the runbook put (import).
    name_parameter: Literal["create", "adopt"] = "create"

    @model_validator(mode="after")
    def _shards_match_mode(self) -> StreamSettings:
        if self.mode == "PROVISIONED" and self.shard_count is None:
            raise ValueError("shardCount: required when mode is PROVISIONED")
        if self.mode == "ON_DEMAND" and self.shard_count is not None:
            raise ValueError("shardCount: an ON_DEMAND stream has no shard count; remove it")
        return self

    @property
    def shards(self) -> int:
        return self.shard_count or self.expected_shards


class ConsumerSettings(_Section):
    memory_mb: Annotated[int, Field(ge=128, le=10240)]
    timeout_seconds: Annotated[int, Field(ge=1, le=900)]
    batch_size: Annotated[int, Field(ge=1, le=10000)]
    maximum_retry_attempts: Annotated[int, Field(ge=0, le=10000)]
    bisect_batch_on_error: bool
    parallelization_factor: Annotated[int, Field(ge=1, le=10)]
    reserved_concurrency: Positive
    starting_position: Literal["TRIM_HORIZON", "LATEST"]
    maximum_record_age_seconds: Annotated[int, Field(ge=60, le=604800)]
    remaining_time_guard_ms: Annotated[int, Field(ge=0)]
    log_retention_days: Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365]
    failed_batch_retention_days: Positive
    powertools_version: Annotated[str, StringConstraints(pattern=r"^3\.\d+\.\d+$")]
    # Empty: resolved from AWS's public SSM parameter for powertools_version.
    powertools_layer_arn: Annotated[str, StringConstraints(pattern=r"^(arn:aws[a-z-]*:lambda:.+:layer:.+:\d+)?$")] = ""


class TablesSettings(_Section):
    # create: this stack creates them; adopt: the existing tables of that name become this stack's
    # on the next `pulumi up` (the `import` resource option) and are never recreated.
    mode: TableMode


class NetworkSettings(_Section):
    security_group_parameter: SsmName
    subnet_parameters: Annotated[list[SsmName], Field(min_length=1)]


class Contract(_Section):
    address: Address
    start_block: Annotated[int, Field(ge=0)]


class MonitorSettings(_Section):
    instance_type: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+\.[a-z0-9]+$")]
    architecture: Literal["arm64", "x86_64"]
    # Pinned, bumped deliberately (docs/deploy.md shows the current latest AL2023 image): resolving
    # "latest" on every `up` replaced the host whenever Amazon published an image.
    ami_id: Annotated[str, StringConstraints(pattern=r"^ami-[0-9a-f]{8}([0-9a-f]{9})?$")]
    volume_gb: Annotated[int, Field(ge=8, le=1024)]
    chain_id: Positive
    confirmations: Annotated[int, Field(ge=0)]
    contracts: Annotated[list[Contract], Field(min_length=1)]
    # kinesis: the new pipeline; dynamodb: the legacy direct path, a rollback by config (DESIGN §6).
    sink: Literal["kinesis", "dynamodb"]
    # PutRecords calls in flight; per-key order holds at any value. 4 suits AWS (moto needs 1).
    publish_concurrency: Annotated[int, Field(ge=1, le=16)] = 4


Rate = Annotated[int, Field(ge=0, le=MAX_RATE)]


class PointsSettings(_Section):
    per_day: dict[RateKey, Rate]
    default_per_day: Rate | None = None


class AlertSettings(_Section):
    slack_team_id: Annotated[str, StringConstraints(pattern=r"^T[A-Z0-9]+$")]
    slack_channel_id: Annotated[str, StringConstraints(pattern=r"^[CG][A-Z0-9]+$")]
    # AWS Chatbot is a global service whose API lives in us-east-2 (there is no us-east-1 endpoint).
    chatbot_region: Region = "us-east-2"


class Thresholds(_Section):
    """Every alarm threshold. No defaults: a stack without one fails naming it."""

    monitor_disconnected_minutes: Positive
    monitor_heartbeat_minutes: Positive
    monitor_error_rate_percent: Percent
    monitor_memory_percent: Percent
    monitor_cpu_percent: Percent
    monitor_disk_percent: Percent
    monitor_blocks_behind: Positive
    monitor_put_failures: NonNegative
    reorgs_detected: NonNegative
    iterator_age_page_ms: Positive
    iterator_age_notify_ms: Positive
    write_provisioned_exceeded: NonNegative
    write_throttle_events: NonNegative
    put_records_latency_ms: Positive
    lambda_errors: NonNegative
    lambda_error_rate_percent: Percent
    lambda_throttles: NonNegative
    lambda_duration_page_percent: Percent
    lambda_duration_notify_percent: Percent
    lambda_memory_percent: Percent
    lambda_iterator_age_ms: Positive
    dynamodb_write_throttles: NonNegative
    dynamodb_error_rate_percent: Percent
    dynamodb_latency_ms: Positive
    dynamodb_capacity_percent: Percent
    dynamodb_table_max_write_units: Positive
    processing_error_rate_rollback_percent: Percent
    dynamodb_throttle_rate_rollback_percent: Percent
    lambda_error_rate_rollback_percent: Percent
    ownership_gaps: NonNegative
    mapping_dropped_events: NonNegative
    on_failure_deliveries: NonNegative
    quarantine_messages: NonNegative
    end_to_end_lag_seconds: Positive
    inconsistencies: NonNegative


class Settings(_Section):
    stage: Stage
    region: Region
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"]
    stream: StreamSettings
    consumer: ConsumerSettings
    tables: TablesSettings
    network: NetworkSettings
    monitor: MonitorSettings
    points: PointsSettings
    alerts: AlertSettings
    thresholds: Thresholds

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        retention_seconds = self.stream.retention_hours * 3600
        if self.consumer.maximum_record_age_seconds >= retention_seconds:
            raise _Cross(
                "consumer.maximumRecordAgeSeconds",
                f"{self.consumer.maximum_record_age_seconds} s must be below the stream's retention "
                f"({retention_seconds} s): a record that expires in the stream is never sent to the on-failure bucket",
            )
        needed = self.stream.shards * self.consumer.parallelization_factor
        if self.consumer.reserved_concurrency < needed:
            raise _Cross(
                "consumer.reservedConcurrency",
                f"{self.consumer.reserved_concurrency} cannot cover {self.stream.shards} shards x parallelization "
                f"{self.consumer.parallelization_factor} = {needed} concurrent batches; raise it or lower "
                "consumer.parallelizationFactor",
            )
        for name in ("lambda_duration_page_percent", "lambda_duration_notify_percent"):
            if getattr(self.thresholds, name) >= 100:
                raise _Cross(f"thresholds.{to_camel(name)}", "a duration threshold at 100% of the timeout never fires")
        # The monitor's own rules (app/contracts.py): it would refuse these at boot, after a successful `up`.
        addresses = [c.address for c in self.monitor.contracts]
        if twice := listed_twice(addresses):
            raise _Cross("monitor.contracts", twice)
        missing = unrated(
            self.monitor.chain_id,
            addresses,
            self.points.per_day,
            self.points.default_per_day,
            contracts_key="monitor.contracts",
            default_key="points.defaultPerDay",
        )
        if missing:
            raise _Cross("points.perDay", f"{missing}: the consumer would quarantine every event of it")
        return self

    @property
    def names(self) -> StageNames:
        """Every physical name of this stage (app/names.py, shared with the local stack and the commands)."""
        return StageNames(str(self.stage))

    @property
    def stream_name(self) -> str:
        return self.names.stream

    def table_name(self, kind: Literal["tokens", "points", "monitor"]) -> str:
        return self.names.table(kind)

    @property
    def function_name(self) -> str:
        return self.names.function

    @property
    def processor_role_name(self) -> str:
        return self.names.processor_role

    @property
    def monitor_role_name(self) -> str:
        return self.names.monitor_role

    @property
    def ssm_prefix(self) -> str:
        return self.names.ssm_prefix

    @property
    def prefix(self) -> str:
        """Name prefix for resources the seed did not name."""
        return self.names.prefix

    @property
    def protect(self) -> bool:
        return str(self.stage) == PROTECTED_STAGE

    @property
    def tags(self) -> dict[str, str]:
        return stage_tags(str(self.stage))

    @property
    def points_per_day_json(self) -> str:
        return json.dumps(self.points.per_day, sort_keys=True, separators=(",", ":"))


class _Cross(ValueError):
    """A rule between two keys; carries the key it blames."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


@dataclass(frozen=True)
class Secrets:
    rpc_url: pulumi.Output[str]
    pagerduty_endpoint: pulumi.Output[str]


# The stack-file keys under the project namespace (region is `aws:region`).
_SECTIONS = tuple(to_camel(name) for name in Settings.model_fields if name != "region")
_SECRETS = ("rpcUrl", "pagerdutyEndpoint")


def parse(raw: dict[str, Any], region: str | None) -> Settings:
    """Validate raw config values (already JSON-decoded); errors name the config key."""
    try:
        return Settings.model_validate({**raw, "region": region})
    except ValidationError as error:
        raise ConfigError(_describe(error)) from None


def load() -> tuple[Settings, Secrets]:
    """Read the stack's config once. Nothing else in the program reads config."""
    import pulumi

    _refuse_unknown_keys(_project_keys())
    config = pulumi.Config(PROJECT)
    raw: dict[str, Any] = {}
    for key in _SECTIONS:
        value = config.get(key)
        if value is None:
            continue
        try:
            raw[key] = json.loads(value)
        except json.JSONDecodeError:
            raw[key] = value
    settings = parse(raw, pulumi.Config("aws").get("region"))
    stack = pulumi.get_stack()
    if stack in {s.value for s in Stage} and stack != settings.stage:
        # Names derive from the stage: staging's config in the prod stack would rename prod's resources.
        raise ConfigError(
            f"{PROJECT}:stage: {settings.stage!s} in stack {stack}; a stack named after a stage deploys that stage"
        )
    rpc_url, pagerduty_endpoint = (_secret(config, key) for key in _SECRETS)
    return settings, Secrets(rpc_url=rpc_url, pagerduty_endpoint=pagerduty_endpoint)


def _project_keys() -> set[str]:
    """Every config key the engine passed under the project namespace, without its prefix.

    pulumi.Config reads one key at a time and cannot list them; the runtime holds the whole map
    (set by the engine, or the PULUMI_CONFIG environment of the language host).
    """
    from pulumi.runtime import config as runtime_config

    names = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    return {name.removeprefix(f"{PROJECT}:") for name in names if name.startswith(f"{PROJECT}:")}


def _refuse_unknown_keys(keys: set[str]) -> None:
    """A key nothing reads (a typo such as `logLevl`) would be ignored silently: refuse it first."""
    known = (*_SECTIONS, *_SECRETS)
    for key in sorted(keys - set(known)):
        close = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else f" (known keys: {', '.join(sorted(known))})"
        raise ConfigError(f"{PROJECT}:{key}: unknown key{hint}")


def _secret(config: pulumi.Config, key: str) -> pulumi.Output[str]:
    value = config.get_secret(key)
    if value is None:
        raise ConfigError(f"{PROJECT}:{key}: missing; set it with `pulumi config set --secret {key} VALUE`")
    return value


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    path = [str(part) for part in first["loc"]]
    message = first["msg"]
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, _Cross):
        path, message = cause.key.split("."), cause.message
    elif message.startswith("Value error, ") and re.match(r"^\w+: ", message[len("Value error, ") :]):
        # A section validator names its own field: "shardCount: required ...".
        field, _, message = message[len("Value error, ") :].partition(": ")
        path.append(field)
    if path == ["region"]:
        key = "aws:region"
    else:
        key = f"{PROJECT}:{path[0]}" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in path[1:])
    more = f" (and {len(error.errors()) - 1} more)" if len(error.errors()) > 1 else ""
    return f"{key}: {message}{more}"
