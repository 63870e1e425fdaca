"""Lambda functions: traced, with bounded concurrency, and logs kept as long as the stack says."""

from pulumi_policy import (
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from .props import UNKNOWN, fmt, get, is_unknown, number, schema, settings
from .stack import depends_on, of_type

FUNCTION = "aws:lambda/function:Function"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
DEFAULT_TIMEOUT_SECONDS = 3.0


def timeout_seconds(props) -> float:
    """The function's timeout as AWS applies it: 3 s when the input is absent."""
    timeout = number(get(props, "timeout"))
    return DEFAULT_TIMEOUT_SECONDS if timeout is None else timeout


def function_name(props):
    return get(props, "name")


def _tracing(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != FUNCTION:
        return
    mode = get(args.props, "tracingConfig", "mode", default="PassThrough")
    if not is_unknown(mode) and mode != "Active":
        report(f'tracingConfig.mode is "{mode}"; set it to "Active" so every invocation is traced in X-Ray')


CONCURRENCY_CONFIG = schema(
    minReservedConcurrency={"type": "integer", "minimum": 1, "default": 1},
)


def _reserved_concurrency(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != FUNCTION:
        return
    minimum = settings(args, CONCURRENCY_CONFIG)["minReservedConcurrency"]
    reserved = number(get(args.props, "reservedConcurrentExecutions"))
    if reserved is UNKNOWN:
        return
    if reserved is None or reserved < 0:
        report("reservedConcurrentExecutions is not set; reserve concurrency so a burst cannot starve the account")
    elif reserved == 0:
        report("reservedConcurrentExecutions is 0, which throttles every invocation")
    elif reserved < minimum:
        report(f"reservedConcurrentExecutions is {fmt(reserved)}; this stack requires at least {fmt(minimum)}")


LOG_RETENTION_CONFIG = schema(
    minRetentionDays={"type": "integer", "minimum": 1, "default": 14},
)


def _log_group_for(function: PolicyResource, log_groups: list[PolicyResource]) -> PolicyResource | None:
    configured = get(function.props, "loggingConfig", "logGroup")
    name = function_name(function.props)
    wanted = (
        configured
        if configured is not None
        else (UNKNOWN if is_unknown(name) or name is None else f"/aws/lambda/{name}")
    )
    for group in log_groups:
        group_name = get(group.props, "name")
        if not is_unknown(wanted) and group_name == wanted:
            return group
        if (is_unknown(wanted) or is_unknown(group_name)) and (
            depends_on(function, group) or depends_on(group, function)
        ):
            return group
    return None


def _log_retention(args: StackValidationArgs, report: ReportViolation) -> None:
    minimum = settings(args, LOG_RETENTION_CONFIG)["minRetentionDays"]
    log_groups = of_type(args.resources, LOG_GROUP)
    for function in of_type(args.resources, FUNCTION):
        name = function_name(function.props)
        label = name if isinstance(name, str) else function.name
        group = _log_group_for(function, log_groups)
        if group is None:
            report(
                f"function {label} has no log group in this stack; Lambda would create one whose logs never expire",
                function.urn,
            )
            continue
        days = number(get(group.props, "retentionInDays"))
        if days is UNKNOWN:
            continue
        if days is None or days == 0:
            report(f"log group of function {label} sets no retentionInDays, so logs never expire", group.urn)
        elif days < minimum:
            report(
                f"log group of function {label} keeps logs {fmt(days)} days; this stack requires at least {fmt(minimum)}",
                group.urn,
            )


lambda_tracing = ResourceValidationPolicy(
    name="lambda-tracing-active",
    description="Lambda functions trace every invocation (X-Ray Active).",
    validate=_tracing,
)

lambda_reserved_concurrency = ResourceValidationPolicy(
    name="lambda-reserved-concurrency",
    description="Lambda functions reserve their concurrency.",
    validate=_reserved_concurrency,
    config_schema=CONCURRENCY_CONFIG,
)

lambda_log_retention = StackValidationPolicy(
    name="lambda-log-group-retention",
    description="Every Lambda function has its log group in the stack, kept at least the stack's retention.",
    validate=_log_retention,
    config_schema=LOG_RETENTION_CONFIG,
)

POLICIES = [lambda_tracing, lambda_reserved_concurrency, lambda_log_retention]
