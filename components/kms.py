"""Customer-managed KMS keys: one per purpose, rotated, with a policy that names who may use it."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.iam import Statement, document
from components.settings import Settings

# The account keeps administering the key (and delegating use through IAM policies); without
# this statement a key can become unmanageable. Listed, not `kms:*`.
_ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:RevokeGrant",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)


def customer_key(
    name: str,
    alias: str,
    description: str,
    settings: Settings,
    parent: pulumi.Resource,
    *service_statements: Statement,
) -> aws.kms.Key:
    """A rotated key named `alias` whose policy lets the account administer it plus the given service statements."""
    account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=parent)).account_id
    # In a key policy, Resource "*" means "this key".
    admin = Statement(
        sid="AccountAdministers",
        actions=_ADMIN_ACTIONS,
        resources=["*"],
        principals={"AWS": pulumi.Output.concat("arn:aws:iam::", account, ":root")},
    )
    key = aws.kms.Key(
        name,
        description=description,
        enable_key_rotation=True,
        deletion_window_in_days=30,
        policy=document(admin, *service_statements),
        tags=settings.tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    aws.kms.Alias(
        f"{name}-alias",
        name=alias,
        target_key_id=key.key_id,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return key
