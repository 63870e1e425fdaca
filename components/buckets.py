"""Private S3 buckets: encrypted, public access blocked, TLS only, objects expiring on a lifecycle."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.iam import Statement, document
from components.settings import Settings


def private_bucket(
    name: str, purpose: str, settings: Settings, parent: pulumi.Resource, *, expire_after_days: int | None
) -> aws.s3.Bucket:
    """A bucket named `{prefix}-{purpose}-{account}` (names are global; the account keeps them unique).

    `expire_after_days=None` keeps objects (artifacts a launch template still points at).
    """
    account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=parent)).account_id
    child = pulumi.ResourceOptions(parent=parent)
    bucket = aws.s3.Bucket(
        name,
        bucket=account.apply(lambda account_id: settings.names.bucket(purpose, account_id)),
        tags=settings.tags,
        opts=child,
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-encryption",
        bucket=bucket.id,
        rules=[
            aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="AES256"
                ),
            )
        ],
        opts=child,
    )
    aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access-block",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=child,
    )
    aws.s3.BucketOwnershipControls(
        f"{name}-ownership",
        bucket=bucket.id,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
        opts=child,
    )
    aws.s3.BucketPolicy(
        f"{name}-tls-only",
        bucket=bucket.id,
        policy=document(
            Statement(
                sid="DenyInsecureTransport",
                effect="Deny",
                principals={"AWS": "*"},
                actions=["s3:*"],
                resources=[bucket.arn, pulumi.Output.concat(bucket.arn, "/*")],
                conditions={"Bool": {"aws:SecureTransport": "false"}},
            )
        ),
        opts=child,
    )
    aws.s3.BucketLifecycleConfiguration(
        f"{name}-lifecycle",
        bucket=bucket.id,
        rules=[
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire" if expire_after_days else "abort-incomplete-uploads",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=expire_after_days)
                if expire_after_days
                else None,
                abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=1
                ),
            )
        ],
        opts=child,
    )
    return bucket
