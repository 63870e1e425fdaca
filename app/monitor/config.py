"""The monitor's configuration: the YAML file of DESIGN §10, validated, plus what it names in SSM.

Every error is one line that names the key (`contracts[0].address: ...`); the CLI turns it into
exit status 2. The RPC URL may carry an API key, so it is only ever shown through `redact`.

Validated here without pydantic (the stack's settings use it): importing pydantic and building the
two models took ~80 ms, a quarter of the monitor's budget from process start to its first
eth_getLogs (< 0.3 s, issue 8), for 25 keys whose checks fit in a table. Numbers are strict: YAML
gives them typed, so a quoted "5" or a `true` where a count belongs is refused, not coerced.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from app.contracts import listed_twice, unrated
from app.names import QUARANTINE_PARAMETER
from app.rates import Rates, RatesError

SSM_PREFIX = "/ngu-points-system-v2"
_STAGE = re.compile(r"[a-z0-9][a-z0-9-]*")
_NAME = re.compile(r"\S+")


class ConfigError(Exception):
    """A configuration value that stops the monitor; the message names the key."""


def _address(value: object) -> str:
    if not (
        isinstance(value, str)
        and len(value) == 42
        and value[:2] == "0x"
        and all(c in "0123456789abcdefABCDEF" for c in value[2:])
    ):
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


def _rpc_url(value: object) -> str:
    parts = urlsplit(_text(value))
    if parts.scheme not in ("ws", "wss", "http", "https") or not parts.hostname:
        raise ValueError(f"expected a ws://, wss://, http:// or https:// URL, got {redact(str(value))!r}")
    return str(value)


def _http_url(value: object) -> str:
    parts = urlsplit(_text(value))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL, got {redact(str(value))!r}")
    return str(value)


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_show(value)}")
    return value


def _name(value: object) -> str:
    if not _NAME.fullmatch(_text(value)):
        raise ValueError(f"expected a name without spaces, got {_show(value)}")
    return str(value)


def _stage(value: object) -> str:
    if not _STAGE.fullmatch(_text(value)):
        raise ValueError(f"expected lower-case letters, digits and '-', got {_show(value)}")
    return str(value)


def _integer(low: int, high: int | None = None) -> Callable[[object], int]:
    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
            bounds = f">= {low}" if high is None else f"from {low} to {high}"
            raise ValueError(f"expected an integer {bounds}, got {_show(value)}")
        return value

    return check


def _positive_number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0 or value != value:
        raise ValueError(f"expected a number > 0, got {_show(value)}")
    return float(value)


def _sink(value: object) -> str:
    if value not in ("kinesis", "dynamodb"):
        raise ValueError(f"expected kinesis or dynamodb, got {_show(value)}")
    return str(value)


def _path(value: object) -> Path:
    return Path(_text(value))


def _rates_map(value: object) -> dict[str, int]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping of chainId:contract to points per day, got {_show(value)}")
    rates = {}
    for key, rate in value.items():
        try:
            rates[_text(key)] = _integer(0)(rate)
        except ValueError as error:
            raise ValueError(f"{key!r}: {error}") from None
    return rates


def _contracts(value: object) -> list[ContractConfig]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"expected a non-empty list of contracts, got {_show(value)}")
    contracts = []
    for index, item in enumerate(value):
        if isinstance(item, ContractConfig):
            contracts.append(item)
            continue
        if not isinstance(item, dict):
            raise _KeyError(f"contracts[{index}]", f"expected a mapping, got {_show(item)}")
        _check_keys(item, ContractConfig, f"contracts[{index}].")
        try:
            contracts.append(ContractConfig(**item))
        except _KeyError as error:
            raise _KeyError(f"contracts[{index}].{error.key}", error.reason) from None
    return contracts


@dataclass(frozen=True, slots=True)
class ContractConfig:
    address: str
    start_block: int = 0

    def __post_init__(self) -> None:
        _check(self, {"address": _address, "start_block": _integer(0)})


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitorConfig:
    stage: str
    chain_id: int
    rpc_url: str | None = field(default=None, repr=False)
    rpc_url_parameter: str | None = None
    http_rpc_url: str | None = field(default=None, repr=False)
    confirmations: int
    contracts: list[ContractConfig]
    stream_name: str | None = None
    checkpoint_table: str | None = None
    checkpoint_file: Path | None = None
    sink: str = "kinesis"
    tokens_table: str | None = None
    points_table: str | None = None
    # sink: dynamodb sets inconsistent events aside there; else SSM {stage}/QUARANTINE_QUEUE_URL.
    quarantine_queue_url: str | None = None
    points_per_day: dict[str, int] | None = None
    default_points_per_day: int | None = None
    # Tuning; the defaults suit a hosted provider.
    poll_interval_seconds: float = 12.0
    max_range_blocks: int = 5000
    target_logs_per_range: int = 2000
    max_pending_records: int = 20000
    # PutRecords calls in flight. 1 is the safe default: moto (the local stack) loses records when
    # two calls write to one shard at once. Against AWS, more calls hide the network round trip.
    publish_concurrency: int = 1
    checkpoint_interval_seconds: float = 1.0
    startup_backoff_cap_seconds: float = 30.0  # the longest wait between start-up tries
    metrics_interval_seconds: float = 60.0

    def __post_init__(self) -> None:
        _check(self, _CHECKS)
        self._one_of_each()

    @classmethod
    def parse(cls, document: Mapping[str, Any]) -> MonitorConfig:
        """Validate a decoded document: unknown and missing keys are named before any value."""
        _check_keys(document, cls, "")
        return cls(**document)

    def _one_of_each(self) -> None:
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

    def rates(self) -> Rates:
        try:
            return Rates.parse(
                json.dumps(self.points_per_day or {}),
                None if self.default_points_per_day is None else str(self.default_points_per_day),
                source="points_per_day",
            )
        except RatesError as error:
            raise _KeyError("points_per_day", str(error).removeprefix("points_per_day: ")) from None


# Each key's check; None (an optional key left out) is not checked.
_CHECKS: dict[str, Callable[[object], object]] = {
    "stage": _stage,
    "chain_id": _integer(1),
    "rpc_url": _rpc_url,
    "rpc_url_parameter": _name,
    "http_rpc_url": _http_url,
    "confirmations": _integer(0),
    "contracts": _contracts,
    "stream_name": _name,
    "checkpoint_table": _name,
    "checkpoint_file": _path,
    "sink": _sink,
    "tokens_table": _name,
    "points_table": _name,
    "quarantine_queue_url": _http_url,
    "points_per_day": _rates_map,
    "default_points_per_day": _integer(0),
    "poll_interval_seconds": _positive_number,
    "max_range_blocks": _integer(1),
    "target_logs_per_range": _integer(1),
    "max_pending_records": _integer(1),
    "publish_concurrency": _integer(1, 16),
    "checkpoint_interval_seconds": _positive_number,
    "startup_backoff_cap_seconds": _positive_number,
    "metrics_interval_seconds": _positive_number,
}


def _check(instance: object, checks: Mapping[str, Callable[[object], object]]) -> None:
    """Check and normalise each field in declaration order; the first failure names its key."""
    for spec in fields(instance):  # type: ignore[arg-type]
        value = getattr(instance, spec.name)
        if value is None and spec.default is None:
            continue
        try:
            object.__setattr__(instance, spec.name, checks[spec.name](value))
        except _KeyError:
            raise
        except ValueError as error:
            raise _KeyError(spec.name, str(error)) from None


def _check_keys(document: Mapping[str, Any], cls: type, prefix: str) -> None:
    """Unknown and missing keys are named before any value is checked."""
    names = [spec.name for spec in fields(cls)]
    for key in document:
        if key not in names:
            from difflib import get_close_matches

            close = get_close_matches(str(key), names, n=1)
            raise _KeyError(f"{prefix}{key}", "unknown key" + (f" (did you mean {close[0]}?)" if close else ""))
    for spec in fields(cls):
        if spec.name not in document and spec.default is MISSING and spec.default_factory is MISSING:
            raise _KeyError(f"{prefix}{spec.name}", "missing")


class _KeyError(ValueError):
    """A value refused, with the key of the whole document that names it."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


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
        return MonitorConfig.parse(document)
    except _KeyError as error:
        raise ConfigError(f"{path}: {error}") from None


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
