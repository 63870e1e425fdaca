"""Kinesis streams: the replay window, encryption at rest, and a coherent capacity mode."""

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from .props import UNKNOWN, fmt, get, is_unknown, number, schema, settings

STREAM = "aws:kinesis/stream:Stream"
DEFAULT_RETENTION_HOURS = 24.0


def retention_hours(props) -> float:
    """The stream's retention as AWS applies it: 24 h when the input is absent."""
    hours = number(get(props, "retentionPeriod"))
    return DEFAULT_RETENTION_HOURS if hours is None else hours


RETENTION_CONFIG = schema(
    minRetentionHours={"type": "number", "minimum": 24, "maximum": 8760, "default": 24},
)


def _retention(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != STREAM:
        return
    minimum = settings(args, RETENTION_CONFIG)["minRetentionHours"]
    hours = retention_hours(args.props)
    if hours is not UNKNOWN and hours < minimum:
        report(
            f"retentionPeriod is {fmt(hours)} h; this stack requires at least {fmt(minimum)} h "
            "so a stalled consumer can catch up and records can be replayed"
        )


def _encryption(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != STREAM:
        return
    encryption = get(args.props, "encryptionType", default="NONE")
    if is_unknown(encryption):
        return
    if encryption != "KMS":
        report(f'encryptionType is "{encryption}"; set it to "KMS" (kmsKeyId "alias/aws/kinesis" or a CMK)')
    elif not get(args.props, "kmsKeyId"):
        report('encryptionType is "KMS" but kmsKeyId is empty; name a key, e.g. "alias/aws/kinesis"')


def _capacity_mode(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != STREAM:
        return
    mode = get(args.props, "streamModeDetails", "streamMode", default="PROVISIONED")
    shards = get(args.props, "shardCount")
    if mode == "ON_DEMAND" and shards is not None and not is_unknown(shards):
        report(
            f"streamMode is ON_DEMAND but shardCount is {fmt(number(shards))}; on-demand streams scale themselves, drop shardCount"
        )


kinesis_retention = ResourceValidationPolicy(
    name="kinesis-stream-retention",
    description="Kinesis streams retain records at least the stack's minimum retention.",
    validate=_retention,
    config_schema=RETENTION_CONFIG,
)

kinesis_encryption = ResourceValidationPolicy(
    name="kinesis-stream-encryption",
    description="Kinesis streams are encrypted at rest with KMS.",
    validate=_encryption,
)

kinesis_on_demand_shards = ResourceValidationPolicy(
    name="kinesis-on-demand-no-shard-count",
    description="An ON_DEMAND Kinesis stream declares no shard count.",
    validate=_capacity_mode,
)

POLICIES = [kinesis_retention, kinesis_encryption, kinesis_on_demand_shards]
