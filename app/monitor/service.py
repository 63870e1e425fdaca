"""The monitor service: wires head tracking, range reading, the sink and the checkpoint together.

The reader loop is the only writer of the cursor (the last block read). It reads confirmed ranges
`(cursor, head - confirmations]` (each proven complete by the range reader), checks that each
chains to the hash of the block before it, and hands the events to the sink, which holds it back
when full. The checkpoint follows acknowledgements (Progress) and is saved every
`checkpoint_interval_seconds` and at shutdown.

A range that does not chain to the cursor is a reorg deeper than the confirmations: the monitor
lets every record in flight be acknowledged, walks its hash history back to the newest published
hash that is still canonical, records the reorg, rewinds the checkpoint there and reads on. If no
published hash is canonical any more it stops (ForkNotFound) with the checkpoint where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from app.events import ChainEvent
from app.monitor.backoff import Backoff
from app.monitor.checkpoint import Checkpoint, CheckpointStore, Progress, Reorg, Ticket
from app.monitor.config import ConfigError, Settings, redact
from app.monitor.heads import HeadWatcher
from app.monitor.ranges import InconsistentRead, Range, RangeReader
from app.monitor.rpc import JsonRpc, RpcError, RpcUnavailable
from app.monitor.startup import Waiter
from app.monitor.telemetry import Telemetry, logger

READ_ERRORS = (RpcUnavailable, RpcError, KeyError, ValueError, TypeError, AttributeError, IndexError)
INCONSISTENT_BACKOFF = Backoff(base=0.1, cap=2.0)


class Sink(Protocol):
    async def submit(self, event: ChainEvent, ticket: Ticket) -> None: ...
    async def drain(self) -> None: ...
    async def run(self) -> None: ...


class StartupError(Exception):
    """The monitor cannot start (e.g. the node's answers make no sense); one line, exit status 1."""


class ForkNotFound(Exception):
    """A deep reorg whose fork point no kept hash proves: stop, the checkpoint where it was."""


@dataclass
class Cursor:
    block: int
    hash: str | None


class Monitor:
    def __init__(
        self,
        settings: Settings,
        *,
        rpc: JsonRpc,
        sink: Sink,
        store: CheckpointStore,
        telemetry: Telemetry,
        until_block: int | None = None,
        on_checkpoint: Callable[[Checkpoint], None] | None = None,
        stopping: asyncio.Event | None = None,
    ) -> None:
        config = settings.config
        self.settings = settings
        self.config = config
        self.rpc = rpc
        self.sink = sink
        self.store = store
        self.telemetry = telemetry
        self._checks: set[asyncio.Future[Any]] = set()
        self._first_read = asyncio.Event()
        self._head_at_start: int | None = None
        self.until_block = until_block
        self.on_checkpoint = on_checkpoint
        self.reader = RangeReader(
            rpc,
            chain_id=config.chain_id,
            contracts=config.contracts,
            max_span=config.max_range_blocks,
            target_logs=config.target_logs_per_range,
        )
        self.heads = HeadWatcher(settings.websocket_url) if settings.websocket_url else None
        self.stopping = stopping or asyncio.Event()
        self.head: int | None = None
        self.progress: Progress | None = None
        self._saved: Checkpoint | None = None

    def stop(self) -> None:
        self.stopping.set()

    async def start_checks(self, waiter: Waiter) -> bool:
        """Wait (with backoff, one warning a try) until the node answers; then check that it
        serves the configured chain. False when a stop was requested while waiting."""
        answer = await waiter.until_ready(
            "rpc_url", redact(self.settings.http_rpc_url), lambda: asyncio.wait_for(self.rpc.call("eth_chainId"), 10)
        )
        if answer is None:
            return False
        try:
            chain_id = int(answer, 16)
        except (TypeError, ValueError):
            raise StartupError(
                f"rpc_url: eth_chainId from {redact(self.settings.http_rpc_url)} answered {str(answer)[:40]!r}, "
                "not a hex quantity"
            ) from None
        if chain_id != self.config.chain_id:
            raise ConfigError(f"chain_id: the config says {self.config.chain_id}, the node serves chain {chain_id}")
        # Read while the checkpoint is still loading (the first read needs it); on failure the read
        # loop asks again, with its own retries.
        with contextlib.suppress(*READ_ERRORS):
            self._head_at_start = await self.reader.head()
        return True

    async def run(
        self, stored: Checkpoint | None = None, *, loaded: bool = False, checks: Sequence[Awaitable[Any]] = ()
    ) -> None:
        """Run until stopped (or --until-block). `loaded`: `stored` was already read from the store.
        `checks` are start-up checks not needed before reading: they start once the first range is
        read, and the first to raise stops the monitor with its error."""
        if not loaded:
            stored = await asyncio.to_thread(self.store.load)
        first = min(c.start_block for c in self.config.contracts)
        checkpoint = stored or Checkpoint(first - 1)
        self.progress = Progress(checkpoint, self._advanced)
        self._saved = checkpoint
        logger.info(
            "monitor starting",
            extra={
                "chain_id": self.config.chain_id,
                "checkpoint": checkpoint.block,
                "resumed": stored is not None,
                "sink": self.config.sink,
                "rpc": redact(self.settings.http_rpc_url),
                "until_block": self.until_block,
            },
        )
        self.telemetry.gauge("BlocksBehind", self._blocks_behind)
        # What the first read does not need starts after it: importing psutil (metrics) and
        # websockets (the doorbell) or making a check's client beside the first requests would
        # only delay them (one interpreter lock).
        self._checks = {asyncio.ensure_future(self._after_first_read(check)) for check in checks}
        background = [
            asyncio.create_task(self.sink.run(), name="sink"),
            asyncio.create_task(self._save_loop(), name="checkpoint"),
            asyncio.create_task(
                self._after_first_read(self.telemetry.run(self.config.metrics_interval_seconds)), name="telemetry"
            ),
        ]
        if self.heads:
            self.telemetry.gauge("WebSocketConnected", lambda: 1 if self.heads.connected else 0)
            background.append(asyncio.create_task(self._after_first_read(self.heads.run()), name="heads"))
        try:
            await self._supervised(self._read_loop(Cursor(checkpoint.block, checkpoint.hash)), background)
            logger.info("reader stopped; waiting for every record to be acknowledged")
            await self._supervised(self.sink.drain(), background)
            await self._supervised(asyncio.gather(*self._checks), background)  # before the last save
            await asyncio.to_thread(self._save)
        finally:
            for task in [*background, *self._checks]:
                task.cancel()
            await asyncio.gather(*background, *self._checks, return_exceptions=True)
            await asyncio.to_thread(self.telemetry.flush)
        logger.info("monitor stopped", extra={"checkpoint": self.progress.checkpoint.block})

    async def _supervised(self, awaitable: Any, background: list[asyncio.Task]) -> None:
        """Await `awaitable`; if a background task (sink, heads, saver) dies first, fail loudly
        rather than wait forever for acknowledgements that will never come; if a check fails,
        stop with its error."""
        main = asyncio.ensure_future(awaitable)
        while True:
            done, _ = await asyncio.wait({main, *background, *self._checks}, return_when=asyncio.FIRST_COMPLETED)
            for check in done & self._checks:
                self._checks.discard(check)
                if check.exception() is not None:
                    if not main.cancel() and not main.cancelled():
                        main.exception()  # done already (with this error, if it gathered the checks)
                    raise check.exception()  # type: ignore[misc]
            if main in done:
                return main.result()
            died = next((task for task in done if task in background), None)
            if died is not None:
                main.cancel()
                raise RuntimeError(f"background task {died.get_name()} stopped: {died.exception()!r}")

    async def _after_first_read(self, check: Awaitable[Any]) -> Any:
        await self._first_read.wait()
        return await check

    async def _read_loop(self, cursor: Cursor) -> None:
        try:
            await self._read_until_stopped(cursor)
        finally:
            self._first_read.set()

    async def _read_until_stopped(self, cursor: Cursor) -> None:
        errors = 0
        backoff = Backoff(base=0.2, cap=5.0)
        waited = True  # read at once after starting
        while not self.stopping.is_set():
            if self.until_block is not None and cursor.block >= self.until_block:
                return
            try:
                if not waited:
                    await self._wait_for_head()
                waited = False
                self.head = self._head_at_start or await self.reader.head()
                self._head_at_start = None  # read at start-up: used for the first round only
                target = self.head - self.config.confirmations
                if self.until_block is not None:
                    target = min(target, self.until_block)
                if cursor.block > target and cursor.hash is not None:
                    cursor = await self._check_shorter_chain(cursor)
                while cursor.block < target and not self.stopping.is_set():
                    found = await self.reader.read(cursor.block + 1, target)
                    self._first_read.set()
                    self._count_repairs(found)
                    if cursor.hash is not None and found.parent_hash != cursor.hash:
                        cursor = await self._deep_reorg(cursor, found.parent_hash)
                        continue
                    await self._hand_over(found)
                    cursor = Cursor(found.last, found.last_hash)
                errors = 0
                if self.until_block is not None and cursor.block >= target:
                    self._until_reached(cursor)
                    return
            except InconsistentRead as error:
                errors += 1
                self.telemetry.count("InconsistentReads")
                logger.warning(
                    "range re-read: the node's answers are inconsistent",
                    extra={"reason": str(error), "after_block": cursor.block, "attempt": errors},
                )
                await self._sleep(INCONSISTENT_BACKOFF.delay(errors))
                waited = True
            except READ_ERRORS as error:
                errors += 1
                self.telemetry.count("ProcessingErrors")
                logger.warning("chain read failed; retrying", extra={"error": str(error), "attempt": errors})
                await self._sleep(backoff.delay(errors))
                waited = True
            self._first_read.set()  # also when there was nothing to read, or the read failed

    def _until_reached(self, cursor: Cursor) -> None:
        """--until-block publishes what is confirmed now; it never waits for blocks to be mined."""
        if cursor.block < self.until_block:
            logger.warning(
                "--until-block is beyond the confirmed head: published every confirmed block",
                extra={"until_block": self.until_block, "head": self.head, "published_through": cursor.block},
            )

    async def _hand_over(self, found: Range) -> None:
        ticket = self.progress.open(found.first, found.last, found.last_hash, found.hashes)
        self.telemetry.count("EventsIngested", len(found.events))
        for event in found.events:
            await self.sink.submit(event, ticket)
        self.progress.seal(ticket)

    def _count_repairs(self, found: Range) -> None:
        if found.rereads:  # the proof's cost: on chains with saturated blooms, most blocks
            self.telemetry.count("BloomRereads", found.rereads)
            logger.debug("blocks re-read by hash", extra={"blocks": found.rereads, "first_block": found.first})
        for repair in found.repairs:
            self.telemetry.count("InconsistentReads")
            logger.warning(
                "range re-read: the node's answers are inconsistent",
                extra={"reason": repair, "first_block": found.first, "last_block": found.last},
            )

    async def _check_shorter_chain(self, cursor: Cursor) -> Cursor:
        """The confirmed head is below the cursor: a lagging node, or a reorg to a shorter chain.
        Only another hash at the cursor's block proves the reorg (a lagging node lacks the block)."""
        try:
            [block] = (await self.reader.blocks([cursor.block])).values()
        except InconsistentRead:
            return cursor
        if block.hash == cursor.hash:
            return cursor
        return await self._deep_reorg(cursor, block.hash)

    async def _deep_reorg(self, cursor: Cursor, canonical_hash: str | None) -> Cursor:
        """What was published no longer chains: a reorg deeper than the confirmations. Walk the
        hash history back to the newest published block still canonical, record the orphaned
        range, and go on from there. Every record in flight is acknowledged first, so the
        checkpoint is the cursor and the rewind cannot race a save."""
        await self.sink.drain()
        history = self.progress.checkpoint.recent
        canonical = await self._canonical_hashes([n for n, _ in history])
        # The parent of block 0 (number -1) cannot be reorganised away.
        fork = next(((n, h) for n, h in reversed(history) if n < 0 or canonical.get(n) == h), None)
        self.telemetry.count("ReorgsDetected")
        if fork is None:
            oldest = history[0][0] if history else cursor.block
            logger.error(
                "deep reorg: no published block hash is canonical; cannot find the fork, stopping",
                extra={"published_through": cursor.block, "oldest_kept_block": oldest, "kept_hashes": len(history)},
            )
            raise ForkNotFound(
                f"deep reorg: none of the {len(history)} published block hashes back to block {oldest} is "
                f"canonical on the node; the fork cannot be proven (checkpoint left at block {cursor.block})"
            )
        reorg = Reorg(self.config.chain_id, fork[0] + 1, cursor.block, cursor.hash, canonical_hash)
        logger.error(
            "deep reorg: published blocks were orphaned; recorded for reconciliation",
            extra={
                "orphaned_first_block": reorg.first_block,
                "orphaned_last_block": reorg.last_block,
                "published_hash": reorg.published_hash,
                "canonical_hash": reorg.canonical_hash,
                "record": reorg.item_id,
            },
        )
        await asyncio.to_thread(self.store.record_reorg, reorg)
        resumed = Checkpoint(fork[0], fork[1], tuple((n, h) for n, h in history if n <= fork[0]))
        self.progress.rewind(resumed)
        await asyncio.to_thread(self._save, True)
        return Cursor(resumed.block, resumed.hash)

    async def _canonical_hashes(self, numbers: list[int]) -> dict[int, str]:
        """The node's hashes of `numbers` up to its head; a block it lacks below its head raises
        InconsistentRead, so the walk is tried again rather than misjudged."""
        head = await self.reader.head()
        present = [n for n in numbers if 0 <= n <= head]
        return {n: block.hash for n, block in (await self.reader.blocks(present)).items()}

    async def _wait_for_head(self) -> None:
        timeout = self.config.poll_interval_seconds
        if self.heads:
            waiter = asyncio.create_task(self.heads.wait(timeout))
            await self._until_stopped(waiter)
        else:
            await self._sleep(timeout)

    async def _until_stopped(self, awaitable: Any) -> None:
        """Await `awaitable` unless a stop request comes first."""
        task = asyncio.ensure_future(awaitable)
        stopper = asyncio.create_task(self.stopping.wait())
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for pending in (task, stopper):
            if not pending.done():
                pending.cancel()

    async def _sleep(self, seconds: float) -> None:
        await self._until_stopped(asyncio.sleep(seconds))

    async def _save_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.checkpoint_interval_seconds)
            try:
                await asyncio.to_thread(self._save)
            except Exception as error:
                self.telemetry.count("ProcessingErrors")
                logger.warning("checkpoint not saved; retrying", extra={"error": repr(error)})

    def _save(self, rewind: bool = False) -> None:
        checkpoint = self.progress.checkpoint
        if checkpoint != self._saved or rewind:
            if not self.store.save(checkpoint, rewind=rewind):
                logger.info(
                    "checkpoint not saved: the stored one is further on (another monitor is running)",
                    extra={"checkpoint": checkpoint.block},
                )
            self._saved = checkpoint

    def _advanced(self, checkpoint: Checkpoint) -> None:
        if self.on_checkpoint:
            self.on_checkpoint(checkpoint)

    def _blocks_behind(self) -> int | None:
        """Confirmed blocks not yet acknowledged: 0 when caught up."""
        if self.head is None or self.progress is None:
            return None
        return max(0, self.head - self.config.confirmations - self.progress.checkpoint.block)


def install_signal_handlers(stop: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop)
