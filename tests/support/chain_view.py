"""What the fault tests check against: the Transfers of the chain as the node holds it now (read
raw, independently of the monitor), what reached the stream, and whether a checkpoint is sound."""

from __future__ import annotations

from typing import Any

import requests

from app.local.services import CHAIN_ID

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"


def rpc(url: str, method: str, params: list | None = None) -> Any:
    answer = requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}, timeout=60)
    body = answer.json()
    if "error" in body:
        raise RuntimeError(f"{method}: {body['error']}")
    return body["result"]


def canonical_transfers(url: str, address: str, first_block: int = 0) -> dict[str, str]:
    """Every ERC-721 Transfer of the node's chain now: event id -> block hash."""
    query = {"fromBlock": hex(first_block), "toBlock": "latest", "address": address, "topics": [TRANSFER_TOPIC]}
    return {
        f"{CHAIN_ID}:{log['transactionHash']}:{int(log['logIndex'], 16)}": log["blockHash"]
        for log in rpc(url, "eth_getLogs", [query])
        if len(log["topics"]) == 4
    }


def block_of(url: str, address: str, first_block: int = 0) -> dict[str, int]:
    query = {"fromBlock": hex(first_block), "toBlock": "latest", "address": address, "topics": [TRANSFER_TOPIC]}
    return {
        f"{CHAIN_ID}:{log['transactionHash']}:{int(log['logIndex'], 16)}": int(log["blockNumber"], 16)
        for log in rpc(url, "eth_getLogs", [query])
    }


def published(aws: Any) -> set[tuple[str, str]]:
    """(event id, block hash) of every record on the stream."""
    return {(event.id, event.block_hash) for *_, event in aws.records()}


def missing_canonical(url: str, aws: Any, address: str) -> set[str]:
    """Canonical transfers not on the stream."""
    on_stream = published(aws)
    return {i for i, h in canonical_transfers(url, address).items() if (i, h) not in on_stream}


def orphaned_on_stream(url: str, aws: Any, address: str) -> set[tuple[str, str]]:
    canonical = set(canonical_transfers(url, address).items())
    return published(aws) - canonical


def checkpoint_sound(url: str, aws: Any, address: str) -> bool:
    """The stored checkpoint never passed an unpublished canonical event: when its block is on
    the node's chain (same hash), every Transfer up to it is on the stream."""
    item = aws.checkpoint()
    if item is None or "hash" not in item:
        return True
    block = int(item["block"]["N"])
    header = rpc(url, "eth_getBlockByNumber", [hex(block), False])
    if header is None or header["hash"] != item["hash"]["S"]:
        return True  # an orphaned checkpoint: the monitor finds the fork from it
    blocks = block_of(url, address)
    on_stream = published(aws)
    canonical = canonical_transfers(url, address)
    return all((i, canonical[i]) in on_stream for i, number in blocks.items() if number <= block)
