"""The stack policies, which relate resources: log groups to functions, mappings to streams, alarms to
what they watch, bucket settings to buckets."""

import pytest
from ngu_policies import alarms, data, functions, mappings
from pulumi_policy.proxy import UNKNOWN_NUMBER_VALUE, UNKNOWN_STRING_VALUE

from tests.policy.cases import policy_config, stack
from tests.policy.harness import resource_messages, stack_messages
from tests.policy.synthetic import mutate, without


def prod():
    return list(stack("prod"))


def only(policy, resources, stage="prod"):
    return stack_messages(policy, resources, policy_config(stage, policy.name))


# --- Lambda log groups ---


def test_function_without_a_log_group_is_reported_at_the_function():
    [(where, message)] = only(functions.lambda_log_retention, without(prod(), "consumer-logs"))
    assert where == "consumer-function"
    assert "has no log group in this stack" in message


@pytest.mark.parametrize(
    ("retention", "expected"),
    [
        (7, "keeps logs 7 days; this stack requires at least 14"),
        (None, "sets no retentionInDays, so logs never expire"),
    ],
)
def test_log_group_retention_below_the_stack_minimum(retention, expected):
    resources = mutate(prod(), "consumer-logs", lambda i: i.update(retentionInDays=retention))
    [(where, message)] = only(functions.lambda_log_retention, resources)
    assert where == "consumer-logs"
    assert expected in message


def test_log_group_found_by_dependency_when_names_are_unknown_at_preview():
    resources = mutate(prod(), "consumer-function", lambda i: i["loggingConfig"].update(logGroup=UNKNOWN_STRING_VALUE))
    resources = mutate(resources, "consumer-logs", lambda i: i.update(name=UNKNOWN_STRING_VALUE))
    assert only(functions.lambda_log_retention, resources) == []


def test_default_log_group_name_is_matched_without_logging_config():
    resources = mutate(prod(), "consumer-function", lambda i: i.pop("loggingConfig"))
    assert only(functions.lambda_log_retention, resources) == []


# --- mapping record age against the stream's retention ---


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (-1, "maximumRecordAgeInSeconds is not set (-1)"),
        (None, "maximumRecordAgeInSeconds is not set (-1)"),
        (
            86_000,
            "maximumRecordAgeInSeconds is 86000 s; with the stream's 24 h retention and a 3600 s margin it must be at most 82800 s",
        ),
    ],
)
def test_record_age_must_end_before_the_stream_expires_the_record(age, expected):
    resources = mutate(prod(), "consumer-mapping", lambda i: i.update(maximumRecordAgeInSeconds=age))
    [(where, message)] = only(mappings.mapping_record_age, resources)
    assert where == "consumer-mapping"
    assert expected in message


def test_record_age_follows_a_longer_stream_retention():
    resources = mutate(prod(), "events-stream", lambda i: i.update(retentionPeriod=48))
    resources = mutate(resources, "consumer-mapping", lambda i: i.update(maximumRecordAgeInSeconds=86_000))
    assert only(mappings.mapping_record_age, resources) == []


def test_record_age_unknown_at_preview_is_skipped():
    resources = mutate(prod(), "consumer-mapping", lambda i: i.update(maximumRecordAgeInSeconds=UNKNOWN_NUMBER_VALUE))
    assert only(mappings.mapping_record_age, resources) == []


def test_stream_found_by_dependency_when_its_arn_is_unknown():
    resources = mutate(prod(), "events-stream", lambda i: i.update(retentionPeriod=1))
    resources = mutate(resources, "consumer-mapping", lambda i: i.update(eventSourceArn=UNKNOWN_STRING_VALUE))
    [(_, message)] = only(mappings.mapping_record_age, resources)
    assert "stream's 1 h retention" in message


# --- alarm coverage ---


@pytest.mark.parametrize(
    ("removed", "where", "expected"),
    [
        (("alarms-iterator-age", "alarms-iterator-age-early"), "events-stream", "has no iterator-age alarm"),
        (("alarms-write-throttles",), "events-stream", "has no write-throttle alarm"),
        (("alarms-error-rate",), "consumer-function", "has no error-rate alarm"),
        (("alarms-duration", "alarms-duration-half"), "consumer-function", "has no duration alarm"),
        (("alarms-throttles",), "consumer-function", "has no throttle alarm"),
        (("alarms-dropped-events",), "consumer-mapping", "has no dropped-events alarm"),
    ],
)
def test_missing_alarm_is_reported_at_what_it_should_watch(removed, where, expected):
    [(reported_at, message)] = only(alarms.alarm_coverage, without(prod(), *removed))
    assert reported_at == where
    assert expected in message


