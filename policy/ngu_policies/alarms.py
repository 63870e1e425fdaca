"""CloudWatch alarms: every stream, function and mapping is watched, within the stack's limits, by alarms
that notify someone.

An alarm reads its metric either directly (`namespace`, `metricName`, `dimensions`) or through metric
math (`metricQueries`); both are read into one `AlarmView`. Which resource an alarm watches is decided by
its dimension value (the stream or function name) or, when that value is not known (a mapping's UUID, an
output during preview), by the alarm taking an input from the resource.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from .functions import FUNCTION, timeout_seconds
from .kinesis import STREAM
from .mappings import MAPPING, reads_a_stream
from .props import UNKNOWN, elements, fmt, get, is_unknown, number, schema, settings
from .stack import depends_on, of_type

METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
COMPOSITE_ALARM = "aws:cloudwatch/compositeAlarm:CompositeAlarm"
_UPPER_BOUND_OPERATORS = ("GreaterThanThreshold", "GreaterThanOrEqualToThreshold")


@dataclass(frozen=True)
class Metric:
    namespace: Any
    name: Any
    dimensions: Mapping[str, Any]


@dataclass(frozen=True)
class AlarmView:
    resource: PolicyResource | None  # None inside a resource validation, which sees no other resource
    name: Any
    metrics: tuple[Metric, ...]
    expression: Any  # the metric-math expression the alarm evaluates; None for a plain metric
    threshold: Any
    comparison: Any

    @property
    def label(self) -> str:
        if isinstance(self.name, str):
            return self.name
        return self.resource.name if self.resource is not None else "(unnamed)"

    def reads(self, namespace: str, metric_name: str) -> list[Metric]:
        return [m for m in self.metrics if m.namespace == namespace and m.name == metric_name]

    @property
    def bounds_from_above(self) -> bool:
        return self.comparison in _UPPER_BOUND_OPERATORS


def _dimensions(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        return {}
    return {key: get(value, key) for key in value}


def read_alarm(props: Mapping[str, Any], resource: PolicyResource | None = None) -> AlarmView:
    metrics: list[Metric] = []
    expression = None
    if get(props, "metricName") is not None:
        metrics.append(Metric(get(props, "namespace"), get(props, "metricName"), _dimensions(get(props, "dimensions"))))
    queries = elements(get(props, "metricQueries"))
    for query in [] if queries is UNKNOWN else queries:
        metric = get(query, "metric")
        if isinstance(metric, Mapping):
            metrics.append(
                Metric(get(metric, "namespace"), get(metric, "metricName"), _dimensions(get(metric, "dimensions")))
            )
        if get(query, "expression") is not None and get(query, "returnData") is True:
            expression = get(query, "expression")
    return AlarmView(
        resource,
        get(props, "name"),
        tuple(metrics),
        expression,
        number(get(props, "threshold")),
        get(props, "comparisonOperator"),
    )


def _identity(target: PolicyResource) -> Any:
    """The dimension value naming `target`; None for a mapping, whose UUID exists only after creation."""
    return None if target.resource_type == MAPPING else get(target.props, "name")


def watches(alarm: AlarmView, metric: Metric, dimension: str, target: PolicyResource) -> bool:
    value = metric.dimensions.get(dimension)
    identity = _identity(target)
    if isinstance(value, str) and not is_unknown(value) and isinstance(identity, str):
        return value == identity
    return dimension in metric.dimensions and alarm.resource is not None and depends_on(alarm.resource, target)


@dataclass(frozen=True)
class Requirement:
    """One row of the alarm catalog every stack must carry."""

    kind: str
    target_type: str
    dimension: str
    metrics: tuple[tuple[str, str], ...]  # (namespace, metricName): any one of them
    metric_math: bool = False  # a rate: the alarm divides, e.g. errors by invocations

    def satisfied_by(self, alarm: AlarmView, target: PolicyResource) -> bool:
        if self.metric_math and alarm.expression is None:
            return False
        return any(
            watches(alarm, metric, self.dimension, target)
            for namespace, metric_name in self.metrics
            for metric in alarm.reads(namespace, metric_name)
        )

    def describe(self) -> str:
        names = " or ".join(f"{ns} {name}" for ns, name in self.metrics)
        return f"{names} on {self.dimension}" + (" as metric math (a rate)" if self.metric_math else "")


REQUIRED_ALARMS = (
    Requirement("iterator-age", STREAM, "StreamName", (("AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds"),)),
    Requirement(
        "write-throttle",
        STREAM,
        "StreamName",
        (("AWS/Kinesis", "WriteProvisionedThroughputExceeded"), ("AWS/Kinesis", "PutRecords.ThrottledRecords")),
    ),
    Requirement("error-rate", FUNCTION, "FunctionName", (("AWS/Lambda", "Errors"),), metric_math=True),
    Requirement("duration", FUNCTION, "FunctionName", (("AWS/Lambda", "Duration"),)),
    Requirement("throttle", FUNCTION, "FunctionName", (("AWS/Lambda", "Throttles"),)),
    Requirement("dropped-events", MAPPING, "EventSourceMappingUUID", (("AWS/Lambda", "DroppedEventCount"),)),
)

_TARGET_NOUN = {STREAM: "stream", FUNCTION: "function", MAPPING: "event source mapping"}


def _target_label(target: PolicyResource) -> str:
    name = get(target.props, "name")
    return name if isinstance(name, str) else target.name


def _coverage(args: StackValidationArgs, report: ReportViolation) -> None:
    alarms = [read_alarm(r.props, r) for r in of_type(args.resources, METRIC_ALARM)]
    for requirement in REQUIRED_ALARMS:
        for target in of_type(args.resources, requirement.target_type):
            if requirement.target_type == MAPPING and not reads_a_stream(target.props):
                continue
            if not any(requirement.satisfied_by(alarm, target) for alarm in alarms):
                noun = _TARGET_NOUN[requirement.target_type]
                report(
                    f"{noun} {_target_label(target)} has no {requirement.kind} alarm ({requirement.describe()})",
                    target.urn,
                )


THRESHOLD_CONFIG = schema(
    maxIteratorAgeSeconds={"type": "number", "exclusiveMinimum": 0, "default": 3600},
    maxDurationTimeoutRatio={"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 0.8},
    maxErrorRatePercent={"type": "number", "exclusiveMinimum": 0, "maximum": 100, "default": 5},
)


def _error_rate_percent(alarm: AlarmView) -> float:
    # `100 * errors / invocations` compares in percent; `errors / invocations` in a fraction.
    return alarm.threshold if "100" in str(alarm.expression) else alarm.threshold * 100


def _limit(kind: str, limits: Mapping[str, Any], target: PolicyResource) -> tuple[Any, str, str]:
    """(the most lenient threshold this stack accepts, its unit, why) for one watched resource."""
    if kind == "iterator-age":
        seconds = limits["maxIteratorAgeSeconds"]
        return seconds * 1000, "ms", f"{fmt(seconds)} s"
    if kind == "duration":
        timeout = timeout_seconds(target.props)
        if timeout is UNKNOWN:
            return UNKNOWN, "ms", ""
        ratio = limits["maxDurationTimeoutRatio"]
        return ratio * timeout * 1000, "ms", f"{fmt(ratio * 100)} % of the {fmt(timeout)} s timeout"
    return limits["maxErrorRatePercent"], "%", "errors per invocation"


def _threshold_in_limit_units(requirement: Requirement, alarm: AlarmView) -> Any:
    if alarm.threshold in (None, UNKNOWN) or not alarm.bounds_from_above:
        return None
    if requirement.metric_math:
        return None if is_unknown(alarm.expression) else _error_rate_percent(alarm)
    # A plain metric compares in the metric's own unit; metric math could be anything.
    return alarm.threshold if alarm.expression is None else None


BOUNDED_KINDS = ("iterator-age", "duration", "error-rate")


def _thresholds(args: StackValidationArgs, report: ReportViolation) -> None:
    """The tightest alarm of each bounded kind on each resource fires within the stack's limit.

    Only the tightest counts: a looser alarm beside it (a rollback trigger at 10 % errors next to the
    page at 5 %) adds a signal and takes none away.
    """
    limits = settings(args, THRESHOLD_CONFIG)
    alarms = [read_alarm(r.props, r) for r in of_type(args.resources, METRIC_ALARM)]
    for requirement in (r for r in REQUIRED_ALARMS if r.kind in BOUNDED_KINDS):
        for target in of_type(args.resources, requirement.target_type):
            bounded = [
                (value, alarm)
                for alarm in alarms
                if requirement.satisfied_by(alarm, target)
                and (value := _threshold_in_limit_units(requirement, alarm)) is not None
            ]
            limit, unit, why = _limit(requirement.kind, limits, target)
            if not bounded or limit is UNKNOWN:
                continue
            value, tightest = min(bounded, key=lambda pair: pair[0])
            if value > limit:
                noun = _TARGET_NOUN[requirement.target_type]
                report(
                    f"the tightest {requirement.kind} alarm on {noun} {_target_label(target)}, {tightest.label}, "
                    f"fires at {fmt(value)} {unit}; this stack allows at most {fmt(limit)} {unit} ({why})",
                    tightest.resource.urn,
                )


def _has_action(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in (METRIC_ALARM, COMPOSITE_ALARM):
        return
    enabled = get(args.props, "actionsEnabled", default=True)
    if enabled is False:
        report("actionsEnabled is false: the alarm changes state and tells no one")
        return
    actions = elements(get(args.props, "alarmActions"))
    if actions is not UNKNOWN and not actions:
        report("alarmActions is empty: the alarm changes state and tells no one; send it to the page or notify topic")


HEARTBEAT_CONFIG = schema(
    heartbeatMetrics={
        "type": "array",
        "items": {
            "type": "object",
            "properties": {"namespace": {"type": "string"}, "metricName": {"type": "string"}},
            "required": ["namespace", "metricName"],
            "additionalProperties": False,
        },
        "default": [{"namespace": "NGUPoints/EventMonitor", "metricName": "WebSocketConnected"}],
    },
)


def _heartbeat(args: StackValidationArgs, report: ReportViolation) -> None:
    """Each heartbeat metric has an alarm that fires when the metric stops arriving.

    Other alarms may read the same metric for other reasons (a disconnect alarm that ignores gaps);
    what matters is that one of them treats missing data as breaching.
    """
    alarms = [read_alarm(r.props, r) for r in of_type(args.resources, METRIC_ALARM)]
    for heartbeat in settings(args, HEARTBEAT_CONFIG)["heartbeatMetrics"]:
        metric = f"{heartbeat['namespace']} {heartbeat['metricName']}"
        watching = [a for a in alarms if a.reads(heartbeat["namespace"], heartbeat["metricName"])]
        treats = [get(a.resource.props, "treatMissingData", default="missing") for a in watching]
        if any(is_unknown(t) or t == "breaching" for t in treats):
            continue
        if not watching:
            report(f"no alarm watches the heartbeat {metric}; a dead sender would go unnoticed")
            continue
        names = ", ".join(f"{a.label} ({t})" for a, t in zip(watching, treats, strict=True))
        report(
            f'no alarm on the heartbeat {metric} sets treatMissingData to "breaching" ({names}): '
            "a dead sender publishes nothing, and only missing data can tell",
            watching[0].resource.urn,
        )


alarm_coverage = StackValidationPolicy(
    name="alarm-coverage",
    description=(
        "Every stream has iterator-age and write-throttle alarms, every function error-rate, duration and "
        "throttle alarms, every stream mapping a dropped-events alarm."
    ),
    validate=_coverage,
)

alarm_thresholds = StackValidationPolicy(
    name="alarm-thresholds",
    description="Alarm thresholds stay within the stack's limits (iterator age, duration against timeout, error rate).",
    validate=_thresholds,
    config_schema=THRESHOLD_CONFIG,
)

alarm_actions = ResourceValidationPolicy(
    name="alarm-has-action",
    description="Every alarm notifies someone.",
    validate=_has_action,
)

heartbeat_alarms = StackValidationPolicy(
    name="heartbeat-alarm-breaches-on-missing-data",
    description="Every heartbeat metric has an alarm that treats missing data as breaching.",
    validate=_heartbeat,
    config_schema=HEARTBEAT_CONFIG,
)

POLICIES = [alarm_coverage, alarm_thresholds, alarm_actions, heartbeat_alarms]
