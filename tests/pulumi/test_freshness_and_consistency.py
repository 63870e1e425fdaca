"""The consumer's freshness and the reconciler's finding: one name each in code, catalog, dashboard,
and an alarm from each stack's own thresholds."""

from __future__ import annotations

import json

import pytest

from app import processor, reconcile
from components.alarm_catalog import END_TO_END_LAG, INCONSISTENCIES, PROCESSOR, RECONCILER
from tests.pulumi.conftest import STACKS, project_config
from tools.record_stack import RecordedStack


def test_code_and_catalog_share_the_names():
    assert (processor.NAMESPACE, processor.LAG_METRIC) == (PROCESSOR, END_TO_END_LAG)
    assert (reconcile.NAMESPACE, reconcile.METRIC) == (RECONCILER, INCONSISTENCIES)


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize(
    ("alarm", "metric", "key", "severity"),
    [
        ("EndToEndLag", END_TO_END_LAG, "endToEndLagSeconds", "notify"),
        ("Inconsistencies", INCONSISTENCIES, "inconsistencies", "page"),
    ],
)
def test_each_has_an_alarm_at_the_stack_threshold(
    recorded: dict[str, RecordedStack], stack: str, alarm: str, metric: str, key: str, severity: str
):
    alarms = {
        a.name.removeprefix("alarms-"): a.inputs
        for a in recorded[stack].of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    }
    inputs = alarms[alarm]
    assert (inputs["metricName"], inputs["statistic"], inputs["dimensions"]) == (metric, "Maximum", {"Stage": stack})
    assert inputs["threshold"] == project_config(stack, "thresholds")[key]
    assert inputs["alarmDescription"].startswith(f"[{severity}]")


def test_the_dashboard_shows_both(prod: RecordedStack):
    (dashboard,) = prod.of_type("aws:cloudwatch/dashboard:Dashboard")
    body = dashboard.inputs["dashboardBody"]
    widgets = json.loads(body)["widgets"] if isinstance(body, str) else body["widgets"]
    (freshness,) = [w for w in widgets if w["properties"].get("title", "").startswith("Freshness")]
    metrics = [(m[0], m[1]) for m in freshness["properties"]["metrics"]]
    assert metrics == [(PROCESSOR, END_TO_END_LAG), (RECONCILER, INCONSISTENCIES)]
