"""The alarm set: routes, coverage of the seed's alerts, metric math for rates, runbooks that exist."""

from __future__ import annotations

import json
import re

import pytest

from components.alarm_catalog import CATALOG
from tests.pulumi.conftest import STACKS, one
from tools.record_stack import ROOT, RecordedResource, RecordedStack


def _alarms(stack: RecordedStack) -> dict[str, dict]:
    return {a.name.removeprefix("alarms-"): a.inputs for a in stack.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}


def _topics(stack: RecordedStack) -> dict[str, RecordedResource]:
    return {t.name.removeprefix("alarms-"): t for t in stack.of_type("aws:sns/topic:Topic")}


def _metric_names(alarm: dict) -> set[str]:
    if "metricName" in alarm:
        return {alarm["metricName"]}
    return {q["metric"]["metricName"] for q in alarm["metricQueries"] if "metric" in q}


# Seed §4 and §6 plus DESIGN §5/§8: (catalog name, severity, a metric it must watch)
REQUIRED = [
    ("MonitorDisconnected", "page", "WebSocketConnected"),
    ("MonitorErrorRate", "page", "ProcessingErrors"),
    ("IteratorAge", "page", "GetRecords.IteratorAgeMilliseconds"),
    ("WriteThrottled", "page", "WriteProvisionedThroughputExceeded"),
    ("LambdaErrorRate", "page", "Errors"),
    ("LambdaDuration", "page", "Duration"),
    ("LambdaThrottles", "page", "Throttles"),
    ("DynamoDBWriteThrottles", "page", "WriteThrottleEvents"),
    ("DynamoDBErrorRate", "page", "SystemErrors"),
    ("MonitorMemory", "notify", "MemoryUtilization"),
    ("MonitorCpu", "notify", "CPUUtilization"),
    ("IteratorAgeWarning", "notify", "GetRecords.IteratorAgeMilliseconds"),
    ("PutRecordsLatency", "notify", "PutRecords.Latency"),
    ("LambdaMemory", "notify", "MaxMemoryUsedMB"),
    ("LambdaDurationWarning", "notify", "Duration"),
    ("DynamoDBLatency", "notify", "SuccessfulRequestLatency"),
    ("DynamoDBCapacity", "notify", "ConsumedWriteCapacityUnits"),
    ("RollbackProcessingErrorRate", "page", "RecordsFailed"),
    ("RollbackDynamoDBThrottleRate", "page", "ThrottledRequests"),
    ("RollbackLambdaErrorRate", "page", "Invocations"),
    ("OwnershipGaps", "page", "OwnershipGaps"),
    ("MappingDroppedEvents", "page", "DroppedEventCount"),
    ("OnFailureDeliveries", "page", "OnFailureDestinationDeliveredEventCount"),
    ("QuarantineNotEmpty", "notify", "ApproximateNumberOfMessagesVisible"),
    ("LambdaIteratorAge", "notify", "IteratorAge"),
    ("MonitorBlocksBehind", "notify", "BlocksBehind"),
    ("ReorgsDetected", "page", "ReorgsDetected"),
    ("MonitorHeartbeat", "page", "WebSocketConnected"),
]


@pytest.mark.parametrize(("name", "severity", "metric"), REQUIRED, ids=[r[0] for r in REQUIRED])
def test_catalog_covers_the_seed_alerts_with_their_severity(
    prod: RecordedStack, name: str, severity: str, metric: str
) -> None:
    alarm = _alarms(prod)[name]
    assert metric in _metric_names(alarm)
    assert alarm["alarmDescription"].startswith(f"[{severity}]")
    if severity == "page":
        assert any(a.endswith(":ngu-points-prod-page") for a in alarm["alarmActions"])
    else:
        assert alarm["alarmActions"] == ["arn:aws:sns:us-east-1:123456789012:ngu-points-prod-notify"]


@pytest.mark.parametrize("stack", STACKS)
def test_every_alarm_has_actions_ok_actions_and_a_runbook_that_exists(
    recorded: dict[str, RecordedStack], stack: str
) -> None:
    headings = {
        re.sub(r"[^a-z0-9-]", "", line[3:].strip().lower().replace(" ", "-"))
        for line in (ROOT / "docs" / "alarms.md").read_text().splitlines()
        if line.startswith("## ")
    }
    alarms = _alarms(recorded[stack])
    assert len(alarms) == len(CATALOG)
    for name, alarm in alarms.items():
        assert alarm["alarmActions"] and alarm["okActions"] == alarm["alarmActions"], name
        anchor = re.search(r"Runbook: docs/alarms\.md#([a-z0-9-]+)", alarm["alarmDescription"])
        assert anchor and anchor.group(1) in headings, name


def test_rates_are_metric_math_not_raw_counts(prod: RecordedStack) -> None:
    alarms = _alarms(prod)
    for name in ("LambdaErrorRate", "MonitorErrorRate", "DynamoDBErrorRate", "RollbackProcessingErrorRate"):
        (expression,) = [q for q in alarms[name]["metricQueries"] if q.get("expression")]
        assert expression["returnData"] is True
        assert re.match(r"IF\(\(.+\) > 0, 100 \* \(.+\) / \(.+\), 0\)", expression["expression"]), name
    (rate,) = [q for q in alarms["LambdaErrorRate"]["metricQueries"] if q.get("expression")]
    assert rate["expression"] == "IF((FILL(invocations, 0)) > 0, 100 * (FILL(errors, 0)) / (FILL(invocations, 0)), 0)"


