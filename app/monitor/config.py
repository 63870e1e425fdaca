"""The monitor's configuration: the YAML file of DESIGN §10, validated, plus what it names in SSM.

Every error is one line that names the key (`contracts[0].address: ...`); the CLI turns it into
exit status 2. The RPC URL may carry an API key, so it is only ever shown through `redact`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    model_validator,
)

from app.contracts import listed_twice, unrated
from app.names import QUARANTINE_PARAMETER
from app.rates import Rates, RatesError

SSM_PREFIX = "/ngu-points-system-v2"


class ConfigError(Exception):
    """A configuration value that stops the monitor; the message names the key."""


def _address(value: str) -> str:
    if not (len(value) == 42 and value[:2] == "0x" and all(c in "0123456789abcdefABCDEF" for c in value[2:])):
        raise ValueError(f"not a 0x-prefixed 20-byte hex address: {value!r}")
    digits = value[2:]
    if digits != digits.lower() and digits != digits.upper() and not _eip55_valid(digits):
        raise ValueError(f"mixed-case address fails its EIP-55 checksum (a typo?): {value!r}")
    return value.lower()


def _eip55_valid(digits: str) -> bool:
    """EIP-55: a letter is upper case exactly when its nibble of keccak256(lowercase hex) is >= 8."""
    from eth_hash.auto import keccak  # web3's own keccak; imported only for mixed-case input

    nibbles = keccak(digits.lower().encode()).hex()
    return all(c == (c.upper() if int(n, 16) >= 8 else c.lower()) for c, n in zip(digits, nibbles, strict=False))


def _rpc_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("ws", "wss", "http", "https") or not parts.hostname:
        raise ValueError(f"expected a ws://, wss://, http:// or https:// URL, got {redact(value)!r}")
    return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL, got {redact(value)!r}")
    return value


Address = Annotated[str, AfterValidator(_address)]
RpcUrl = Annotated[str, AfterValidator(_rpc_url)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
Name = Annotated[str, Field(min_length=1, pattern=r"^\S+$")]


class ContractConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    address: Address
    start_block: NonNegativeInt = 0


class MonitorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    chain_id: PositiveInt
    rpc_url: RpcUrl | None = None
    rpc_url_parameter: Name | None = None
    http_rpc_url: HttpUrl | None = None
    confirmations: NonNegativeInt
    contracts: Annotated[list[ContractConfig], Field(min_length=1)]
    stream_name: Name | None = None
    checkpoint_table: Name | None = None
    checkpoint_file: Path | None = None
    sink: Literal["kinesis", "dynamodb"] = "kinesis"
    tokens_table: Name | None = None
    points_table: Name | None = None
    # sink: dynamodb sets inconsistent events aside there; else SSM {stage}/QUARANTINE_QUEUE_URL.
    quarantine_queue_url: HttpUrl | None = None
    points_per_day: dict[str, NonNegativeInt] | None = None
    default_points_per_day: NonNegativeInt | None = None
    # Tuning; the defaults suit a hosted provider.
    poll_interval_seconds: PositiveFloat = 12.0
    max_range_blocks: PositiveInt = 5000
    target_logs_per_range: PositiveInt = 2000
    max_pending_records: PositiveInt = 20000
    # PutRecords calls in flight. 1 is the safe default: moto (the local stack) loses records when
    # two calls write to one shard at once. Against AWS, more calls hide the network round trip.
    publish_concurrency: Annotated[int, Field(ge=1, le=16)] = 1
    checkpoint_interval_seconds: PositiveFloat = 1.0
    startup_backoff_cap_seconds: PositiveFloat = 30.0  # the longest wait between start-up tries
    metrics_interval_seconds: PositiveFloat = 60.0

    @model_validator(mode="after")
    def _one_of_each(self) -> MonitorConfig:
        if (self.rpc_url is None) == (self.rpc_url_parameter is None):
            raise _KeyError("rpc_url", "give exactly one of rpc_url and rpc_url_parameter")
        if (self.checkpoint_table is None) == (self.checkpoint_file is None):
            raise _KeyError("checkpoint_table", "give exactly one of checkpoint_table and checkpoint_file")
        addresses = [c.address for c in self.contracts]
        if twice := listed_twice(addresses):
            raise _KeyError("contracts", twice)
        if self.sink == "dynamodb":
            for key in ("tokens_table", "points_table"):
                if getattr(self, key) is None:
                    raise _KeyError(key, "missing (required by sink: dynamodb)")
            rates = self.rates()
            missing = unrated(
                self.chain_id,
                addresses,
                rates.by_contract,
                rates.default,
                contracts_key="contracts",
                default_key="default_points_per_day",
            )
            if missing:
                raise _KeyError("points_per_day", missing)
        return self

    def rates(self) -> Rates:
        try:
            return Rates.parse(
                json.dumps(self.points_per_day or {}),
                None if self.default_points_per_day is None else str(self.default_points_per_day),
                source="points_per_day",
            )
        except RatesError as error:
            raise _KeyError("points_per_day", str(error).removeprefix("points_per_day: ")) from None


class _KeyError(ValueError):
    """Raised inside validators so that the message names a key of the whole document."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")


