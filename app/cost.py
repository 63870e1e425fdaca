"""`cost --stage S --events-per-month N [--event-bytes B] [--json]`: this stack's monthly cost, line by line.

The configuration comes from the stack file Pulumi.S.yaml (validated by the stack's own settings
model), the prices from app/prices.yaml (one region, one date, list prices, no free tier), and the
alarms are counted from the alarm catalog. Both stream modes are priced, and the report says which is
cheaper at this volume; the total uses the mode the stack file sets. A provisioned stream is sized
for the peak (--peak-factor x the average rate: 1,000 records/s and 1 MiB/s in per shard) and never
below the capacity an on-demand stream starts with (`stream.expectedShards`, 4), which the consumer's
concurrency is sized on.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from app.errors import OperatorError
from app.stack_file import stack_file, stack_settings
from app.stage import stage_names

PRICES = Path(__file__).with_name("prices.yaml")

# DynamoDB request units per event (bench/README.md, bench/processor_throughput.py): group commits
# write each token and holder a batch touches once per transaction (2.6 items an event, 2 WRU each),
# one strongly consistent read per token batch.
WRITE_UNITS_PER_EVENT = 5.2
READ_UNITS_PER_EVENT = 0.92
# Usage estimates the prices multiply (each named, so a measurement can replace it).
LAMBDA_MS_PER_INVOCATION = 50  # start, BatchGetItem, metrics flush
LAMBDA_MS_PER_EVENT = 1  # 0.04 TransactWriteItems an event (~10-20 ms each on DynamoDB), planning
LOG_BYTES_PER_INVOCATION = 1_200  # START / END / REPORT lines and one EMF metrics document
XRAY_SAMPLED_SHARE = 0.05  # Lambda active tracing: the first request each second, then 5 %
MONITOR_METRIC_CALLS_PER_MONTH = 730 * 60  # one PutMetricData a minute
KMS_KEYS = 2  # the stream's key and the alarm topics' key (components/stream.py, components/alarms.py)
KMS_REQUESTS_PER_MONTH = 20_000  # data keys of the stream's producer and consumer, re-used for minutes
SHARD_RECORDS_PER_SECOND = 1_000
SHARD_BYTES_PER_SECOND = 1024 * 1024
KIB = 1024
GIB = 1024**3


@dataclass(frozen=True)
class Line:
    service: str
    item: str
    quantity: str
    usd: float


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--stage", required=True, metavar="S", help="the stack (reads Pulumi.S.yaml)")
    parser.add_argument("--events-per-month", required=True, type=_positive, metavar="N", help="chain events a month")
    parser.add_argument(
        "--event-bytes", type=_positive, default=420, metavar="B", help="bytes per record (default 420)"
    )
    parser.add_argument(
        "--peak-factor", type=float, default=3.0, metavar="X", help="peak rate / average rate, for sizing shards (3)"
    )
    parser.add_argument("--stack-file", type=Path, metavar="PATH", help="default: Pulumi.S.yaml beside the program")
    parser.add_argument("--prices", type=Path, default=PRICES, metavar="PATH", help="default: app/prices.yaml")
    parser.add_argument("--json", action="store_true", help="print the lines and totals as JSON")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def run(args: argparse.Namespace) -> int:
    names = stage_names(args)
    if args.peak_factor < 1:
        raise OperatorError(f"--peak-factor: at least 1, got {args.peak_factor}")
    settings = stack_settings(args.stack_file or stack_file(names.stage))
    prices = _prices(args.prices)
    estimate = Estimate(settings, prices, args.events_per_month, args.event_bytes, args.peak_factor)
    report = estimate.report()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    return 0


def _prices(path: Path) -> dict[str, Any]:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise OperatorError(f"--prices {path}: cannot read ({type(error).__name__})", code=1) from None


class Estimate:
    def __init__(self, settings: Any, prices: dict[str, Any], events: int, event_bytes: int, peak: float) -> None:
        self.settings = settings
        self.p = prices
        self.events = events
        self.bytes = event_bytes
        self.peak = peak
        self.hours = prices["hours_per_month"]
        self.seconds = self.hours * 3600

    # -- the stream, both ways --------------------------------------------------------------------

    def on_demand(self) -> list[Line]:
        k = self.p["kinesis"]
        gib = self.events * math.ceil(self.bytes / KIB) * KIB / GIB
        return [
            Line("Kinesis on-demand", "stream-hours", f"{self.hours} h", self.hours * k["on_demand_stream_hour"]),
            Line("Kinesis on-demand", "data in", f"{gib:.2f} GiB", gib * k["on_demand_ingest_per_gb"]),
            Line("Kinesis on-demand", "data out (1 consumer)", f"{gib:.2f} GiB", gib * k["on_demand_retrieval_per_gb"]),
        ]

    def shards(self) -> int:
        if self.settings.stream.mode == "PROVISIONED":
            return self.settings.stream.shard_count
        peak_rate = self.peak * self.events / self.seconds
        needed = max(
            math.ceil(peak_rate / SHARD_RECORDS_PER_SECOND), math.ceil(peak_rate * self.bytes / SHARD_BYTES_PER_SECOND)
        )
        return max(needed, self.settings.stream.expected_shards)

    def provisioned(self) -> list[Line]:
        k = self.p["kinesis"]
        shards = self.shards()
        units = self.events * math.ceil(self.bytes / (25 * KIB))
        return [
            Line(
                "Kinesis provisioned",
                "shard-hours",
                f"{shards} x {self.hours} h",
                shards * self.hours * k["provisioned_shard_hour"],
            ),
            Line(
                "Kinesis provisioned",
                "PUT payload units",
                f"{units / 1e6:.3f} M",
                units / 1e6 * k["provisioned_put_units_per_million"],
            ),
        ]

    # -- everything else ----------------------------------------------------------------------------

    def invocations(self) -> float:
        per_shard_second = self.events / self.seconds / self.settings.stream.shards
        batch = min(self.settings.consumer.batch_size, max(1.0, per_shard_second))
        return self.events / batch

    def rest(self) -> list[Line]:
        s, p = self.settings, self.p
        invocations = self.invocations()
        gb_seconds = (
            (invocations * LAMBDA_MS_PER_INVOCATION + self.events * LAMBDA_MS_PER_EVENT)
            / 1000
            * s.consumer.memory_mb
            / 1024
        )
        rate = invocations / self.seconds
        traces = self.seconds * (min(rate, 1.0) + XRAY_SAMPLED_SHARE * max(0.0, rate - 1.0))
        wru, rru = self.events * WRITE_UNITS_PER_EVENT, self.events * READ_UNITS_PER_EVENT
        alarms, alarm_metrics = alarm_counts()
        metrics = custom_metric_count()
        log_gib = invocations * LOG_BYTES_PER_INVOCATION / GIB
        instance = s.monitor.instance_type
        hourly = p["ec2"]["instance_hour"].get(instance)
        if hourly is None:
            raise OperatorError(f"monitor.instanceType: {instance} has no price in the price table", code=1)
        cw, lam, ddb = p["cloudwatch"], p["lambda"], p["dynamodb"]
        return [
            Line("Lambda arm64", "duration", f"{gb_seconds:,.0f} GB-s", gb_seconds * lam["arm64_per_gb_second"]),
            Line(
                "Lambda arm64",
                "requests",
                f"{invocations / 1e6:.3f} M",
                invocations / 1e6 * lam["requests_per_million"],
            ),
            Line(
                "DynamoDB on-demand",
                f"transactional writes ({WRITE_UNITS_PER_EVENT} WRU/event)",
                f"{wru / 1e6:.2f} M WRU",
                wru / 1e6 * ddb["write_units_per_million"],
            ),
            Line(
                "DynamoDB on-demand",
                f"reads ({READ_UNITS_PER_EVENT} RRU/event)",
                f"{rru / 1e6:.2f} M RRU",
                rru / 1e6 * ddb["read_units_per_million"],
            ),
            Line(
                "CloudWatch",
                f"alarms ({alarms} in the catalog)",
                f"{alarm_metrics} metrics",
                alarm_metrics * cw["alarm_metric_month"],
            ),
            Line("CloudWatch", "custom metrics", f"{metrics} metrics", metrics * cw["custom_metric_month"]),
            Line(
                "CloudWatch",
                "monitor PutMetricData",
                f"{MONITOR_METRIC_CALLS_PER_MONTH:,} calls",
                MONITOR_METRIC_CALLS_PER_MONTH / 1000 * cw["put_metric_data_per_thousand"],
            ),
            Line("CloudWatch", "Lambda logs ingested", f"{log_gib:.3f} GiB", log_gib * cw["logs_ingest_per_gb"]),
            Line("CloudWatch", "dashboard", "1", cw["dashboard_month"]),
            Line(
                "X-Ray",
                "traces recorded",
                f"{traces / 1e6:.3f} M",
                traces / 1e6 * p["xray"]["traces_recorded_per_million"],
            ),
            Line("EC2", f"monitor host {instance}", f"{self.hours} h", self.hours * hourly),
            Line(
                "EBS", "monitor volume gp3", f"{s.monitor.volume_gb} GB", s.monitor.volume_gb * p["ec2"]["gp3_gb_month"]
            ),
            Line("KMS", "customer keys", f"{KMS_KEYS}", KMS_KEYS * p["kms"]["key_month"]),
            Line(
                "KMS",
                "requests",
                f"{KMS_REQUESTS_PER_MONTH:,}",
                KMS_REQUESTS_PER_MONTH / 10_000 * p["kms"]["requests_per_ten_thousand"],
            ),
            Line("S3", "on-failure bucket (empty when healthy)", "0 GB", 0.0),
            Line("SQS", "quarantine (idle when healthy)", "0 requests", 0.0),
        ]

    def report(self) -> dict[str, Any]:
        on_demand, provisioned, rest = self.on_demand(), self.provisioned(), self.rest()
        od, pv = _sum(on_demand), _sum(provisioned)
        mode = self.settings.stream.mode
        stream = on_demand if mode == "ON_DEMAND" else provisioned
        cheaper = "ON_DEMAND" if od < pv else "PROVISIONED"
        return {
            "stage": str(self.settings.stage),
            "region": self.p["region"],
            "pricesDate": self.p["date"],
            "eventsPerMonth": self.events,
            "eventBytes": self.bytes,
            "streamMode": mode,
            "lines": [line.__dict__ for line in [*stream, *rest]],
            "streamModes": {"ON_DEMAND": round(od, 2), "PROVISIONED": round(pv, 2), "provisionedShards": self.shards()},
            "alternative": [line.__dict__ for line in (provisioned if mode == "ON_DEMAND" else on_demand)],
            "cheaperStreamMode": cheaper,
            "savingUsd": round(abs(od - pv), 2),
            "totalUsd": round(_sum(stream) + _sum(rest), 2),
        }


def _sum(lines: list[Line]) -> float:
    return sum(line.usd for line in lines)


def alarm_counts() -> tuple[int, int]:
    """Alarms in the catalog, and the metrics they read (CloudWatch bills each metric of an alarm)."""
    from components.alarm_catalog import CATALOG

    return len(CATALOG), sum(len(spec.metrics) for spec in CATALOG)


def custom_metric_count() -> int:
    """Distinct custom metrics: those the catalog alarms on, and every one the code emits."""
    from app.monitor.telemetry import COUNTERS as MONITOR_COUNTERS
    from app.monitor.telemetry import NAMESPACE as MONITOR
    from app.processor import COUNTERS, LAG_METRIC
    from app.processor import NAMESPACE as PROCESSOR
    from app.reconcile import METRIC, NAMESPACE
    from components.alarm_catalog import CATALOG

    names = {
        (m.namespace, m.name) for spec in CATALOG for m in spec.metrics.values() if not m.namespace.startswith("AWS/")
    }
    names |= {(PROCESSOR, name) for name in (*COUNTERS, LAG_METRIC)}
    names |= {(MONITOR, name) for name in MONITOR_COUNTERS}
    names.add((NAMESPACE, METRIC))
    return len(names)


def _print(report: dict[str, Any]) -> None:
    print(
        f"{report['stage']}: {report['eventsPerMonth']:,} events/month of {report['eventBytes']} bytes, "
        f"{report['region']} list prices of {report['pricesDate']}"
    )
    for line in report["lines"]:
        print(f"  {line['service']:<20} {line['item']:<44} {line['quantity']:>22} {line['usd']:>10.2f}")
    print(f"  {'total (stream ' + report['streamMode'] + ')':<87} {report['totalUsd']:>10.2f} USD/month")
    modes = report["streamModes"]
    print(
        f"stream: on-demand {modes['ON_DEMAND']:.2f} vs provisioned ({modes['provisionedShards']} shards) "
        f"{modes['PROVISIONED']:.2f} USD/month: {report['cheaperStreamMode'].lower().replace('_', '-')} is cheaper "
        f"by {report['savingUsd']:.2f}"
    )
