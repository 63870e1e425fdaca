"""The alarm catalog: every alarm of the pipeline as one row of data (DESIGN §8).

A row says what to watch (a metric, or metric math over several), how (statistic, period,
evaluations, comparison), the threshold's config key, the severity (page -> PagerDuty, notify ->
Slack), what missing data means, and the runbook section in docs/alarms.md. AlarmSet turns each
row into one CloudWatch alarm; adding an alarm is adding a row.

Sources: the seed's serverless.yml alarms (kept under their names, so existing dashboards and
bookmarks keep working), its §4 alerts (high -> page, medium -> notify), its §6 rollback triggers,
and what DESIGN §5/§8 add (the mapping's own metrics, the quarantine, monitor lag and heartbeat).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from components.settings import Settings

Severity = Literal["page", "notify"]
Missing = Literal["breaching", "notBreaching", "ignore", "missing"]
Comparison = Literal["GreaterThanThreshold", "GreaterThanOrEqualToThreshold", "LessThanThreshold"]

MONITOR = "NGUPoints/EventMonitor"
PROCESSOR = "NGUPoints/Processor"
HOST = "NGUPoints/Host"
RECONCILER = "NGUPoints/Reconciler"
# The consumer's freshness (app/processor.py LAG_METRIC) and the reconciler's finding (app/reconcile.py).
END_TO_END_LAG = "EndToEndLag"
INCONSISTENCIES = "Inconsistencies"
# The Lambda memory metric comes from a log metric filter, which cannot add a `Stage` dimension.
PROCESSOR_MEMORY = "NGUPoints/Processor/{stage}"
MEMORY_METRIC = "MaxMemoryUsedMB"


@dataclass(frozen=True)
class Ref:
    """A dimension value known only once resources exist: 'stream', 'function', 'mapping', 'queue',
    'tokens_table', 'points_table', 'stage'."""

    target: str


@dataclass(frozen=True)
class Metric:
    namespace: str
    name: str
    stat: str
    dimensions: tuple[tuple[str, str | Ref], ...]


@dataclass(frozen=True)
class AlarmSpec:
    name: str
    severity: Severity
    summary: str
    threshold: Callable[[Settings], float]
    threshold_key: str
    metrics: dict[str, Metric]
    # Metric math over `metrics` (by id); None: the single metric is the alarm's own.
    expression: str | None = None
    comparison: Comparison = "GreaterThanThreshold"
    period: Callable[[Settings], int] = field(default=lambda _: 300)
    evaluation_periods: int = 1
    missing: Missing = "notBreaching"
    # The seed named its alarms after the stream; those keep their names.
    seed_name: bool = False

    @property
    def runbook(self) -> str:
        return f"docs/alarms.md#{self.name.lower()}"


def threshold(key: str) -> Callable[[Settings], float]:
    return lambda settings: float(getattr(settings.thresholds, key))


def percent_of_timeout(key: str) -> Callable[[Settings], float]:
    return lambda settings: settings.consumer.timeout_seconds * 1000 * getattr(settings.thresholds, key) / 100


def percent_of_memory(key: str) -> Callable[[Settings], float]:
    return lambda settings: settings.consumer.memory_mb * getattr(settings.thresholds, key) / 100


def constant(value: float) -> Callable[[Settings], float]:
    """For alarms whose config knob is their period (a flag below 1 for N minutes)."""
    return lambda _: float(value)


def write_units_per_second(key: str) -> Callable[[Settings], float]:
    return lambda settings: settings.thresholds.dynamodb_table_max_write_units * getattr(settings.thresholds, key) / 100


def minutes(key: str) -> Callable[[Settings], int]:
    return lambda settings: 60 * getattr(settings.thresholds, key)


def fill(*ids: str) -> str:
    return " + ".join(f"FILL({i}, 0)" for i in ids)


def percent(numerator: str, denominator: str) -> str:
    """numerator / denominator in percent, 0 when nothing happened (never a division by zero)."""
    return f"IF(({denominator}) > 0, 100 * ({numerator}) / ({denominator}), 0)"


STAGE = (("Stage", Ref("stage")),)
STREAM = (("StreamName", Ref("stream")),)
FUNCTION = (("FunctionName", Ref("function")),)
MAPPING = (("EventSourceMappingUUID", Ref("mapping")),)


def _monitor(name: str, stat: str) -> Metric:
    return Metric(MONITOR, name, stat, STAGE)


def _processor(name: str) -> Metric:
    return Metric(PROCESSOR, name, "Sum", STAGE)


def _kinesis(name: str, stat: str) -> Metric:
    return Metric("AWS/Kinesis", name, stat, STREAM)


def _lambda(name: str, stat: str) -> Metric:
    return Metric("AWS/Lambda", name, stat, FUNCTION)


def _mapping(name: str) -> Metric:
    return Metric("AWS/Lambda", name, "Sum", MAPPING)


def _table(name: str, stat: str, table: str, operation: str | None = "TransactWriteItems") -> Metric:
    dimensions: tuple[tuple[str, str | Ref], ...] = (("TableName", Ref(f"{table}_table")),)
    if operation:
        dimensions += (("Operation", operation),)
    return Metric("AWS/DynamoDB", name, stat, dimensions)


def _both_tables(name: str, stat: str, operation: str | None = "TransactWriteItems") -> dict[str, Metric]:
    return {
        f"{name.lower()}_tokens": _table(name, stat, "tokens", operation),
        f"{name.lower()}_points": _table(name, stat, "points", operation),
    }


_DDB_REQUESTS = {
    **_both_tables("SystemErrors", "Sum"),
    **_both_tables("ThrottledRequests", "Sum"),
    "ok_tokens": _table("SuccessfulRequestLatency", "SampleCount", "tokens"),
    "ok_points": _table("SuccessfulRequestLatency", "SampleCount", "points"),
}
_DDB_TOTAL = fill(
    "ok_tokens",
    "ok_points",
    "systemerrors_tokens",
    "systemerrors_points",
    "throttledrequests_tokens",
    "throttledrequests_points",
)
_RECORDS = {
    "failed": _processor("RecordsFailed"),
    "applied": _processor("EventsApplied"),
    "duplicates": _processor("DuplicatesSkipped"),
    "poison": _processor("PoisonRecords"),
}
_LAMBDA_RATE = {"errors": _lambda("Errors", "Sum"), "invocations": _lambda("Invocations", "Sum")}

CATALOG: tuple[AlarmSpec, ...] = (
    # --- the seed's serverless.yml alarms, names and values kept --------------------------------
    AlarmSpec(
        "IteratorAge",
        "page",
        "The oldest unread record in the stream is older than the threshold: the consumer is stuck or far behind.",
        threshold("iterator_age_page_ms"),
        "iteratorAgePageMs",
        {"m": _kinesis("GetRecords.IteratorAgeMilliseconds", "Maximum")},
        evaluation_periods=2,
        seed_name=True,
    ),
    AlarmSpec(
        "WriteProvisioned",
        "notify",
        "Kinesis rejected writes for exceeding throughput: the monitor retries them, but lag grows.",
        threshold("write_provisioned_exceeded"),
        "writeProvisionedExceeded",
        {"m": _kinesis("WriteProvisionedThroughputExceeded", "Sum")},
        evaluation_periods=2,
        seed_name=True,
    ),
    AlarmSpec(
        "LambdaErrors",
        "notify",
        "The consumer's invocations failed (crashes, timeouts, init errors), as a count.",
        threshold("lambda_errors"),
        "lambdaErrors",
        {"m": _lambda("Errors", "Sum")},
        evaluation_periods=2,
        seed_name=True,
    ),
    AlarmSpec(
        "LambdaDuration",
        "page",
        "The consumer's slowest invocation used most of its timeout: the next may time out and retry whole batches.",
        percent_of_timeout("lambda_duration_page_percent"),
        "lambdaDurationPagePercent",
        {"m": _lambda("Duration", "Maximum")},
        evaluation_periods=2,
        seed_name=True,
    ),
    # --- seed §4, high priority (page) -------------------------------------------------------------
    AlarmSpec(
        "MonitorDisconnected",
        "page",
        "The event monitor's WebSocket stayed disconnected for the whole period.",
        constant(1),
        "monitorDisconnectedMinutes",
        {"m": _monitor("WebSocketConnected", "Maximum")},
        comparison="LessThanThreshold",
        period=minutes("monitor_disconnected_minutes"),
    ),
    AlarmSpec(
        "MonitorErrorRate",
        "page",
        "The event monitor failed to process more than the threshold share of the events it ingested.",
        threshold("monitor_error_rate_percent"),
        "monitorErrorRatePercent",
        {"errors": _monitor("ProcessingErrors", "Sum"), "ingested": _monitor("EventsIngested", "Sum")},
        expression=percent(fill("errors"), fill("ingested")),
    ),
    AlarmSpec(
        "WriteThrottled",
        "page",
        "Kinesis throttled many of the monitor's writes in the period.",
        threshold("write_throttle_events"),
        "writeThrottleEvents",
        {"m": _kinesis("WriteProvisionedThroughputExceeded", "Sum")},
    ),
    AlarmSpec(
        "LambdaErrorRate",
        "page",
        "More than the threshold share of the consumer's invocations failed.",
        threshold("lambda_error_rate_percent"),
        "lambdaErrorRatePercent",
        _LAMBDA_RATE,
        expression=percent(fill("errors"), fill("invocations")),
    ),
    AlarmSpec(
        "LambdaThrottles",
        "page",
        "The consumer was throttled: reserved concurrency does not cover the shards.",
        threshold("lambda_throttles"),
        "lambdaThrottles",
        {"m": _lambda("Throttles", "Sum")},
    ),
    AlarmSpec(
        "DynamoDBWriteThrottles",
        "page",
        "DynamoDB throttled writes to the tokens or points table.",
        threshold("dynamodb_write_throttles"),
        "dynamodbWriteThrottles",
        _both_tables("WriteThrottleEvents", "Sum", operation=None),
        expression=fill("writethrottleevents_tokens", "writethrottleevents_points"),
    ),
    AlarmSpec(
        "DynamoDBErrorRate",
        "page",
        "More than the threshold share of the consumer's transactions failed with DynamoDB errors.",
        threshold("dynamodb_error_rate_percent"),
        "dynamodbErrorRatePercent",
        _DDB_REQUESTS,
        expression=percent(fill("systemerrors_tokens", "systemerrors_points"), _DDB_TOTAL),
    ),
    # --- seed §4, medium priority (notify) ---------------------------------------------------------
    AlarmSpec(
        "MonitorMemory",
        "notify",
        "The event monitor uses more memory than the threshold.",
        threshold("monitor_memory_percent"),
        "monitorMemoryPercent",
        {"m": _monitor("MemoryUtilization", "Maximum")},
    ),
    AlarmSpec(
        "MonitorCpu",
        "notify",
        "The event monitor uses more CPU than the threshold.",
        threshold("monitor_cpu_percent"),
        "monitorCpuPercent",
        {"m": _monitor("CPUUtilization", "Average")},
    ),
    AlarmSpec(
        "MonitorHostDisk",
        "notify",
        "The monitor host's root disk is filling up.",
        threshold("monitor_disk_percent"),
        "monitorDiskPercent",
        {"m": Metric(HOST, "disk_used_percent", "Maximum", STAGE)},
    ),
    AlarmSpec(
        "IteratorAgeWarning",
        "notify",
        "The consumer is falling behind the stream (early warning before IteratorAge pages).",
        threshold("iterator_age_notify_ms"),
        "iteratorAgeNotifyMs",
        {"m": _kinesis("GetRecords.IteratorAgeMilliseconds", "Maximum")},
    ),
    AlarmSpec(
        "PutRecordsLatency",
        "notify",
        "Kinesis takes long to accept the monitor's batches.",
        threshold("put_records_latency_ms"),
        "putRecordsLatencyMs",
        {"m": _kinesis("PutRecords.Latency", "Average")},
    ),
    AlarmSpec(
        "LambdaMemory",
        "notify",
        "The consumer's peak memory is close to its memory size.",
        percent_of_memory("lambda_memory_percent"),
        "lambdaMemoryPercent",
        {"m": Metric(PROCESSOR_MEMORY, MEMORY_METRIC, "Maximum", ())},
    ),
    AlarmSpec(
        "LambdaDurationWarning",
        "notify",
        "The consumer's slowest invocation used half its timeout.",
        percent_of_timeout("lambda_duration_notify_percent"),
        "lambdaDurationNotifyPercent",
        {"m": _lambda("Duration", "Maximum")},
    ),
    AlarmSpec(
        "DynamoDBLatency",
        "notify",
        "DynamoDB transactions are slow.",
        threshold("dynamodb_latency_ms"),
        "dynamodbLatencyMs",
        {
            "latency_tokens": _table("SuccessfulRequestLatency", "Average", "tokens"),
            "latency_points": _table("SuccessfulRequestLatency", "Average", "points"),
        },
        expression="MAX([FILL(latency_tokens, 0), FILL(latency_points, 0)])",
    ),
    AlarmSpec(
        "DynamoDBCapacity",
        "notify",
        "A table's write rate approaches its on-demand maximum write throughput.",
        write_units_per_second("dynamodb_capacity_percent"),
        "dynamodbCapacityPercent",
        _both_tables("ConsumedWriteCapacityUnits", "Sum", operation=None),
        expression="MAX([FILL(consumedwritecapacityunits_tokens, 0), FILL(consumedwritecapacityunits_points, 0)])"
        " / PERIOD(consumedwritecapacityunits_tokens)",
    ),
    # --- seed §6 rollback triggers (page) ----------------------------------------------------------
    AlarmSpec(
        "RollbackProcessingErrorRate",
        "page",
        "Rollback trigger: more than the threshold share of records failed to apply.",
        threshold("processing_error_rate_rollback_percent"),
        "processingErrorRateRollbackPercent",
        _RECORDS,
        expression=percent(fill("failed"), fill("failed", "applied", "duplicates", "poison")),
    ),
    AlarmSpec(
        "RollbackDynamoDBThrottleRate",
        "page",
        "Rollback trigger: DynamoDB throttles more than the threshold share of transactions.",
        threshold("dynamodb_throttle_rate_rollback_percent"),
        "dynamodbThrottleRateRollbackPercent",
        _DDB_REQUESTS,
        expression=percent(fill("throttledrequests_tokens", "throttledrequests_points"), _DDB_TOTAL),
    ),
    AlarmSpec(
        "RollbackLambdaErrorRate",
        "page",
        "Rollback trigger: more than the threshold share of invocations failed.",
        threshold("lambda_error_rate_rollback_percent"),
        "lambdaErrorRateRollbackPercent",
        _LAMBDA_RATE,
        expression=percent(fill("errors"), fill("invocations")),
    ),
    AlarmSpec(
        "OwnershipGaps",
        "page",
        "Rollback trigger (data inconsistency): events arrived for tokens whose owner in the table differs.",
        threshold("ownership_gaps"),
        "ownershipGaps",
        {"m": _processor("OwnershipGaps")},
    ),
    # --- DESIGN §5/§8: nothing dropped silently, the monitor alive and current --------------------
    AlarmSpec(
        "MappingDroppedEvents",
        "page",
        "The mapping gave up on records (too old, or retries exhausted): they left the stream unapplied.",
        threshold("mapping_dropped_events"),
        "mappingDroppedEvents",
        {"m": _mapping("DroppedEventCount")},
    ),
    AlarmSpec(
        "OnFailureDeliveries",
        "page",
        "Batches exhausted their retries and went to the on-failure bucket: their points are missing until replayed.",
        threshold("on_failure_deliveries"),
        "onFailureDeliveries",
        {"m": _mapping("OnFailureDestinationDeliveredEventCount")},
    ),
    AlarmSpec(
        "OnFailureDeliveryFailures",
        "page",
        "Lambda could not write failed batches to the on-failure bucket: records may be lost.",
        threshold("on_failure_deliveries"),
        "onFailureDeliveries",
        {"m": _lambda("DestinationDeliveryFailures", "Sum")},
    ),
    AlarmSpec(
        "QuarantineNotEmpty",
        "notify",
        "Poison records wait in the quarantine queue.",
        threshold("quarantine_messages"),
        "quarantineMessages",
        {"m": Metric("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", (("QueueName", Ref("queue")),))},
    ),
    AlarmSpec(
        "LambdaIteratorAge",
        "notify",
        "The consumer's batches are old when they arrive: it is behind the stream.",
        threshold("lambda_iterator_age_ms"),
        "lambdaIteratorAgeMs",
        {"m": _lambda("IteratorAge", "Maximum")},
    ),
    AlarmSpec(
        "MonitorBlocksBehind",
        "notify",
        "The event monitor lags the chain head by more blocks than the threshold.",
        threshold("monitor_blocks_behind"),
        "monitorBlocksBehind",
        {"m": _monitor("BlocksBehind", "Maximum")},
        evaluation_periods=3,
    ),
    AlarmSpec(
        "MonitorKinesisPutFailures",
        "notify",
        "Kinesis refused records the monitor published (they are retried).",
        threshold("monitor_put_failures"),
        "monitorPutFailures",
        {"m": _monitor("KinesisPutFailures", "Sum")},
    ),
    AlarmSpec(
        "ReorgsDetected",
        "page",
        "A deep reorg changed blocks the monitor had already published: points may count orphaned events.",
        threshold("reorgs_detected"),
        "reorgsDetected",
        {"m": _monitor("ReorgsDetected", "Sum")},
    ),
    AlarmSpec(
        "EndToEndLag",
        "notify",
        "Events reach the tables long after their block was mined: the pipeline is behind the chain.",
        threshold("end_to_end_lag_seconds"),
        "endToEndLagSeconds",
        {"m": Metric(PROCESSOR, END_TO_END_LAG, "Maximum", STAGE)},
        evaluation_periods=2,
    ),
    AlarmSpec(
        "Inconsistencies",
        "page",
        "Rollback trigger (data inconsistency detected): reconcile found the tables differing from the chain.",
        threshold("inconsistencies"),
        "inconsistencies",
        {"m": Metric(RECONCILER, INCONSISTENCIES, "Maximum", STAGE)},
    ),
    AlarmSpec(
        "MonitorHeartbeat",
        "page",
        "The event monitor sent no metric at all for the period: it is down (missing data breaches).",
        constant(1),
        "monitorHeartbeatMinutes",
        {"m": _monitor("WebSocketConnected", "SampleCount")},
        comparison="LessThanThreshold",
        period=minutes("monitor_heartbeat_minutes"),
        missing="breaching",
    ),
)

# Alarms considered and left out, with the reason (docs/alarms.md keeps a section for each).
DROPPED: dict[str, str] = {
    "MappingFailedInvokes": (
        "With ReportBatchItemFailures the mapping's FailedInvokeEventCount counts every event of a response "
        "that reports any item failure, so it rises on each remaining-time guard cut-off and transient error "
        "that the retries then absorb: it says nothing the operator must act on. What it was meant to catch is "
        "covered where it is specific: LambdaErrors/LambdaThrottles (the invocation failed), LambdaIteratorAge "
        "and IteratorAge (a batch is stuck), OnFailureDeliveries and MappingDroppedEvents (records left the stream)."
    ),
}
