"""The direct sink (`sink: dynamodb`): events applied to the tokens and points tables with
`app/store.py`, as the old architecture did, so a rollback is one line of config.

Events are applied one at a time in chain order (that keeps per-token order without Kinesis);
an event that fails is retried with backoff until it applies: nothing is skipped. The exception is
an event that can never apply (`InconsistentEvent`: earlier than its token's acquisition, which only
a lying node or a corrupted table causes): it goes to the stage's quarantine queue in the consumer's
format (app/quarantine.py, so `ngu-points redrive` reads it back) and its ticket is acknowledged
only once the queue took it; until then it is retried like any other failure.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from app import quarantine
from app.events import ChainEvent
from app.ledger import InconsistentEvent
from app.monitor.backoff import Backoff
from app.monitor.checkpoint import Ticket
from app.monitor.telemetry import Telemetry, logger
from app.rates import Rates
from app.store import UNREAD, Outcome, Store

BATCH = 100


APPLY_BACKOFF = Backoff(base=0.1, cap=10.0)


class DynamoDBSink:
    def __init__(
        self,
        store: Store,
        rates: Rates,
        telemetry: Telemetry,
        sqs: Any,
        quarantine_queue_url: str,
        *,
        max_pending: int = 20000,
        backoff: Backoff = APPLY_BACKOFF,
    ) -> None:
        self.store = store
        self.rates = rates
        self.telemetry = telemetry
        self.sqs = sqs
        self.quarantine_queue_url = quarantine_queue_url
        self.max_pending = max_pending
        self.backoff = backoff
        self._queue: deque[tuple[ChainEvent, Ticket]] = deque()
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._empty = asyncio.Event()
        self._empty.set()

    async def submit(self, event: ChainEvent, ticket: Ticket) -> None:
        while len(self._queue) >= self.max_pending:
            self._space.clear()
            await self._space.wait()
        if self.rates.weight(event.rate_key) is None:  # the config checks every contract has a rate
            raise ValueError(f"event {event.id}: no points rate for {event.rate_key}")
        ticket.add()
        self._queue.append((event, ticket))
        self._empty.clear()
        self._wake.set()

    async def drain(self) -> None:
        await self._empty.wait()

    async def run(self) -> None:
        attempt = 0
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch = [self._queue[i][0] for i in range(min(BATCH, len(self._queue)))]
                applied, error = await asyncio.to_thread(self._apply, batch)
                for _ in range(applied):
                    self._ack("EventsPublished")
                failed = "direct sink: event not applied; retrying"
                if isinstance(error, InconsistentEvent):
                    failed = "direct sink: inconsistent event not quarantined; retrying"
                    event = batch[applied]
                    error = await asyncio.to_thread(self._quarantine, event, error)
                    if error is None:
                        self._ack("PoisonRecords")
                if len(self._queue) < self.max_pending:
                    self._space.set()
                if error is None:
                    attempt = 0
                    continue
                attempt += 1
                self.telemetry.count("ProcessingErrors")
                logger.error(
                    failed,
                    extra={"event_id": batch[applied].id, "error": repr(error), "attempt": attempt},
                )
                await asyncio.sleep(self.backoff.delay(attempt))
            self._empty.set()

    def _ack(self, metric: str) -> None:
        _, ticket = self._queue.popleft()
        ticket.ack()
        self.telemetry.count(metric)

    def _quarantine(self, event: ChainEvent, inconsistent: InconsistentEvent) -> Exception | None:
        """Set the event aside; returns the error when the queue did not take it (then it stays)."""
        reason = str(inconsistent)
        try:
            quarantine.send(
                self.sqs,
                self.quarantine_queue_url,
                quarantine.of_event_bytes(reason, event.encode(), event.partition_key),
            )
        except Exception as error:
            return error
        logger.error(
            "direct sink: inconsistent event quarantined",
            extra={"event_id": event.id, "reason": reason, "queue_url": self.quarantine_queue_url},
        )
        return None

    def _apply(self, events: list[ChainEvent]) -> tuple[int, Exception | None]:
        """Apply in order; returns how many applied and the error that stopped it, if any."""
        try:
            states = self.store.prefetch(e.token_key for e in events)
        except Exception as error:
            return 0, error
        for index, event in enumerate(events):
            try:
                weight = self.rates.weight(event.rate_key)
                result = self.store.apply(event, weight, states.get(event.token_key, UNREAD))
            except Exception as error:
                return index, error
            states[event.token_key] = result.state
            if result.outcome is Outcome.DUPLICATE:
                logger.info("direct sink: duplicate or stale event skipped", extra={"event_id": event.id})
        return len(events), None
