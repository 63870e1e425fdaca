"""Telemetry: structured JSON logs (powertools Logger) and CloudWatch metrics once a minute.

Names from DESIGN §8, namespace NGUPoints/EventMonitor, the single dimension Stage (the alarms
select by it alone). Counters are sums over the interval; WebSocketConnected and BlocksBehind are
gauges read at flush time; memory and CPU are the host's, as the seed's alerts mean them.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

NAMESPACE = "NGUPoints/EventMonitor"
COUNTERS = (
    "EventsIngested",
    "EventsPublished",
    "KinesisPutFailures",
    "ProcessingErrors",
    "ReorgsDetected",
    "InconsistentReads",
    "BloomRereads",  # blocks read again by hash because their bloom may hold our logs (not alarmed)
    "PoisonRecords",  # the direct sink's quarantined events, as the consumer names them
)
METRIC_DATA_LIMIT = 1000

logger = Logger(service="ngu-points-monitor")


class Telemetry:
    def __init__(self, cloudwatch: Any, stage: str) -> None:
        self.cloudwatch = cloudwatch
        self.stage = stage
        self.counts: Counter[str] = Counter()
        self.gauges: dict[str, Callable[[], float | None]] = {}

    def count(self, name: str, value: int = 1) -> None:
        self.counts[name] += value

    def gauge(self, name: str, read: Callable[[], float | None]) -> None:
        self.gauges[name] = read

    def snapshot(self) -> list[dict[str, Any]]:
        """The metric data of this interval; counters restart from zero."""
        counts, self.counts = self.counts, Counter()
        values: dict[str, tuple[float, str]] = {name: (float(counts[name]), "Count") for name in COUNTERS}
        for name, read in self.gauges.items():
            value = read()
            if value is not None:
                values[name] = (float(value), "Count")
        import psutil  # imported off the path from process start to the first eth_getLogs (see run)

        values["MemoryUtilization"] = (psutil.virtual_memory().percent, "Percent")
        values["CPUUtilization"] = (psutil.cpu_percent(interval=None), "Percent")
        dimensions = [{"Name": "Stage", "Value": self.stage}]
        return [
            {"MetricName": name, "Dimensions": dimensions, "Value": value, "Unit": unit}
            for name, (value, unit) in values.items()
        ]

    def restore(self, data: list[dict[str, Any]]) -> None:
        """Put back the counters of a snapshot that could not be sent, so the next flush carries them."""
        for datum in data:
            if datum["MetricName"] in COUNTERS:
                self.counts[datum["MetricName"]] += int(datum["Value"])

    def flush(self, quiet: bool = False) -> None:
        """Send this interval's metrics; if CloudWatch fails they are kept for the next flush
        (`quiet`: without a log line, for callers that already log one line per attempt)."""
        data = self.snapshot()
        try:
            for start in range(0, len(data), METRIC_DATA_LIMIT):
                self.cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data[start : start + METRIC_DATA_LIMIT])
        except Exception as error:
            self.restore(data)
            if not quiet:
                logger.warning("metrics not sent; kept for the next flush", extra={"error": type(error).__name__})

    async def run(self, interval: float) -> None:
        await asyncio.to_thread(_start_cpu_measurement)
        while True:
            await asyncio.sleep(interval)
            await asyncio.to_thread(self.flush)


def _start_cpu_measurement() -> None:
    import psutil

    psutil.cpu_percent(interval=None)  # the first call only starts the measurement
