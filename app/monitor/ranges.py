"""The range reader: contiguous block ranges read with `eth_getLogs` over HTTP, plus the headers
that give each range its timestamps and the hashes that chain it to the previous one.

The span adapts: it halves when the provider refuses a range ("range too large", "too many
results") or a range returns more logs than the target, and doubles back up to the maximum while
ranges come back small.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass

from app.events import ChainEvent
from app.monitor.config import ContractConfig
from app.monitor.decoding import TRANSFER_TOPIC, decode_transfers, log_block
from app.monitor.rpc import JsonRpc, RpcError

HEADER_BATCH = 200
INITIAL_SPAN = 4
# Providers word their log limits differently (block range, result count, response size).
_LIMIT_MESSAGE = re.compile(
    r"range|too many|too large|more than|limit|exceed|response size|max results|timeout", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class Block:
    number: int
    hash: str
    parent_hash: str
    timestamp: int


@dataclass(frozen=True, slots=True)
class Range:
    """Blocks `first..last` (inclusive) as read: their events and the hashes at both ends."""

    first: int
    last: int
    parent_hash: str  # the parent of `first`: must be the hash of the last block read before it
    last_hash: str
    events: list[ChainEvent]
    hashes: tuple[tuple[int, str], ...]  # every block hash this read saw, the parent of `first` included


class ChainMoved(Exception):
    """The node's answers disagree (a log's block hash is not the header's): read the range again."""


class MissingBlock(Exception):
    """The node does not have a block it should have (it is behind, or the chain got shorter)."""


def is_limit_error(error: RpcError) -> bool:
    return error.method == "eth_getLogs" and (error.code == -32005 or bool(_LIMIT_MESSAGE.search(error.message)))


class RangeReader:
    def __init__(
        self,
        rpc: JsonRpc,
        *,
        chain_id: int,
        contracts: Sequence[ContractConfig],
        max_span: int,
        target_logs: int,
    ) -> None:
        self.rpc = rpc
        self.chain_id = chain_id
        self.start_blocks = {c.address: c.start_block for c in contracts}
        self.max_span = max_span
        self.target_logs = target_logs
        self.span = min(max_span, INITIAL_SPAN)  # small first: publishing starts while reading goes on
        self.shrinks = 0

    async def head(self) -> int:
        return int(await self.rpc.call("eth_blockNumber"), 16)

    async def read(self, first: int, last: int) -> Range:
        """Read from `first` up to at most `last`; the range returned ends where the span allowed."""
        while True:
            end = min(last, first + self.span - 1)
            try:
                logs = await self.rpc.call("eth_getLogs", [self._filter(first, end)])
            except RpcError as error:
                if not is_limit_error(error) or end == first:
                    raise
                self.span = max(1, (end - first + 1) // 2)
                self.shrinks += 1
                continue
            break
        self._adapt(end - first + 1, len(logs))
        needed = {first, end} | {log_block(log) for log in logs}
        blocks = await self.blocks(sorted(needed))
        for log in logs:
            if log["blockHash"].lower() != blocks[log_block(log)].hash:
                raise ChainMoved(f"block {log_block(log)}: log block hash differs from the header")
        events = decode_transfers(
            logs,
            chain_id=self.chain_id,
            timestamps={number: block.timestamp for number, block in blocks.items()},
            start_blocks=self.start_blocks,
        )
        parent = blocks[first].parent_hash
        hashes = ((first - 1, parent), *((number, blocks[number].hash) for number in sorted(blocks)))
        return Range(first, end, parent, blocks[end].hash, events, hashes)

    async def blocks(self, numbers: Sequence[int]) -> dict[int, Block]:
        """Headers by number, batched; each block fetched once however many logs it has."""
        chunks = [numbers[i : i + HEADER_BATCH] for i in range(0, len(numbers), HEADER_BATCH)]
        answers = await asyncio.gather(
            *(self.rpc.batch("eth_getBlockByNumber", [[hex(n), False] for n in chunk]) for chunk in chunks)
        )
        blocks = {}
        for chunk, headers in zip(chunks, answers, strict=True):
            for number, header in zip(chunk, headers, strict=True):
                if header is None:
                    raise MissingBlock(f"block {number}: the node does not have it")
                blocks[number] = Block(
                    number, header["hash"].lower(), header["parentHash"].lower(), int(header["timestamp"], 16)
                )
        return blocks

    def _filter(self, first: int, last: int) -> dict[str, object]:
        return {
            "fromBlock": hex(first),
            "toBlock": hex(last),
            "address": list(self.start_blocks),
            "topics": [TRANSFER_TOPIC],
        }

    def _adapt(self, span: int, logs: int) -> None:
        if logs > self.target_logs and span > 1:
            self.span = max(1, span // 2)
        elif logs < self.target_logs // 4 and span >= self.span:
            self.span = min(self.max_span, self.span * 2)
