"""The range reader: contiguous block ranges read with `eth_getLogs` over HTTP, accepted only when
the node's answers prove them complete for one chain.

Why these proofs (issue 8): a node can answer `eth_getLogs` from another chain than its headers (a
reorg between the calls) or from a replica behind the head (load-balanced providers), and an empty
answer looks exactly like "no events". So every header of the range is fetched (batched, in
parallel with the logs) and:

- the headers chain: each `parentHash` is the previous header's hash, and the first one's parent is
  returned for the caller to check against the hash it published last (across range boundaries);
- a header the node does not have (null) is never accepted: its head is below the range's end;
- each log's `blockHash` is its header's hash (the logs come from the chain the headers describe);
- each header's `logsBloom` (committed to by the header hash) is checked for our contracts and the
  Transfer topic: a block whose bloom may match but that got no log is re-read by
  `eth_getLogs({blockHash})`, which a node lacking that block must refuse rather than answer `[]`.
  Logs it finds are merged (counted as a repair); a refusal ends the range before that block.

Every range, however deep below the head, is proven this way. A depth window (full proofs only
near the head, the ends and the blocks with logs below it) was tried and dropped: behind a load
balancer a deep range's `eth_getLogs` can come from a replica that is far behind (only each
block's bloom exposes what its answer lacks), and a reorg can be deeper than any window.
The price is one header per block: ~25-35 us a block here (anvil, 8 connections), nothing for a
monitor following the head (it read those headers anyway), and ~0.35 s more for a backfill of
10,000 empty blocks (bench/README.md).

The extra calls are the headers (one batched call per 200 blocks, in parallel) and the re-reads of
bloom false positives. The span adapts: it halves when the provider refuses a range
("range too large", "too many results") or a range returns more logs than the target, and doubles
back up to the maximum while ranges come back small.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.events import ChainEvent
from app.monitor.config import ContractConfig
from app.monitor.decoding import TRANSFER_TOPIC, decode_transfers, log_block
from app.monitor.rpc import JsonRpc, RpcError

HEADER_BATCH = 200
INITIAL_SPAN = 4
EMPTY_BLOOM = "0x" + "0" * 512
_BLOOM = re.compile(r"0x[0-9a-fA-F]{512}")
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
    bloom: str = EMPTY_BLOOM


@dataclass(frozen=True, slots=True)
class Range:
    """Blocks `first..last` (inclusive) as read: their events and the hashes at both ends."""

    first: int
    last: int
    parent_hash: str  # the parent of `first`: must be the hash of the last block read before it
    last_hash: str
    events: list[ChainEvent]
    hashes: tuple[tuple[int, str], ...]  # every block hash of the range, the parent of `first` included
    repairs: tuple[str, ...] = ()  # what the first answers lacked and a re-read supplied
    rereads: int = 0  # blocks read again by hash (their bloom may hold our logs; most find none)


class InconsistentRead(Exception):
    """The node's answers do not prove the range complete: nothing of it is used; read it again."""


class ChainMoved(InconsistentRead):
    """The answers describe different chains (a log's block hash is not the header's, headers do not chain)."""


