"""The issue's seven breakages, applied to any recorded stack by resource type (not by name), so the
same cases run against the synthetic stacks and the real recorded programs.

Each mutation returns the changed stack and the URN where exactly one violation must be reported.
"""

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest

STREAM = "aws:kinesis/stream:Stream"
FUNCTION = "aws:lambda/function:Function"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
INSTANCE = "aws:ec2/instance:Instance"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
IDENTITY_POLICIES = ("aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy")
ITERATOR_AGE = "GetRecords.IteratorAgeMilliseconds"


def first(resources: list, type_: str, where: Callable[[Any], bool] = lambda r: True):
    found = [r for r in resources if r.type == type_ and where(r)]
    if not found:
        pytest.skip(f"the stack declares no {type_} to break")
    return found[0]


def changed(resources: list, target, change: Callable[[dict], None]) -> list:
    inputs = copy.deepcopy(target.inputs)
    change(inputs)
    return [replace(r, inputs=inputs) if r.urn == target.urn else r for r in resources]


def _reads_iterator_age(alarm) -> bool:
    queries = alarm.inputs.get("metricQueries") or []
    return alarm.inputs.get("metricName") == ITERATOR_AGE or any(
        (q.get("metric") or {}).get("metricName") == ITERATOR_AGE for q in queries
    )


def records_outliving_12h(margin_seconds: float):
    """A mapping that may keep a record longer than a 12 h stream keeps it also breaks the record-age rule."""

    def consequences(resources) -> set[tuple[str, str]]:
        return {
            ("event-source-mapping-record-age", r.urn)
            for r in resources
            if r.type == MAPPING and r.inputs.get("maximumRecordAgeInSeconds", -1) > 12 * 3600 - margin_seconds
        }

    return consequences


def retention_12h(resources):
    stream = first(resources, STREAM)
    return changed(resources, stream, lambda i: i.update(retentionPeriod=12)), stream.urn


def tracing_pass_through(resources):
    function = first(resources, FUNCTION)
    return changed(resources, function, lambda i: i.update(tracingConfig={"mode": "PassThrough"})), function.urn


def missing_iterator_age_alarm(resources):
    stream = first(resources, STREAM)
    return [r for r in resources if not (r.type == ALARM and _reads_iterator_age(r))], stream.urn


def threshold_over_limit(limit_ms: float):
    """Every plain iterator-age alarm loosened past the limit: only the tightest one counts."""

    def mutate(resources):
        alarms = [r for r in resources if r.type == ALARM and r.inputs.get("metricName") == ITERATOR_AGE]
        if not alarms:
            pytest.skip("the stack declares no iterator-age alarm to loosen")
        for alarm in alarms:
            resources = changed(resources, alarm, lambda i: i.update(threshold=limit_ms + 60_000))
        return resources, alarms[0].urn

    return mutate


def _scoped_statement(document: dict) -> dict | None:
    statements = document.get("Statement")
    statements = statements if isinstance(statements, list) else [statements]
    return next((s for s in statements if s.get("Effect") == "Allow" and s.get("Resource") not in ("*", ["*"])), None)


def star_action(resources):
    def has_scoped(resource) -> bool:
        policy = resource.inputs.get("policy")
        return isinstance(policy, str) and _scoped_statement(json.loads(policy)) is not None

    target = next((r for t in IDENTITY_POLICIES for r in resources if r.type == t and has_scoped(r)), None)
    if target is None:
        pytest.skip("the stack declares no identity policy with a scoped statement to break")

    def widen(inputs):
        document = json.loads(inputs["policy"])
        _scoped_statement(document)["Action"] = "*"
        inputs["policy"] = json.dumps(document)

    return changed(resources, target, widen), target.urn


def public_ip(resources):
    """The host's first interface asks for a public address: on the instance, or its launch template."""
    if any(r.type == INSTANCE for r in resources):
        host = first(resources, INSTANCE)
        return changed(resources, host, lambda i: i.update(associatePublicIpAddress=True)), host.urn
    template = first(resources, LAUNCH_TEMPLATE, lambda r: r.inputs.get("networkInterfaces"))
    return changed(
        resources, template, lambda i: i["networkInterfaces"][0].update(associatePublicIpAddress="true")
    ), template.urn


def mapping_without_destination(resources):
    mapping = first(resources, MAPPING)
    return changed(resources, mapping, lambda i: i.pop("destinationConfig", None)), mapping.urn


@dataclass(frozen=True)
class Breakage:
    apply: Callable[[list], tuple[list, str]]
    policy: str
    fragment: str
    # Further violations the breakage causes by the program's own values, as (policy, resource URN).
    consequences: Callable[[list], set[tuple[str, str]]] = lambda resources: set()


def breakages(max_iterator_age_seconds: float, record_age_margin_seconds: float) -> dict[str, Breakage]:
    return {
        "retention 12 h": Breakage(
            retention_12h,
            "kinesis-stream-retention",
            "retentionPeriod is 12 h",
            records_outliving_12h(record_age_margin_seconds),
        ),
        "tracing PassThrough": Breakage(tracing_pass_through, "lambda-tracing-active", '"PassThrough"'),
        "missing iterator-age alarm": Breakage(missing_iterator_age_alarm, "alarm-coverage", "no iterator-age alarm"),
        "alarm threshold over the limit": Breakage(
            threshold_over_limit(max_iterator_age_seconds * 1000), "alarm-thresholds", "the tightest iterator-age alarm"
        ),
        "* action": Breakage(star_action, "iam-no-wildcard-action", "allows '*'"),
        "public IP": Breakage(public_ip, "ec2-no-public-ip", "associatePublicIpAddress is true"),
        "mapping without on-failure destination": Breakage(
            mapping_without_destination, "event-source-mapping-failure-handling", "destinationConfig.onFailure"
        ),
    }
