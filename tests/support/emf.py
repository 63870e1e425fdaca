"""Read back the processor's metrics from the CloudWatch embedded-metric-format lines it prints."""

from __future__ import annotations

import json


def metric_totals(output: str, namespace: str = "NGUPoints/Processor") -> dict[str, float]:
    totals: dict[str, float] = {}
    for line in output.splitlines():
        try:
            blob = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(blob, dict) or "_aws" not in blob:
            continue
        (directive,) = blob["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == namespace
        assert directive["Dimensions"] == [["Stage"]] and "Stage" in blob
        for metric in directive["Metrics"]:
            value = blob[metric["Name"]]
            totals[metric["Name"]] = totals.get(metric["Name"], 0) + sum(value if isinstance(value, list) else [value])
    return totals
