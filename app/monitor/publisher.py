"""The Kinesis publisher: per-key queues, PutRecords batches, retries forever, back-pressure.

Ordering: a partition key has at most one record in flight, and its next record is sent only after
Kinesis acknowledged the previous one, so a partial failure can never reorder a token's events.
Batches respect the PutRecords limits (500 records, 5 MiB, a record 1 MiB with its key). A failed
record (per-record error or a failed call) waits out a full-jitter backoff and goes again: it is
never dropped. `submit` blocks while `max_pending` records are unacknowledged, which holds the
chain reader back.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from app.events import ChainEvent
from app.monitor.backoff import Backoff
from app.monitor.checkpoint import Ticket
from app.monitor.telemetry import Telemetry, logger

MAX_RECORDS = 500
MAX_BATCH_BYTES = 5 * 1024 * 1024
MAX_RECORD_BYTES = 1024 * 1024
LOG_EVERY_ATTEMPTS = 10


RETRY_BACKOFF = Backoff(base=0.05, cap=5.0)


class RecordTooLarge(Exception):
    """An event Kinesis can never take: stop loudly rather than skip it or retry it forever."""


@dataclass(slots=True)
class _Record:
    event_id: str
    data: bytes
    size: int
    ticket: Ticket
    attempts: int = 0


class KinesisPublisher:
    def __init__(
        self,
        client: Any,
        stream_name: str,
        telemetry: Telemetry,
        *,
        max_pending: int = 20000,
        concurrency: int = 1,
        backoff: Backoff = RETRY_BACKOFF,
    ) -> None:
        self.client = client
        self.stream_name = stream_name
        self.telemetry = telemetry
        self.max_pending = max_pending
        self.concurrency = concurrency
        self.backoff = backoff
        self._queues: dict[str, deque[_Record]] = {}
        self._ready: deque[str] = deque()  # keys whose head record may be sent now
        self._pending = 0
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._empty = asyncio.Event()
        self._empty.set()
        self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix="put-records")

    @property
    def pending(self) -> int:
        return self._pending

    async def submit(self, event: ChainEvent, ticket: Ticket) -> None:
        while self._pending >= self.max_pending:
            self._space.clear()
            await self._space.wait()
        key = event.partition_key
        data = event.encode()
        size = len(data) + len(key.encode())
        if size > MAX_RECORD_BYTES:
            raise RecordTooLarge(f"event {event.id}: {size} bytes exceeds the Kinesis record limit")
        ticket.add()
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
            self._ready.append(key)
        queue.append(_Record(event.id, data, size, ticket))
        self._pending += 1
        self._empty.clear()
        self._wake.set()

    async def drain(self) -> None:
        """Wait until every submitted record is acknowledged."""
        await self._empty.wait()

    async def run(self) -> None:
        slots = asyncio.Semaphore(self.concurrency)
        calls: set[asyncio.Task] = set()
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._ready:
                    await slots.acquire()
                    batch = self._take_batch()
                    if not batch:
                        slots.release()
                        break
                    call = asyncio.create_task(self._put(batch, slots))
                    calls.add(call)
                    call.add_done_callback(calls.discard)
        finally:
            for call in calls:
                call.cancel()
            self._executor.shutdown(wait=False, cancel_futures=True)

    def _take_batch(self) -> list[tuple[str, _Record]]:
        batch: list[tuple[str, _Record]] = []
        size = 0
        while self._ready and len(batch) < MAX_RECORDS:
            key = self._ready[0]
            record = self._queues[key][0]
            if size + record.size > MAX_BATCH_BYTES:
                break
            self._ready.popleft()
            batch.append((key, record))
            size += record.size
        return batch

    async def _put(self, batch: list[tuple[str, _Record]], slots: asyncio.Semaphore) -> None:
        try:
            results = await self._call(batch)
        finally:
            slots.release()
        failures: Counter[str] = Counter()
        loop = asyncio.get_running_loop()
        for (key, record), result in zip(batch, results, strict=True):
            if "ErrorCode" in result:
                failures[result["ErrorCode"]] += 1
                record.attempts += 1
                if record.attempts % LOG_EVERY_ATTEMPTS == 0:
                    logger.error(
                        "record still failing; retrying",
                        extra={"event_id": record.event_id, "attempts": record.attempts, "error": result["ErrorCode"]},
                    )
                loop.call_later(self.backoff.delay(record.attempts), self._retry, key)
                continue
            self._acknowledged(key, record)
        if failures:
            self.telemetry.count("KinesisPutFailures", failures.total())
            logger.warning(
                "PutRecords partly failed; retrying the failed records",
                extra={"failed": failures.total(), "batch": len(batch), "errors": dict(failures)},
            )
        self._wake.set()

    async def _call(self, batch: list[tuple[str, _Record]]) -> list[dict[str, Any]]:
        """Per-record results; a call that failed as a whole fails every record of it."""
        records = [{"Data": record.data, "PartitionKey": key} for key, record in batch]
        loop = asyncio.get_running_loop()
        try:
            response = await loop.run_in_executor(
                self._executor, lambda: self.client.put_records(StreamName=self.stream_name, Records=records)
            )
            return response["Records"]
        except Exception as error:  # after botocore's own retries: keep every record, try again later
            code = getattr(error, "response", {}).get("Error", {}).get("Code") or type(error).__name__
            return [{"ErrorCode": code}] * len(batch)

    def _acknowledged(self, key: str, record: _Record) -> None:
        queue = self._queues[key]
        queue.popleft()
        if queue:
            self._ready.append(key)
        else:
            del self._queues[key]
        self._pending -= 1
        self.telemetry.count("EventsPublished")
        record.ticket.ack()
        if self._pending < self.max_pending:
            self._space.set()
        if self._pending == 0:
            self._empty.set()

    def _retry(self, key: str) -> None:
        self._ready.append(key)
        self._wake.set()