@dataclass(frozen=True)
class Settings:
    """The validated file plus what it points at in SSM: everything the monitor needs to start."""

    config: MonitorConfig
    rpc_url: str
    http_rpc_url: str
    stream_name: str | None
    quarantine_queue_url: str | None = None

    @property
    def websocket_url(self) -> str | None:
        return self.rpc_url if urlsplit(self.rpc_url).scheme in ("ws", "wss") else None


def load_config(path: str | Path) -> MonitorConfig:
    """Read and validate the YAML file. Raises ConfigError with one line naming the key."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: expected a mapping of keys, got {type(document).__name__}")
    try:
        return MonitorConfig.model_validate(document)
    except ValidationError as error:
        raise ConfigError(f"{path}: {_first_error(error)}") from None


def _first_error(error: ValidationError) -> str:
    first = error.errors(include_url=False)[0]
    key = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"]).lstrip(".")
    kind, message = first["type"], first["msg"]
    if kind == "missing":
        return f"{key}: missing"
    if kind == "extra_forbidden":
        return f"{key}: unknown key"
    if kind == "value_error":
        # Our validators' messages; a _KeyError already starts with the key it names.
        message = message.removeprefix("Value error, ")
        return message if not key else f"{key}: {message}"
    return f"{key}: {message} (got {_show(first.get('input'))})"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def resolve(config: MonitorConfig, ssm: Any) -> Settings:
    """Fetch what the file names in SSM (the RPC URL SecureString, the stream name or, for the
    direct sink, the quarantine queue's URL)."""
    rpc_url = config.rpc_url
    if rpc_url is None:
        rpc_url = _parameter(ssm, config.rpc_url_parameter, "rpc_url_parameter")
        try:
            _rpc_url(rpc_url)
        except ValueError as error:
            raise ConfigError(f"rpc_url_parameter: SSM parameter {config.rpc_url_parameter}: {error}") from None
    stream_name = config.stream_name
    if config.sink == "kinesis" and stream_name is None:
        name = f"{SSM_PREFIX}/{config.stage}/KINESIS_STREAM_NAME"
        stream_name = _parameter(ssm, name, "stream_name")
    queue_url = config.quarantine_queue_url
    if config.sink == "dynamodb" and queue_url is None:
        name = f"{SSM_PREFIX}/{config.stage}/{QUARANTINE_PARAMETER}"
        queue_url = _parameter(ssm, name, "quarantine_queue_url")
    return Settings(config, rpc_url, config.http_rpc_url or http_url_of(rpc_url), stream_name, queue_url)


def _parameter(ssm: Any, name: str, key: str) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "ParameterNotFound":
            raise ConfigError(f"{key}: SSM parameter {name} not found") from None
        raise ConfigError(f"{key}: cannot read SSM parameter {name} ({code})") from None
    except BotoCoreError as error:  # AWS unreachable: the caller waits for it
        from app.monitor.startup import Unreachable

        raise Unreachable(f"{key}: cannot read SSM parameter {name} ({type(error).__name__})") from None


def http_url_of(rpc_url: str) -> str:
    """The HTTP endpoint of a WebSocket URL (same host, port and path)."""
    parts = urlsplit(rpc_url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return parts._replace(scheme=scheme).geturl()


def redact(url: str) -> str:
    """scheme://host[:port] only: providers put API keys in the path, the query or the user info."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    hidden = "/…" if (parts.path.strip("/") or parts.query or parts.username) else ""
    return f"{parts.scheme}://{host}{port}{hidden}"
