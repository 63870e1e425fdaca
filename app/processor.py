"""Lambda consumer: a Kinesis batch in, the points ledger updated, partial failures out (DESIGN §5).

Records are applied in order, as group commits: each run of events between poison records is
committed in as few transactions as DynamoDB allows (app/batch.py, app/store.py). At the first
failure the handler stops and reports the first record of what failed (a group, or a poison record
whose quarantine failed) and every later one: Kinesis resumes from the lowest failed sequence
number, and applying later records now would break per-token order. Poison records go to the
quarantine queue and count as handled.
"""

from __future__ import annotations

import base64
import binascii
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from app import aws, quarantine
from app.batch import Pending, Step
from app.events import ChainEvent, InvalidEvent, decode
from app.rates import Rates
from app.store import Store

SERVICE = "ngu-points-processor"
NAMESPACE = "NGUPoints/Processor"
COUNTERS = ("EventsApplied", "DuplicatesSkipped", "OwnershipGaps", "PoisonRecords", "RecordsFailed")
# Freshness: apply time minus the block timestamp of the oldest event applied in the batch, in seconds.
LAG_METRIC = "EndToEndLag"

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
# No `service` dimension: the alarms select these metrics by `Stage` alone.
metrics = Metrics(namespace=NAMESPACE, service="")


@dataclass(frozen=True)
class Settings:
    tokens_table: str
    points_table: str
    quarantine_queue_url: str
    rates: Rates
    stage: str
    remaining_time_guard_ms: int
    max_events_per_transaction: int | None = None  # 1: one transaction per event (the per-event path)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise RuntimeError(f"{name}: environment variable is missing or empty")
            return value

        guard = env.get("REMAINING_TIME_GUARD_MS", "5000")
        if not guard.isdigit():
            raise RuntimeError(f"REMAINING_TIME_GUARD_MS: expected milliseconds, got {guard!r}")
        per_transaction = env.get("MAX_EVENTS_PER_TRANSACTION", "").strip()
        if per_transaction and not (per_transaction.isdigit() and int(per_transaction) > 0):
            raise RuntimeError(f"MAX_EVENTS_PER_TRANSACTION: expected a positive integer, got {per_transaction!r}")
        return cls(
            tokens_table=required("TOKENS_TABLE"),
            points_table=required("POINTS_TABLE"),
            quarantine_queue_url=required("QUARANTINE_QUEUE_URL"),
            rates=Rates.parse(env.get("POINTS_PER_DAY"), env.get("DEFAULT_POINTS_PER_DAY")),
            stage=env.get("STAGE", "dev"),
            remaining_time_guard_ms=int(guard),
            max_events_per_transaction=int(per_transaction) if per_transaction else None,
        )


class Poison(Exception):
    """A record that can never succeed: quarantine it instead of retrying it."""