def test_math_alarms_reference_only_the_metrics_they_declare(prod: RecordedStack) -> None:
    for name, alarm in _alarms(prod).items():
        for query in alarm.get("metricQueries", []):
            if "expression" in query:
                declared = {q["id"] for q in alarm["metricQueries"] if "metric" in q}
                used = set(re.findall(r"\b([a-z][a-z_]*)\b", query["expression"])) - {"rate"}
                assert used <= declared, (name, used - declared)


def test_heartbeat_treats_missing_data_as_breaching(prod: RecordedStack) -> None:
    heartbeat = _alarms(prod)["MonitorHeartbeat"]
    assert heartbeat["treatMissingData"] == "breaching"
    assert (heartbeat["statistic"], heartbeat["comparisonOperator"], heartbeat["threshold"]) == (
        "SampleCount",
        "LessThanThreshold",
        1,
    )
    assert heartbeat["dimensions"] == {"Stage": "prod"}


def test_processor_and_monitor_alarms_select_the_stage_dimension_only(prod: RecordedStack) -> None:
    for name, alarm in _alarms(prod).items():
        metrics = [alarm] if "metricName" in alarm else [q["metric"] for q in alarm["metricQueries"] if "metric" in q]
        for metric in metrics:
            if metric["namespace"] in ("NGUPoints/Processor", "NGUPoints/EventMonitor"):
                assert metric["dimensions"] == {"Stage": "prod"}, name


def test_mapping_alarms_select_the_mapping(prod: RecordedStack) -> None:
    alarms = _alarms(prod)
    for name in ("MappingDroppedEvents", "OnFailureDeliveries"):
        assert alarms[name]["dimensions"] == {"EventSourceMappingUUID": "processor-mapping-uuid"}, name
        assert alarms[name]["threshold"] == 0


def test_topics_are_encrypted_with_the_customer_key(prod: RecordedStack) -> None:
    (key,) = [k for k in prod.of_type("aws:kms/key:Key") if k.name == "alarms-key"]
    for topic in _topics(prod).values():
        assert topic.inputs["kmsMasterKeyId"] == "arn:aws:kms:us-east-1:123456789012:key/alarms-key-key-id"
        assert "alias/aws/sns" not in topic.inputs["kmsMasterKeyId"]
    assert key.inputs["enableKeyRotation"] is True


def test_pagerduty_gets_the_page_topic_over_https_with_a_secret_endpoint(prod: RecordedStack) -> None:
    subscription = one(prod, "aws:sns/topicSubscription:TopicSubscription")
    assert subscription.inputs["protocol"] == "https"
    assert subscription.inputs["topic"].endswith(":ngu-points-prod-page")
    assert subscription.redacted_inputs["endpoint"] == "[secret]"


def test_slack_gets_both_topics_through_chatbot(prod: RecordedStack) -> None:
    slack = one(prod, "aws:chatbot/slackChannelConfiguration:SlackChannelConfiguration").inputs
    assert sorted(t.rsplit("-", 1)[1] for t in slack["snsTopicArns"]) == ["notify", "page"]
    assert (slack["slackTeamId"], slack["slackChannelId"]) == ("T0NGUPOINTS", "C0NGUALERTS")
    assert slack["region"] == "us-east-2"  # Chatbot's API has no us-east-1 endpoint


def test_dashboard_shows_every_alarm_and_each_stage_of_the_pipeline(prod: RecordedStack) -> None:
    body = json.loads(one(prod, "aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])
    (alarm_widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert len(alarm_widget["properties"]["alarms"]) == len(CATALOG)
    namespaces = {m[0] for w in body["widgets"] if w["type"] == "metric" for m in w["properties"]["metrics"]}
    assert {
        "NGUPoints/EventMonitor",
        "AWS/Kinesis",
        "AWS/Lambda",
        "NGUPoints/Processor",
        "AWS/DynamoDB",
        "AWS/SQS",
    } <= namespaces


def test_dropped_alarms_say_why_and_are_not_deployed(prod: RecordedStack) -> None:
    from components.alarm_catalog import CATALOG, DROPPED

    runbook = (ROOT / "docs" / "alarms.md").read_text()
    for name, reason in DROPPED.items():
        assert name not in {spec.name for spec in CATALOG} and name not in _alarms(prod)
        assert len(reason) > 80
        section = runbook.split(f"## {name}\n", 1)[1].split("\n## ", 1)[0]
        assert "Dropped" in section, name


@pytest.mark.parametrize("stack", STACKS)
def test_preflight_looks_for_exactly_the_alarm_names_the_stack_creates(
    recorded: dict[str, RecordedStack], stack: str
) -> None:
    from app.names import StageNames
    from app.preflight import stack_alarm_names

    declared = sorted(alarm["name"] for alarm in _alarms(recorded[stack]).values())
    assert sorted(stack_alarm_names(StageNames(stack))) == declared
    assert f"ngu-points-core-v5-events-{stack}-v5-IteratorAge" in declared  # a seed name, kept
