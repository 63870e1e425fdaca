"""What reconcile asks the chain: its id and head, every Transfer of the watched contracts in a block
range (the monitor's own RangeReader: same filters, limits, hash checks and decoding), and `ownerOf`
at a block, in batched JSON-RPC calls. Every failure is one line that names the node (redacted).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.events import ZERO_ADDRESS, ChainEvent
from app.monitor.config import MonitorConfig, redact
from app.monitor.ranges import ChainMoved, MissingBlock, RangeReader
from app.monitor.rpc import JsonRpc, RpcError, RpcUnavailable

OWNER_OF = "0x6352211e"  # ownerOf(uint256)
OWNER_BATCH = 100


class ChainError(Exception):
    """The node cannot answer, or its answers cannot be trusted; the message names the node."""


@dataclass(frozen=True)
class History:
    first_block: int
    last_block: int
    events: list[ChainEvent]


class ChainClient:
    def __init__(self, config: MonitorConfig, http_url: str, *, timeout: float = 30.0) -> None:
        self.config = config
        self.url = http_url
        self.node = redact(http_url)
        self.rpc = JsonRpc(http_url, timeout=timeout)

    def run(self, work: Callable[[ChainClient], object]) -> object:
        """Run one coroutine-producing `work(self)` to completion; node failures become ChainError."""

        async def main() -> object:
            try:
                return await work(self)  # type: ignore[misc]
            except RpcUnavailable as error:
                raise ChainError(f"node {self.node}: unreachable ({error})") from None
            except RpcError as error:
                raise ChainError(f"node {self.node}: {error}") from None
            except (ChainMoved, MissingBlock) as error:
                raise ChainError(f"node {self.node}: {error}; try again") from None
            finally:
                await self.rpc.close()

        return asyncio.run(main())

    async def head(self) -> int:
        chain_id = int(await self.rpc.call("eth_chainId"), 16)
        if chain_id != self.config.chain_id:
            raise ChainError(f"node {self.node}: chain {chain_id}, but the config says chain_id {self.config.chain_id}")
        return int(await self.rpc.call("eth_blockNumber"), 16)

    async def history(self, last_block: int, progress: Callable[[int], None] = lambda _: None) -> History:
        """Every ERC-721 Transfer of the configured contracts from their start blocks to `last_block`."""
        reader = RangeReader(
            self.rpc,
            chain_id=self.config.chain_id,
            contracts=self.config.contracts,
            max_span=self.config.max_range_blocks,
            target_logs=self.config.target_logs_per_range,
        )
        first = min(c.start_block for c in self.config.contracts)
        events: list[ChainEvent] = []
        block = first
        while block <= last_block:
            read = await reader.read(block, last_block)
            events += read.events
            progress(read.last - block + 1)
            block = read.last + 1
        return History(first, last_block, events)

    async def owners(self, token_keys: Sequence[str], block: int) -> dict[str, str]:
        """`ownerOf` of each token at `block`, lowercase; the zero address when the call reverts
        (burned or never minted). Batched; a batch with a revert in it is asked again one by one."""
        owners: dict[str, str] = {}
        for start in range(0, len(token_keys), OWNER_BATCH):
            chunk = list(token_keys[start : start + OWNER_BATCH])
            try:
                answers = await self.rpc.batch("eth_call", [_owner_call(key, block) for key in chunk])
            except RpcError:
                answers = [await self.owner_word(key, block) for key in chunk]
            for key, answer in zip(chunk, answers, strict=True):
                owners[key] = address_of(answer) if answer else ZERO_ADDRESS
        return owners

    async def owner_word(self, key: str, block: int) -> str | None:
        """One `ownerOf` call: the 32-byte answer, or None when it reverts."""
        try:
            return await self.rpc.call("eth_call", _owner_call(key, block))
        except RpcError as error:
            if _is_revert(error):
                return None
            raise


def _owner_call(token_key: str, block: int) -> list[object]:
    _, contract, token_id = token_key.split(":")
    return [{"to": contract, "data": OWNER_OF + f"{int(token_id):064x}"}, hex(block)]


def address_of(word: str) -> str:
    hexdigits = word.removeprefix("0x")
    if len(hexdigits) != 64:
        raise RpcError("eth_call", None, f"ownerOf answered {word!r}, not one 32-byte word")
    return "0x" + hexdigits[-40:].lower()


def _is_revert(error: RpcError) -> bool:
    return error.code == 3 or "revert" in error.message.lower()