class MissingBlock(InconsistentRead):
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
        # Built in a thread from the first read on: importing keccak (60-80 ms) overlaps the node's answers.
        self._bloom: concurrent.futures.Future[BloomFilter] | None = None

    async def head(self) -> int:
        return int(await self.rpc.call("eth_blockNumber"), 16)

    async def read(self, first: int, last: int) -> Range:
        """Read from `first` up to at most `last`; the range returned ends where the span allowed
        (or before a block whose logs the node could not prove)."""
        while True:
            end = min(last, first + self.span - 1)
            logs_call = asyncio.ensure_future(self.rpc.call("eth_getLogs", [self._filter(first, end)]))
            headers_call = asyncio.ensure_future(self.blocks(range(first, end + 1)))
            self._start_bloom()  # once the first calls are on their way
            try:
                logs = await logs_call
            except RpcError as error:
                headers_call.cancel()
                await asyncio.gather(headers_call, return_exceptions=True)
                if not is_limit_error(error) or end == first:
                    raise
                self.span = max(1, (end - first + 1) // 2)
                self.shrinks += 1
                continue
            except BaseException:
                headers_call.cancel()
                await asyncio.gather(headers_call, return_exceptions=True)
                raise
            blocks = await headers_call
            break
        self._adapt(end - first + 1, len(logs))
        _check_chain(blocks, first, end)
        by_block = _logs_by_block(logs, blocks, first, end)
        end, repairs, rereads = await self._complete(blocks, by_block, first, end)
        events = decode_transfers(
            [log for number in sorted(by_block) if number <= end for log in by_block[number]],
            chain_id=self.chain_id,
            timestamps={number: block.timestamp for number, block in blocks.items()},
            start_blocks=self.start_blocks,
        )
        hashes = ((first - 1, blocks[first].parent_hash), *((n, blocks[n].hash) for n in range(first, end + 1)))
        return Range(first, end, blocks[first].parent_hash, blocks[end].hash, events, hashes, repairs, rereads)

    def _start_bloom(self) -> None:
        if self._bloom is None:
            self._bloom = concurrent.futures.Future()
            addresses = list(self.start_blocks)
            threading.Thread(target=_build_bloom, args=(self._bloom, addresses), daemon=True).start()

    async def _complete(
        self, blocks: Mapping[int, Block], by_block: dict[int, list[dict[str, Any]]], first: int, end: int
    ) -> tuple[int, tuple[str, ...], int]:
        """Re-read by hash every block whose bloom may hold our Transfer but that got no log.
        Returns the end of the proven prefix, the repairs made and how many blocks were re-read."""
        bloom = await asyncio.shield(asyncio.wrap_future(self._bloom))  # shared by later reads: never cancelled
        suspects = [n for n in range(first, end + 1) if n not in by_block and bloom.may_contain(blocks[n].bloom)]
        if not suspects:
            return end, (), 0
        answers = await self.rpc.batch(
            "eth_getLogs", [[self._filter_hash(blocks[n].hash)] for n in suspects], return_errors=True
        )
        repairs = []
        for number, answer in zip(suspects, answers, strict=True):
            if isinstance(answer, RpcError) or not isinstance(answer, list):
                if number == first:
                    raise MissingBlock(f"block {number}: the bloom may hold our logs and the node cannot read them")
                repairs.append(f"block {number}: logs unreadable by hash; range ended before it")
                return number - 1, tuple(repairs), len(suspects)
            for log in answer:
                if log["blockHash"].lower() != blocks[number].hash or log_block(log) != number:
                    raise ChainMoved(f"block {number}: a log read by hash belongs to another block")
            if answer:
                by_block[number] = answer
                repairs.append(f"block {number}: {len(answer)} logs missing from the range answer")
        return end, tuple(repairs), len(suspects)

    async def blocks(self, numbers: Sequence[int]) -> dict[int, Block]:
        """Headers by number, batched; each block fetched once however many logs it has."""
        chunks = [numbers[i : i + HEADER_BATCH] for i in range(0, len(numbers), HEADER_BATCH)]
        answers = await asyncio.gather(
            *(self.rpc.batch("eth_getBlockByNumber", [[hex(n), False] for n in chunk]) for chunk in chunks)
        )
        blocks = {}
        for chunk, headers in zip(chunks, answers, strict=True):
            if len(headers) != len(chunk):
                raise MissingBlock(f"blocks {chunk[0]}..{chunk[-1]}: the node answered {len(headers)} of {len(chunk)}")
            for number, header in zip(chunk, headers, strict=True):
                if header is None:
                    raise MissingBlock(f"block {number}: the node does not have it")
                if int(header["number"], 16) != number:
                    raise ChainMoved(f"block {number}: the node answered block {header['number']}")
                bloom = header.get("logsBloom")
                if bloom != EMPTY_BLOOM and not (isinstance(bloom, str) and _BLOOM.fullmatch(bloom)):
                    # a header without its bloom would silently switch the completeness check off
                    raise ChainMoved(f"block {number}: the header has no 256-byte logsBloom")
                blocks[number] = Block(
                    number, header["hash"].lower(), header["parentHash"].lower(), int(header["timestamp"], 16), bloom
                )
        return blocks

    def _filter(self, first: int, last: int) -> dict[str, object]:
        return {
            "fromBlock": hex(first),
            "toBlock": hex(last),
            "address": list(self.start_blocks),
            "topics": [TRANSFER_TOPIC],
        }

    def _filter_hash(self, block_hash: str) -> dict[str, object]:
        return {"blockHash": block_hash, "address": list(self.start_blocks), "topics": [TRANSFER_TOPIC]}

    def _adapt(self, span: int, logs: int) -> None:
        if logs > self.target_logs and span > 1:
            self.span = max(1, span // 2)
        elif logs < self.target_logs // 4 and span >= self.span:
            self.span = min(self.max_span, self.span * 2)


def _check_chain(blocks: Mapping[int, Block], first: int, end: int) -> None:
    for number in range(first + 1, end + 1):
        if blocks[number].parent_hash != blocks[number - 1].hash:
            raise ChainMoved(f"block {number}: its parent is not the header read for block {number - 1}")


def _logs_by_block(
    logs: Sequence[dict[str, Any]], blocks: Mapping[int, Block], first: int, end: int
) -> dict[int, list[dict[str, Any]]]:
    by_block: dict[int, list[dict[str, Any]]] = {}
    for log in logs:
        number = log_block(log)
        if not first <= number <= end:
            raise ChainMoved(f"block {number}: a log outside the range {first}..{end}")
        if log.get("removed") or log["blockHash"].lower() != blocks[number].hash:
            raise ChainMoved(f"block {number}: log block hash differs from the header")
        by_block.setdefault(number, []).append(log)
    return by_block


class BloomFilter:
    """The 2048-bit Ethereum log bloom (yellow paper §4.3.1): each address and topic sets the three
    bits named by the low 11 bits of the first three byte pairs of its keccak-256."""

    def __init__(self, addresses: Sequence[str], topic: str) -> None:
        self.addresses = [_bloom_bits(bytes.fromhex(a.removeprefix("0x"))) for a in addresses]
        self.topic = _bloom_bits(bytes.fromhex(topic.removeprefix("0x")))

    def may_contain(self, bloom: str) -> bool:
        if bloom == EMPTY_BLOOM:
            return False
        value = int(bloom, 16)
        return value & self.topic == self.topic and any(value & mask == mask for mask in self.addresses)


def _build_bloom(future: concurrent.futures.Future[BloomFilter], addresses: list[str]) -> None:
    # A reader stopped before the filter was built has cancelled the future: nothing to set then
    # (setting a cancelled future raises in this thread and prints on stderr).
    if not future.set_running_or_notify_cancel():
        return
    try:
        future.set_result(BloomFilter(addresses, TRANSFER_TOPIC))
    except BaseException as error:  # surfaced where the filter is awaited
        future.set_exception(error)


def _bloom_bits(value: bytes) -> int:
    from eth_hash.auto import keccak  # web3's own keccak (pycryptodome backend)

    digest = keccak(value)
    mask = 0
    for i in (0, 2, 4):
        mask |= 1 << (((digest[i] << 8) | digest[i + 1]) & 2047)
    return mask