def test_alarm_on_another_stream_does_not_count():
    resources = without(prod(), "alarms-iterator-age-early")
    resources = mutate(resources, "alarms-iterator-age", lambda i: i["dimensions"].update(StreamName="other-stream"))
    [(_, message)] = only(alarms.alarm_coverage, resources)
    assert "stream ngu-points-core-v5-events-prod-v5 has no iterator-age alarm" in message


def test_error_count_alarm_is_not_an_error_rate():
    def plain_errors(inputs):
        inputs.pop("metricQueries")
        inputs.update(namespace="AWS/Lambda", metricName="Errors", dimensions={"FunctionName": "x"}, statistic="Sum")

    resources = mutate(prod(), "alarms-error-rate", plain_errors)
    [(_, message)] = only(alarms.alarm_coverage, resources)
    assert "has no error-rate alarm" in message and "as metric math (a rate)" in message


def test_dropped_events_alarm_needs_the_mapping_dependency_when_the_uuid_is_unknown():
    resources = [
        r if r.name != "alarms-dropped-events" else type(r)(**{**r.__dict__, "dependencies": r.dependencies[:1]})
        for r in prod()
    ]
    [(where, _)] = only(alarms.alarm_coverage, resources)
    assert where == "consumer-mapping"


# --- alarm thresholds ---


def loosened(resources, names, threshold):
    for name in names:
        resources = mutate(resources, name, lambda i: i.update(threshold=threshold))
    return resources


@pytest.mark.parametrize(
    ("alarms_", "threshold", "expected"),
    [
        (
            ("alarms-iterator-age", "alarms-iterator-age-early"),
            7_200_000,
            "the tightest iterator-age alarm on stream ngu-points-core-v5-events-prod-v5, ngu-points-prod-iterator-age, "
            "fires at 7200000 ms; this stack allows at most 3600000 ms (3600 s)",
        ),
        (
            ("alarms-duration", "alarms-duration-half"),
            50_000,
            "fires at 50000 ms; this stack allows at most 48000 ms (80 % of the 60 s timeout)",
        ),
        (("alarms-error-rate",), 6, "fires at 6 %; this stack allows at most 5 % (errors per invocation)"),
    ],
)
def test_tightest_threshold_over_the_stack_limit(alarms_, threshold, expected):
    [(where, message)] = only(alarms.alarm_thresholds, loosened(prod(), alarms_, threshold))
    assert where == alarms_[0]
    assert expected in message


def test_a_looser_alarm_beside_a_tight_one_is_fine():
    resources = loosened(prod(), ["alarms-iterator-age"], 7_200_000)  # the early warning still fires at 15 min
    assert only(alarms.alarm_thresholds, resources) == []


def test_duration_limit_follows_the_function_timeout():
    resources = mutate(prod(), "consumer-function", lambda i: i.update(timeout=35))
    [(where, message)] = only(alarms.alarm_thresholds, resources)
    assert where == "alarms-duration-half" and "at most 28000 ms (80 % of the 35 s timeout)" in message


def test_error_rate_as_a_fraction_is_read_as_a_fraction():
    def as_fraction(inputs):
        inputs["metricQueries"][2]["expression"] = "errors / invocations"
        inputs["threshold"] = 0.06

    [(_, message)] = only(alarms.alarm_thresholds, mutate(prod(), "alarms-error-rate", as_fraction))
    assert "fires at 6 %" in message


def test_staging_limits_accept_what_prod_limits_reject():
    staging = list(stack("staging"))
    assert only(alarms.alarm_thresholds, staging, "staging") == []
    rejected = {where for where, _ in only(alarms.alarm_thresholds, staging, "prod")}
    assert rejected == {"alarms-error-rate"}


def test_threshold_unknown_at_preview_is_skipped():
    resources = mutate(prod(), "alarms-iterator-age", lambda i: i.update(threshold=UNKNOWN_NUMBER_VALUE))
    assert only(alarms.alarm_thresholds, resources) == []