class Consumer:
    def __init__(self, settings: Settings, store: Store, sqs: Any) -> None:
        self.settings = settings
        self.store = store
        self.sqs = sqs

    def process(self, records: Sequence[dict[str, Any]], remaining_ms: Callable[[], int]) -> dict[str, Any]:
        counts = dict.fromkeys(COUNTERS, 0)
        items = [self._classify(record) for record in records]
        states = self._prefetch([item.event for item in items if isinstance(item, Pending)])
        failed_from = len(records)
        oldest_applied: list[int] = []  # the block time of the oldest event applied, once one is
        index = 0
        while index < len(records):
            if remaining_ms() < self.settings.remaining_time_guard_ms:
                logger.warning(
                    "time is short: reporting the rest of the batch", extra={"unapplied": len(records) - index}
                )
                failed_from = index
                break
            try:
                index = self._apply_next(records, items, index, states, counts, oldest_applied)
            except Exception:
                logger.exception(
                    "records failed: reporting the first and every later record", extra=_where(records[index])
                )
                failed_from = index
                break
        counts["RecordsFailed"] = len(records) - failed_from
        for name, value in counts.items():
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        if oldest_applied:
            metrics.add_metric(name=LAG_METRIC, unit=MetricUnit.Seconds, value=max(0, time.time() - oldest_applied[0]))
        self.counts = counts  # what the last batch did (operator replays report it)
        failures = [{"itemIdentifier": r["kinesis"]["sequenceNumber"]} for r in records[failed_from:]]
        return {"batchItemFailures": failures}

    def _apply_next(
        self,
        records: Sequence[dict[str, Any]],
        items: list[Pending | Poison],
        index: int,
        states: dict[str, Any],
        counts: dict[str, int],
        oldest_applied: list[int],
    ) -> int:
        """Quarantine the poison record at `index`, or commit the group of events starting there
        (and quarantine the inconsistent event that may end it). Returns the index after what was
        handled. A poison record ends a group, so that nothing after a record that failed has been
        applied or quarantined."""
        item = items[index]
        if isinstance(item, Poison):
            logger.set_correlation_id(records[index].get("eventID"))
            self._quarantine(records[index], str(item))
            counts["PoisonRecords"] += 1
            return index + 1
        end = next((i for i in range(index, len(items)) if isinstance(items[i], Poison)), len(items))
        logger.set_correlation_id(item.event.id)
        committed = self.store.apply_group(
            items[index:end], states, max_events=self.settings.max_events_per_transaction
        )
        for step in committed.group.steps:
            for name in _count(step):
                counts[name] += 1
        applied = [step.event.block_timestamp for step in committed.group.steps if step.applied]
        if applied:
            oldest_applied[:] = [min(applied + oldest_applied)]
        index += len(committed.group.steps)
        if committed.group.inconsistent:  # it ended the group: quarantined in its place
            logger.set_correlation_id(items[index].event.id)
            self._quarantine(records[index], str(committed.group.inconsistent))
            counts["PoisonRecords"] += 1
            index += 1
        return index

    def _classify(self, record: dict[str, Any]) -> Pending | Poison:
        parsed = _parse(record)
        if isinstance(parsed, Poison):
            return parsed
        weight = self.settings.rates.weight(parsed.rate_key)
        if weight is None:
            return Poison(f"no points rate for contract {parsed.rate_key} and no default")
        return Pending(parsed, weight)

    @tracer.capture_method
    def _prefetch(self, events: list[ChainEvent]) -> dict[str, Any]:
        if not events:
            return {}
        try:
            return dict(self.store.prefetch(e.token_key for e in events))
        except Exception:
            # Only an optimisation: each group then reads its own tokens, and the first that
            # cannot becomes the batch's first failure.
            logger.exception("prefetch failed; reading tokens group by group")
            return {}

    def _quarantine(self, record: dict[str, Any], reason: str) -> None:
        kinesis = record.get("kinesis", {})
        body = quarantine.message(
            reason,
            data=kinesis.get("data"),
            partition_key=kinesis.get("partitionKey"),
            event_source_arn=record.get("eventSourceARN"),
            shard_id=str(record.get("eventID", "")).split(":", 1)[0],
            sequence_number=kinesis.get("sequenceNumber"),
            arrival=kinesis.get("approximateArrivalTimestamp"),
        )
        quarantine.send(self.sqs, self.settings.quarantine_queue_url, body)
        logger.error("poison record quarantined", extra={"reason": reason, **_where(record)})


def _parse(record: dict[str, Any]) -> ChainEvent | Poison:
    """Never raises: decoding is a pure function of the record's bytes, so whatever it cannot
    decode now it never will, and the record is poison (quarantined), not a failure of the batch."""
    try:
        data = base64.b64decode(record["kinesis"]["data"], validate=True)
    except (KeyError, TypeError, binascii.Error, ValueError) as error:
        return Poison(f"record: data is not base64 ({error})")
    try:
        return decode(data)
    except InvalidEvent as error:
        return Poison(str(error))
    except Exception as error:  # a decoder defect must still cost one record, not the shard
        return Poison(f"record: cannot be decoded ({type(error).__name__}: {str(error)[:200]})")


def _count(step: Step) -> tuple[str, ...]:
    """The counters one event of a committed group increments (and what is logged about it)."""
    event = step.event
    if step.transition is None:
        logger.info(
            "duplicate or stale event skipped", extra={"event_id": event.id, "seq": event.seq, "token": event.token_key}
        )
        return ("DuplicatesSkipped",)
    if step.transition.gap:
        previous = step.transition.previous
        logger.warning(
            "ownership gap: the chain wins",
            extra={
                "event_id": event.id,
                "token": event.token_key,
                "event_from": event.from_address,
                "table_owner": previous.owner if previous else None,
                "table_last_event_id": previous.last_event_id if previous else None,
            },
        )
        return ("EventsApplied", "OwnershipGaps")
    return ("EventsApplied",)


def _where(record: dict[str, Any]) -> dict[str, Any]:
    kinesis = record.get("kinesis", {})
    return {"sequence_number": kinesis.get("sequenceNumber"), "partition_key": kinesis.get("partitionKey")}


@cache
def consumer() -> Consumer:
    """Built once per execution environment, from the environment (a bad value fails the init)."""
    settings = Settings.from_env(os.environ)
    metrics.set_default_dimensions(Stage=settings.stage)
    store = Store(settings.tokens_table, settings.points_table)
    return Consumer(settings, store, aws.client("sqs"))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return consumer().process(event.get("Records", []), context.get_remaining_time_in_millis)
