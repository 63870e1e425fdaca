"""Event source mappings from streams: nothing blocks a shard and nothing is dropped silently."""

import re

from pulumi_policy import (
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from .kinesis import DEFAULT_RETENTION_HOURS, STREAM, retention_hours
from .props import UNKNOWN, fmt, get, is_unknown, known_strings, number, schema, settings
from .stack import depends_on, of_type

MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
_STREAM_ARN = re.compile(r"^arn:[^:]+:(kinesis:.*:stream/|dynamodb:.*/stream/)")


def reads_a_stream(props) -> bool:
    """Kinesis or DynamoDB stream mappings (unknown ARNs count: only stream sources set a starting position)."""
    arn = get(props, "eventSourceArn")
    if isinstance(arn, str) and not is_unknown(arn):
        return _STREAM_ARN.match(arn) is not None
    return get(props, "startingPosition") is not None


FAILURE_CONFIG = schema(
    maxRetryAttempts={"type": "integer", "minimum": 0, "maximum": 10000, "default": 3},
)


def _failure_handling(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != MAPPING or not reads_a_stream(args.props):
        return
    props = args.props
    maximum = settings(args, FAILURE_CONFIG)["maxRetryAttempts"]

    response_types = get(props, "functionResponseTypes")
    if not is_unknown(response_types) and "ReportBatchItemFailures" not in set(known_strings(response_types)):
        report(
            'functionResponseTypes lacks "ReportBatchItemFailures": one bad record would fail and retry its whole batch'
        )

    bisect = get(props, "bisectBatchOnFunctionError", default=False)
    if not is_unknown(bisect) and bisect is not True:
        report(
            "bisectBatchOnFunctionError is not true: a failing batch is retried whole instead of split to isolate the bad record"
        )

    retries = number(get(props, "maximumRetryAttempts"))
    if retries is not UNKNOWN:
        if retries is None or retries < 0:
            report("maximumRetryAttempts is not set (infinite): a poison record blocks its shard until it expires")
        elif retries > maximum:
            report(f"maximumRetryAttempts is {fmt(retries)}; this stack allows at most {fmt(maximum)}")

    destination = get(props, "destinationConfig", "onFailure", "destinationArn")
    if destination is None or destination == "":
        report(
            "destinationConfig.onFailure.destinationArn is not set: records that exhaust their retries are dropped silently"
        )

    metrics = get(props, "metricsConfig", "metrics")
    if not is_unknown(metrics) and "EventCount" not in set(known_strings(metrics)):
        report('metricsConfig.metrics lacks "EventCount": dropped and failed events would not be measured or alarmed')


RECORD_AGE_CONFIG = schema(
    minRetentionMarginSeconds={"type": "integer", "minimum": 0, "default": 3600},
)


def _source_stream(mapping: PolicyResource, streams: list[PolicyResource]) -> PolicyResource | None:
    arn = get(mapping.props, "eventSourceArn")
    for stream in streams:
        name = get(stream.props, "name")
        if isinstance(arn, str) and not is_unknown(arn) and isinstance(name, str) and arn.endswith(f":stream/{name}"):
            return stream
    return next((stream for stream in streams if depends_on(mapping, stream)), None)


def _record_age(args: StackValidationArgs, report: ReportViolation) -> None:
    margin = settings(args, RECORD_AGE_CONFIG)["minRetentionMarginSeconds"]
    streams = of_type(args.resources, STREAM)
    for mapping in of_type(args.resources, MAPPING):
        if not reads_a_stream(mapping.props):
            continue
        age = number(get(mapping.props, "maximumRecordAgeInSeconds"))
        stream = _source_stream(mapping, streams)
        # A stream outside this stack keeps at least the Kinesis minimum.
        hours = retention_hours(stream.props) if stream is not None else DEFAULT_RETENTION_HOURS
        if age is UNKNOWN or hours is UNKNOWN:
            continue
        limit = hours * 3600 - margin
        if age is None or age < 0:
            report(
                f"maximumRecordAgeInSeconds is not set (-1): a record is retried until the stream's {fmt(hours)} h "
                "retention expires it, and an expired record reaches no destination",
                mapping.urn,
            )
        elif age > limit:
            report(
                f"maximumRecordAgeInSeconds is {fmt(age)} s; with the stream's {fmt(hours)} h retention and a "
                f"{fmt(margin)} s margin it must be at most {fmt(limit)} s, or records expire before reaching the on-failure destination",
                mapping.urn,
            )


mapping_failure_handling = ResourceValidationPolicy(
    name="event-source-mapping-failure-handling",
    description=(
        "Stream event source mappings report item failures, bisect, retry a bounded number of times, "
        "send what fails to an on-failure destination and emit their own metrics."
    ),
    validate=_failure_handling,
    config_schema=FAILURE_CONFIG,
)

mapping_record_age = StackValidationPolicy(
    name="event-source-mapping-record-age",
    description="A stream event source mapping gives up on a record well before the stream's retention expires it.",
    validate=_record_age,
    config_schema=RECORD_AGE_CONFIG,
)

POLICIES = [mapping_failure_handling, mapping_record_age]