# --- per-alarm rules ---

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        ({"alarmActions": []}, "alarmActions is empty"),
        ({}, "alarmActions is empty"),
        ({"alarmActions": ["arn:aws:sns:us-east-1:1:t"], "actionsEnabled": False}, "actionsEnabled is false"),
    ],
)
def test_alarm_without_an_action(inputs, expected):
    [message] = resource_messages(alarms.alarm_actions, ALARM, inputs)
    assert expected in message


def test_alarm_action_unknown_at_preview_counts_as_an_action():
    assert resource_messages(alarms.alarm_actions, ALARM, {"alarmActions": [UNKNOWN_STRING_VALUE]}) == []


@pytest.mark.parametrize("treat", [None, "missing", "notBreaching"])
def test_heartbeat_without_an_alarm_breaching_on_missing_data(treat):
    def change(inputs):
        inputs.pop("treatMissingData")
        if treat:
            inputs["treatMissingData"] = treat

    [(where, message)] = only(alarms.heartbeat_alarms, mutate(prod(), "alarms-monitor-heartbeat", change))
    assert where == "alarms-monitor-heartbeat"
    assert "no alarm on the heartbeat NGUPoints/EventMonitor WebSocketConnected" in message
    assert f"ngu-points-prod-monitor-heartbeat ({treat or 'missing'})" in message


def test_heartbeat_without_any_alarm():
    [(where, message)] = only(alarms.heartbeat_alarms, without(prod(), "alarms-monitor-heartbeat"))
    assert where == "(stack)"
    assert "no alarm watches the heartbeat NGUPoints/EventMonitor WebSocketConnected" in message


def test_other_alarms_on_the_heartbeat_metric_may_ignore_missing_data():
    resources = prod()
    disconnect = next(r for r in resources if r.name == "alarms-monitor-heartbeat")
    extra = type(disconnect)(
        **{**disconnect.__dict__, "name": "alarms-disconnected", "urn": disconnect.urn + "-disconnected",
           "inputs": {**disconnect.inputs, "treatMissingData": "notBreaching"}}
    )  # fmt: skip
    assert only(alarms.heartbeat_alarms, [*resources, extra]) == []


def test_heartbeat_inside_metric_math_is_recognised():
    def as_math(inputs):
        for key in ("namespace", "metricName", "dimensions", "statistic", "period"):
            inputs.pop(key)
        inputs["metricQueries"] = [
            {"id": "up", "metric": {"namespace": "NGUPoints/EventMonitor", "metricName": "WebSocketConnected"}},
            {"id": "e", "expression": "FILL(up, 0)", "returnData": True},
        ]
        inputs["treatMissingData"] = "ignore"

    assert len(only(alarms.heartbeat_alarms, mutate(prod(), "alarms-monitor-heartbeat", as_math))) == 1


# --- S3 ---


def test_bucket_without_encryption_configuration():
    [(where, message)] = only(data.s3_encryption, without(prod(), "consumer-failures-sse"))
    assert where == "consumer-failures" and "has no BucketServerSideEncryptionConfiguration" in message


def test_bucket_with_inline_encryption_passes():
    resources = without(prod(), "consumer-failures-sse")
    rules = [{"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]}]
    resources = mutate(resources, "consumer-failures", lambda i: i.update(serverSideEncryptionConfiguration=rules))
    assert only(data.s3_encryption, resources) == []


def test_bucket_without_public_access_block():
    [(where, message)] = only(data.s3_public_access, without(prod(), "consumer-failures-private"))
    assert where == "consumer-failures" and "has no BucketPublicAccessBlock" in message


def test_public_access_block_with_a_flag_off():
    resources = mutate(prod(), "consumer-failures-private", lambda i: i.update(restrictPublicBuckets=False))
    [(where, message)] = only(data.s3_public_access, resources)
    assert where == "consumer-failures-private" and "leaves restrictPublicBuckets off" in message


def test_public_access_block_matched_by_dependency_when_the_bucket_name_is_unknown():
    resources = mutate(prod(), "consumer-failures-private", lambda i: i.update(bucket=UNKNOWN_STRING_VALUE))
    assert only(data.s3_public_access, resources) == []
