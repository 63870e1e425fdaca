"""The event contract: one Kinesis record = one decoded chain event, schema v1 (DESIGN §3).

Validation lives here, at the boundary: `decode` turns bytes into a `ChainEvent` or raises
`InvalidEvent` naming the field; everything downstream trusts the typed value.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

SCHEMA_VERSION = 1
ZERO_ADDRESS = "0x" + "0" * 40
MAX_UINT256 = 2**256 - 1
# seq = block * 1_000_000 + logIndex stays strictly increasing only while logIndex < 1_000_000.
LOG_INDEX_LIMIT = 1_000_000
KINDS = frozenset({"transfer"})

# Bounds on every number, so that nothing DynamoDB cannot store (38 significant digits) reaches a
# write: seq < 2**63 * 10**6 has 25 digits, and a rate (app/rates.py) times a timestamp 22.
BLOCK_LIMIT = 2**63
CHAIN_ID_LIMIT = 2**63
TX_INDEX_LIMIT = LOG_INDEX_LIMIT  # a block holds fewer transactions than logs
# Block timestamps (unix s): 0 is allowed (local chains and tests start there); 2**32 is the year 2106.
TIMESTAMP_LIMIT = 2**32
# A v1 record is under 600 bytes and nests two levels. Checked before parsing: Python's parser
# recurses per level (a RecursionError, or a crashed process where web3 raised the recursion
# limit) and refuses integer literals past 4,300 digits with a ValueError.
MAX_RECORD_BYTES = 4096
MAX_CONTAINERS = 16

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_HASH = re.compile(r"0x[0-9a-fA-F]{64}")
_DECIMAL = re.compile(r"(0|[1-9][0-9]*)")


class InvalidEvent(ValueError):
    """A record that can never be applied (a poison record). `field` names what is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ChainEvent:
    chain_id: int
    contract: str
    token_id: int
    from_address: str
    to_address: str
    block_number: int
    block_hash: str
    block_timestamp: int
    tx_hash: str
    tx_index: int
    log_index: int
    kind: str = "transfer"

    @property
    def id(self) -> str:
        return f"{self.chain_id}:{self.tx_hash}:{self.log_index}"

    @property
    def token_key(self) -> str:
        """The token's identity; also the Kinesis partition key and the `tokens` table key."""
        return f"{self.chain_id}:{self.contract}:{self.token_id}"

    @property
    def partition_key(self) -> str:
        return self.token_key

    @property
    def rate_key(self) -> str:
        """Key of this event's contract in the POINTS_PER_DAY map."""
        return f"{self.chain_id}:{self.contract}"

    @property
    def seq(self) -> int:
        return self.block_number * LOG_INDEX_LIMIT + self.log_index

    @property
    def is_mint(self) -> bool:
        return self.from_address == ZERO_ADDRESS

    @property
    def is_burn(self) -> bool:
        return self.to_address == ZERO_ADDRESS

    def to_json(self) -> dict[str, Any]:
        return {
            "v": SCHEMA_VERSION,
            "id": self.id,
            "chainId": self.chain_id,
            "contract": self.contract,
            "kind": self.kind,
            "tokenId": str(self.token_id),
            "from": self.from_address,
            "to": self.to_address,
            "block": {"number": self.block_number, "hash": self.block_hash, "timestamp": self.block_timestamp},
            "tx": {"hash": self.tx_hash, "index": self.tx_index},
            "logIndex": self.log_index,
        }

    def encode(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":")).encode()


def build_event(
    *,
    chain_id: int,
    contract: str,
    token_id: int | str,
    from_address: str,
    to_address: str,
    block_number: int,
    block_hash: str,
    block_timestamp: int,
    tx_hash: str,
    tx_index: int,
    log_index: int,
    kind: str = "transfer",
) -> ChainEvent:
    """Build a validated event from decoded log fields (addresses in any case)."""
    return _from_document(
        {
            "v": SCHEMA_VERSION,
            "chainId": chain_id,
            "contract": contract,
            "kind": kind,
            "tokenId": str(token_id),
            "from": from_address,
            "to": to_address,
            "block": {"number": block_number, "hash": block_hash, "timestamp": block_timestamp},
            "tx": {"hash": tx_hash, "index": tx_index},
            "logIndex": log_index,
        },
        check_id=False,
    )


