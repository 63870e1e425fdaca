"""The durable checkpoint: the last block whose every record was acknowledged, with its hash and
a history of published block hashes (to find the fork point of a deep reorg however deep), in the
monitor state table (`checkpoint:{chainId}`) or, for development, a JSON file. Deep reorgs are
recorded beside it (`reorg:{chainId}:{firstOrphanedBlock}`) for the operator and the reconciliation
tool.

The history is every hash of the last HISTORY_DENSE blocks, then sparser with distance (`d` blocks
back, the newest hash of each aligned bucket of the largest power of two <= d / HISTORY_SPACING
blocks), down to the oldest hash ever published, which is always kept: ~16-32 entries per doubling
of the chain's length (~450 back to genesis of a 20M-block chain, ~35 KB), and a fork `d` blocks
deep is located to within about d / 8 blocks (when the ranges read there recorded every hash: near
the head they do, see ranges.py).

Saves never move the stored checkpoint backwards (a DynamoDB condition on the stored block), so a
second monitor running for a moment beside this one (an instance refresh starts the new host first)
cannot undo the other's progress; only a deep-reorg rewind moves it back, deliberately.

`Progress` decides what may be saved: range tickets complete in any order, the checkpoint moves
only across a prefix of completed ranges.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

HISTORY_DENSE = 128
HISTORY_SPACING = 16


@dataclass(frozen=True)
class Checkpoint:
    block: int  # -1: nothing published yet
    hash: str | None = None
    recent: tuple[tuple[int, str], ...] = ()  # the history: (block, hash) of published blocks, oldest first


@dataclass(frozen=True)
class Reorg:
    chain_id: int
    first_block: int  # first block that may be orphaned (the newest block still canonical + 1)
    last_block: int  # the last block published from the old chain
    published_hash: str  # what was published for last_block
    canonical_hash: str | None  # what the chain says for last_block now
    detected_at: int = field(default_factory=lambda: int(time.time()))

    @property
    def item_id(self) -> str:
        return f"reorg:{self.chain_id}:{self.first_block}"


def thin(history: Iterable[tuple[int, str]]) -> tuple[tuple[int, str], ...]:
    """The hashes worth keeping of `history` (oldest first): see the module's docstring."""
    entries = list(history)
    if len(entries) <= HISTORY_DENSE:
        return tuple(entries)
    newest = entries[-1][0]
    kept = []
    bucket = None
    for number, block_hash in reversed(entries[1:]):
        distance = newest - number
        if distance < HISTORY_DENSE:
            kept.append((number, block_hash))
            continue
        spacing = 1 << ((distance // HISTORY_SPACING).bit_length() - 1)
        # The newest hash of each aligned bucket of `spacing` blocks: a hash kept at one spacing is
        # the newest of its bucket at the next (buckets merge in pairs), so thinning is stable.
        if (spacing, number // spacing) != bucket:
            bucket = (spacing, number // spacing)
            kept.append((number, block_hash))
    kept.append(entries[0])
    return tuple(reversed(kept))


class CheckpointStore(Protocol):
    def load(self) -> Checkpoint | None: ...
    def save(self, checkpoint: Checkpoint, *, rewind: bool = False) -> bool: ...
    def record_reorg(self, reorg: Reorg) -> None: ...


class MemoryCheckpointStore:
    """A checkpoint that lives only in the process: the backfill command's, so that it never
    touches the live one."""

    def __init__(self, checkpoint: Checkpoint | None = None) -> None:
        self.checkpoint = checkpoint
        self.reorgs: list[Reorg] = []

    def load(self) -> Checkpoint | None:
        return self.checkpoint

    def save(self, checkpoint: Checkpoint, *, rewind: bool = False) -> bool:
        self.checkpoint = checkpoint
        return True

    def record_reorg(self, reorg: Reorg) -> None:
        self.reorgs.append(reorg)


class DynamoCheckpointStore:
    def __init__(self, client: Any, table: str, chain_id: int) -> None:
        self.client = client
        self.table = table
        self.chain_id = chain_id
        self.key = f"checkpoint:{chain_id}"

    def load(self) -> Checkpoint | None:
        item = self.client.get_item(TableName=self.table, Key={"id": {"S": self.key}}, ConsistentRead=True).get("Item")
        if not item:
            return None
        recent = sorted((int(block), value["S"]) for block, value in item.get("recent", {}).get("M", {}).items())
        return Checkpoint(int(item["block"]["N"]), item.get("hash", {}).get("S"), tuple(recent))

    def save(self, checkpoint: Checkpoint, *, rewind: bool = False) -> bool:
        """Store `checkpoint` unless the stored one is further on (another monitor is ahead):
        then False. `rewind` (after a deep reorg) stores it whatever is there."""
        item: dict[str, Any] = {
            "id": {"S": self.key},
            "chainId": {"N": str(self.chain_id)},
            "block": {"N": str(checkpoint.block)},
            "recent": {"M": {str(block): {"S": value} for block, value in checkpoint.recent}},
            "updatedAt": {"N": str(int(time.time()))},
        }
        if checkpoint.hash:
            item["hash"] = {"S": checkpoint.hash}
        if rewind:
            self.client.put_item(TableName=self.table, Item=item)
            return True
        try:
            self.client.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression="attribute_not_exists(#b) OR #b <= :b",
                ExpressionAttributeNames={"#b": "block"},
                ExpressionAttributeValues={":b": {"N": str(checkpoint.block)}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def record_reorg(self, reorg: Reorg) -> None:
        item = {
            "id": {"S": reorg.item_id},
            "chainId": {"N": str(reorg.chain_id)},
            "firstBlock": {"N": str(reorg.first_block)},
            "lastBlock": {"N": str(reorg.last_block)},
            "publishedHash": {"S": reorg.published_hash},
            "detectedAt": {"N": str(reorg.detected_at)},
            "status": {"S": "unreconciled"},
        }
        if reorg.canonical_hash:
            item["canonicalHash"] = {"S": reorg.canonical_hash}
        self.client.put_item(TableName=self.table, Item=item)

    def reorgs(self) -> list[dict[str, Any]]:
        prefix = f"reorg:{self.chain_id}:"
        items = []
        for page in self.client.get_paginator("scan").paginate(TableName=self.table):
            items += [i for i in page.get("Items", []) if i["id"]["S"].startswith(prefix)]
        return items


class FileCheckpointStore:
    """One JSON document per chain; replaced atomically so a crash leaves the old or the new one."""

    def __init__(self, path: Path, chain_id: int) -> None:
        self.path = Path(path)
        self.chain_id = chain_id

    def _read(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"chainId": self.chain_id, "reorgs": []}

    def _write(self, document: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        with os.fdopen(fd, "w") as file:
            json.dump(document, file, indent=1)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.path)

    def load(self) -> Checkpoint | None:
        document = self._read()
        if "block" not in document:
            return None
        if document.get("chainId") != self.chain_id:
            raise ValueError(f"{self.path}: checkpoint of chain {document.get('chainId')}, not {self.chain_id}")
        recent = tuple((int(block), value) for block, value in document.get("recent", []))
        return Checkpoint(int(document["block"]), document.get("hash"), recent)

    def save(self, checkpoint: Checkpoint, *, rewind: bool = False) -> bool:
        document = self._read()
        if not rewind and document.get("block", -1) > checkpoint.block:
            return False
        document.update(block=checkpoint.block, hash=checkpoint.hash, recent=[list(r) for r in checkpoint.recent])
        self._write(document)
        return True

    def record_reorg(self, reorg: Reorg) -> None:
        document = self._read()
        document.setdefault("reorgs", []).append({"id": reorg.item_id, **asdict(reorg)})
        self._write(document)


class Ticket:
    """One range's outstanding records. Sealed once every event of the range was handed over."""

    __slots__ = ("_progress", "first", "hashes", "last", "last_hash", "outstanding", "sealed")

    def __init__(
        self, progress: Progress, first: int, last: int, last_hash: str, hashes: tuple[tuple[int, str], ...]
    ) -> None:
        self._progress = progress
        self.first = first
        self.last = last
        self.last_hash = last_hash
        self.hashes = hashes
        self.outstanding = 0
        self.sealed = False

    def add(self) -> None:
        self.outstanding += 1

    def ack(self) -> None:
        self.outstanding -= 1
        if self.outstanding == 0 and self.sealed:
            self._progress.advance()


class Progress:
    """Tracks range tickets in chain order; the checkpoint is the end of the completed prefix."""

    def __init__(self, checkpoint: Checkpoint, on_advance: Callable[[Checkpoint], None] | None = None) -> None:
        self.checkpoint = checkpoint
        self._open: deque[Ticket] = deque()
        self._history = list(checkpoint.recent)
        self._on_advance = on_advance

    def open(self, first: int, last: int, last_hash: str, hashes: tuple[tuple[int, str], ...] = ()) -> Ticket:
        expected = self._open[-1].last + 1 if self._open else self.checkpoint.block + 1
        if first != expected:
            raise ValueError(f"range {first}..{last} does not follow block {expected - 1}")
        ticket = Ticket(self, first, last, last_hash, hashes or ((last, last_hash),))
        self._open.append(ticket)
        return ticket

    def seal(self, ticket: Ticket) -> None:
        ticket.sealed = True
        self.advance()

    @property
    def idle(self) -> bool:
        return not self._open

    def advance(self) -> None:
        done = None
        while self._open and self._open[0].sealed and self._open[0].outstanding == 0:
            done = self._open.popleft()
            newest = self._history[-1][0] if self._history else None
            self._history += [(n, h) for n, h in done.hashes if newest is None or n > newest]
        if done is not None:
            self._history = list(thin(self._history))
            self.checkpoint = Checkpoint(done.last, done.last_hash, tuple(self._history))
            if self._on_advance:
                self._on_advance(self.checkpoint)

    def rewind(self, checkpoint: Checkpoint) -> None:
        """After a deep reorg (every open range acknowledged): go on from `checkpoint`."""
        if self._open:
            raise RuntimeError("rewind with ranges still open")
        self.checkpoint = checkpoint
        self._history = list(checkpoint.recent)
