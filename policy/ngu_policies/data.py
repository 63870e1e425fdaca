"""Where data rests: tables recoverable and encrypted, queues, topics and buckets encrypted, buckets private."""

from pulumi_policy import (
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from .props import elements, get, is_unknown
from .stack import depends_on, of_type

TABLE = "aws:dynamodb/table:Table"
QUEUE = "aws:sqs/queue:Queue"
TOPIC = "aws:sns/topic:Topic"
BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
BUCKET_ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
_PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def _table_recovery(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != TABLE:
        return
    pitr = get(args.props, "pointInTimeRecovery", "enabled", default=False)
    if not is_unknown(pitr) and pitr is not True:
        report(
            "pointInTimeRecovery.enabled is not true: a bad deploy or a bug could not be rolled back to a point in time"
        )
    sse = get(args.props, "serverSideEncryption", "enabled", default=False)
    if not is_unknown(sse) and sse is not True:
        report(
            "serverSideEncryption.enabled is not true: the table is encrypted only with an AWS-owned key nobody can audit"
        )


def _queue_topic_encryption(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == QUEUE:
        managed = get(args.props, "sqsManagedSseEnabled")
        key = get(args.props, "kmsMasterKeyId")
        if managed is not True and not key and not is_unknown(managed):
            report("neither sqsManagedSseEnabled nor kmsMasterKeyId is set: messages would rest unencrypted")
    elif args.resource_type == TOPIC and not get(args.props, "kmsMasterKeyId"):
        report('kmsMasterKeyId is not set: messages would rest unencrypted (use "alias/aws/sns" or a CMK)')


def _bucket_name(bucket: PolicyResource):
    return get(bucket.props, "bucket")


def _configures(setting: PolicyResource, bucket: PolicyResource) -> bool:
    """Whether a bucket-level setting applies to `bucket`: by name, or by taking the bucket's id (an
    output: unknown during preview, and under mocks not equal to the name)."""
    target = get(setting.props, "bucket")
    name = _bucket_name(bucket)
    return (isinstance(name, str) and target == name) or depends_on(setting, bucket)


def _bucket_label(bucket: PolicyResource) -> str:
    name = _bucket_name(bucket)
    return name if isinstance(name, str) else bucket.name


def _bucket_encryption(args: StackValidationArgs, report: ReportViolation) -> None:
    settings = of_type(args.resources, *BUCKET_ENCRYPTION)
    for bucket in of_type(args.resources, *BUCKETS):
        inline = elements(get(bucket.props, "serverSideEncryptionConfiguration"))
        if inline:
            continue
        if not any(_configures(setting, bucket) for setting in settings):
            report(
                f"bucket {_bucket_label(bucket)} has no BucketServerSideEncryptionConfiguration; declare one (SSE-KMS or AES256)",
                bucket.urn,
            )


def _bucket_public_access(args: StackValidationArgs, report: ReportViolation) -> None:
    blocks = of_type(args.resources, PUBLIC_ACCESS_BLOCK)
    for block in blocks:
        open_flags = [f for f in _PUBLIC_ACCESS_FLAGS if get(block.props, f, default=False) is False]
        if open_flags:
            report(f"public access block leaves {', '.join(open_flags)} off; set all four to true", block.urn)
    for bucket in of_type(args.resources, *BUCKETS):
        if not any(_configures(block, bucket) for block in blocks):
            report(
                f"bucket {_bucket_label(bucket)} has no BucketPublicAccessBlock; declare one with all four flags true",
                bucket.urn,
            )


dynamodb_recovery = ResourceValidationPolicy(
    name="dynamodb-pitr-and-sse",
    description="DynamoDB tables have point-in-time recovery and server-side encryption enabled.",
    validate=_table_recovery,
)

queue_topic_encryption = ResourceValidationPolicy(
    name="sqs-sns-encryption",
    description="SQS queues and SNS topics are encrypted at rest.",
    validate=_queue_topic_encryption,
)

s3_encryption = StackValidationPolicy(
    name="s3-bucket-encryption",
    description="Every S3 bucket declares server-side encryption.",
    validate=_bucket_encryption,
)

s3_public_access = StackValidationPolicy(
    name="s3-public-access-blocked",
    description="Every S3 bucket blocks public access (all four public access block flags).",
    validate=_bucket_public_access,
)

POLICIES = [dynamodb_recovery, queue_topic_encryption, s3_encryption, s3_public_access]