def decode(data: bytes | str) -> ChainEvent:
    """Decode and validate one record body. Raises InvalidEvent naming the offending field."""
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > MAX_RECORD_BYTES:
        raise InvalidEvent("record", f"{len(raw)} bytes, more than a v1 record can hold ({MAX_RECORD_BYTES})")
    containers = raw.count(b"[") + raw.count(b"{")
    if containers > MAX_CONTAINERS:
        raise InvalidEvent("record", f"{containers} '[' or '{{', more than a v1 record holds ({MAX_CONTAINERS})")
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidEvent("record", f"not UTF-8 JSON ({error})") from None
    except (ValueError, RecursionError) as error:  # e.g. an integer literal past the digits limit
        raise InvalidEvent("record", f"not parseable ({type(error).__name__}: {str(error)[:120]})") from None
    if not isinstance(document, dict):
        raise InvalidEvent("record", f"expected a JSON object, got {type(document).__name__}")
    return _from_document(document, check_id=True)


def _from_document(doc: dict[str, Any], *, check_id: bool) -> ChainEvent:
    version = _field(doc, "v", int)
    if version != SCHEMA_VERSION:
        raise InvalidEvent("v", f"unsupported schema version {version!r} (expected {SCHEMA_VERSION})")
    kind = _field(doc, "kind", str)
    if kind not in KINDS:
        raise InvalidEvent("kind", f"unknown kind {kind!r} (expected one of {sorted(KINDS)})")
    chain_id = _field(doc, "chainId", int)
    if chain_id <= 0:
        raise InvalidEvent("chainId", f"must be a positive integer, got {chain_id}")
    _below(chain_id, CHAIN_ID_LIMIT, "chainId")
    block = _field(doc, "block", dict)
    tx = _field(doc, "tx", dict)
    event = ChainEvent(
        chain_id=chain_id,
        contract=_address(doc, "contract"),
        token_id=_token_id(doc),
        from_address=_address(doc, "from"),
        to_address=_address(doc, "to"),
        block_number=_natural(block, "number", "block.number", BLOCK_LIMIT),
        block_hash=_hash(block, "hash", "block.hash"),
        block_timestamp=_natural(block, "timestamp", "block.timestamp", TIMESTAMP_LIMIT),
        tx_hash=_hash(tx, "hash", "tx.hash"),
        tx_index=_natural(tx, "index", "tx.index", TX_INDEX_LIMIT),
        log_index=_natural(doc, "logIndex", "logIndex", LOG_INDEX_LIMIT),
        kind=kind,
    )
    if check_id:
        stated = _field(doc, "id", str)
        if stated.lower() != event.id:
            raise InvalidEvent("id", f"{stated!r} does not match chainId:tx.hash:logIndex ({event.id!r})")
    return event


def _field(doc: dict[str, Any], key: str, kind: type, name: str | None = None) -> Any:
    name = name or key
    if key not in doc:
        raise InvalidEvent(name, "missing")
    value = doc[key]
    # bool is an int subclass; a JSON true is never a valid number here.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidEvent(name, f"expected {kind.__name__}, got {type(value).__name__} {value!r}")
    return value


def _natural(doc: dict[str, Any], key: str, name: str, limit: int) -> int:
    value = _field(doc, key, int, name)
    if value < 0:
        raise InvalidEvent(name, f"must not be negative, got {value}")
    return _below(value, limit, name)


def _below(value: int, limit: int, name: str) -> int:
    if value >= limit:
        shown = str(value) if value < 10**30 else f"a {len(str(value))}-digit number"
        raise InvalidEvent(name, f"must be below {limit}, got {shown}")
    return value


def _address(doc: dict[str, Any], key: str) -> str:
    value = _field(doc, key, str)
    if not _ADDRESS.fullmatch(value):
        raise InvalidEvent(key, f"not a 20-byte 0x hex address: {value!r}")
    return value.lower()


def _hash(doc: dict[str, Any], key: str, name: str) -> str:
    value = _field(doc, key, str, name)
    if not _HASH.fullmatch(value):
        raise InvalidEvent(name, f"not a 32-byte 0x hex hash: {value!r}")
    return value.lower()


def _token_id(doc: dict[str, Any]) -> int:
    value = _field(doc, "tokenId", str)
    if not _DECIMAL.fullmatch(value):
        raise InvalidEvent("tokenId", f"must be a non-negative decimal string without sign or padding: {value!r}")
    token_id = int(value) if len(value) <= 78 else MAX_UINT256 + 1  # 2**256 has 78 digits
    if token_id > MAX_UINT256:
        raise InvalidEvent("tokenId", "exceeds uint256")
    return token_id
