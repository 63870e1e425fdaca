"""One CloudWatch dashboard of the whole pipeline, in the order an event travels through it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from components.alarm_catalog import (
    END_TO_END_LAG,
    HOST,
    INCONSISTENCIES,
    MEMORY_METRIC,
    MONITOR,
    PROCESSOR,
    PROCESSOR_MEMORY,
    RECONCILER,
)
from components.alarms import AlarmTargets
from components.settings import Settings

WIDTH = 8
HEIGHT = 6


def _line(title: str, metrics: Sequence[list[Any]], region: str, stat: str = "Sum") -> dict[str, Any]:
    return {
        "type": "metric",
        "width": WIDTH,
        "height": HEIGHT,
        "properties": {
            "title": title,
            "region": region,
            "stat": stat,
            "period": 60,
            "view": "timeSeries",
            "metrics": list(metrics),
        },
    }


def dashboard_body(
    settings: Settings, targets: AlarmTargets, alarm_arns: Sequence[pulumi.Input[str]]
) -> pulumi.Output[str]:
    region = settings.region
    stage = ["Stage", str(settings.stage)]
    stream = ["StreamName", targets.stream]
    function = ["FunctionName", targets.function]
    mapping = ["EventSourceMappingUUID", targets.mapping]
    widgets = [
        {
            "type": "alarm",
            "width": 24,
            "height": 4,
            "properties": {"title": "Alarms", "alarms": list(alarm_arns), "sortBy": "stateUpdatedTimestamp"},
        },
        _line("Monitor: connected (1/0)", [[MONITOR, "WebSocketConnected", *stage]], region, "Minimum"),
        _line(
            "Monitor: events",
            [
                [MONITOR, name, *stage]
                for name in ("EventsIngested", "EventsPublished", "KinesisPutFailures", "ProcessingErrors")
            ],
            region,
        ),
        _line(
            "Monitor: blocks behind, reorgs",
            [[MONITOR, "BlocksBehind", *stage, {"stat": "Maximum"}], [MONITOR, "ReorgsDetected", *stage]],
            region,
        ),
        _line(
            "Monitor: ranges re-read (inconsistent answers), blocks re-read by hash (bloom)",
            [[MONITOR, "InconsistentReads", *stage], [MONITOR, "BloomRereads", *stage]],
            region,
        ),
        _line(
            "Monitor host: memory, CPU, disk (%)",
            [
                [MONITOR, "MemoryUtilization", *stage],
                [MONITOR, "CPUUtilization", *stage],
                [HOST, "mem_used_percent", *stage],
                [HOST, "disk_used_percent", *stage],
            ],
            region,
            "Maximum",
        ),
        _line(
            "Kinesis: records in, throttled",
            [
                ["AWS/Kinesis", "IncomingRecords", *stream],
                ["AWS/Kinesis", "WriteProvisionedThroughputExceeded", *stream],
            ],
            region,
        ),
        _line(
            "Kinesis: iterator age (ms)",
            [["AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", *stream], ["AWS/Lambda", "IteratorAge", *function]],
            region,
            "Maximum",
        ),
        _line(
            "Mapping: polled, failed, dropped, to bucket",
            [
                ["AWS/Lambda", name, *mapping]
                for name in (
                    "PolledEventCount",
                    "FailedInvokeEventCount",
                    "DroppedEventCount",
                    "OnFailureDestinationDeliveredEventCount",
                )
            ],
            region,
        ),
        _line(
            "Lambda: invocations, errors, throttles",
            [["AWS/Lambda", name, *function] for name in ("Invocations", "Errors", "Throttles")],
            region,
        ),
        _line(
            "Lambda: duration (ms), memory (MB)",
            [
                ["AWS/Lambda", "Duration", *function],
                [PROCESSOR_MEMORY.format(stage=settings.stage), MEMORY_METRIC, {"yAxis": "right"}],
            ],
            region,
            "Maximum",
        ),
        _line(
            "Processor: records",
            [
                [PROCESSOR, name, *stage]
                for name in ("EventsApplied", "DuplicatesSkipped", "OwnershipGaps", "PoisonRecords", "RecordsFailed")
            ],
            region,
        ),
        _line(
            "Freshness: end-to-end lag (s), inconsistencies found",
            [[PROCESSOR, END_TO_END_LAG, *stage], [RECONCILER, INCONSISTENCIES, *stage, {"yAxis": "right"}]],
            region,
            "Maximum",
        ),
        _line(
            "DynamoDB: consumed write units, throttles",
            [
                ["AWS/DynamoDB", name, "TableName", table]
                for table in (targets.tokens_table, targets.points_table)
                for name in ("ConsumedWriteCapacityUnits", "WriteThrottleEvents")
            ],
            region,
        ),
        _line(
            "Quarantine: messages waiting",
            [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", targets.queue]],
            region,
            "Maximum",
        ),
    ]
    return pulumi.Output.json_dumps({"widgets": widgets})


class Dashboard(pulumi.ComponentResource):
    dashboard: aws.cloudwatch.Dashboard
    url: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        settings: Settings,
        targets: AlarmTargets,
        alarm_arns: Sequence[pulumi.Input[str]],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ngu:pipeline:Dashboard", name, None, opts)
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=settings.names.dashboard,
            dashboard_body=dashboard_body(settings, targets, alarm_arns),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.url = self.dashboard.dashboard_name.apply(
            lambda n: (
                f"https://{settings.region}.console.aws.amazon.com/cloudwatch/home?region={settings.region}#dashboards:name={n}"
            )
        )
        self.register_outputs({"url": self.url})
