"""Which of the names the stack creates are already taken in the account: each would make the first
`up` fail half-way (ResourceInUse, EntityAlreadyExists, ...), or, for a dashboard, overwrite it.

Every name comes from app/names.py, the module the stack's components take them from.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from app.names import StageNames

# The codes AWS answers when a name is free.
_MISSING = (
    "ResourceNotFound",
    "NotFound",
    "NoSuchEntity",
    "NonExistentQueue",
    "QueueDoesNotExist",
    "NoSuchBucket",
    "404",
)


def _exists(probe: Callable[[], Any]) -> bool:
    try:
        return bool(probe())
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if any(marker in code for marker in _MISSING):
            return False
        raise


def taken_names(client: Callable[[str], Any], names: StageNames, region: str, account: str) -> list[str]:
    """'<kind> <name>' for every name the stack would create that already exists."""
    kinesis, functions, iam = client("kinesis"), client("lambda"), client("iam")
    sqs, sns, logs, cloudwatch = client("sqs"), client("sns"), client("logs"), client("cloudwatch")
    s3, ec2, autoscaling = client("s3"), client("ec2"), client("autoscaling")
    log_group = f"/aws/lambda/{names.function}"
    aliases = {
        a["AliasName"] for page in client("kms").get_paginator("list_aliases").paginate() for a in page["Aliases"]
    }
    probes: list[tuple[str, str, Callable[[], Any]]] = [
        ("stream", names.stream, lambda: kinesis.describe_stream_summary(StreamName=names.stream)),
        ("function", names.function, lambda: functions.get_function(FunctionName=names.function)),
        ("queue", names.quarantine_queue, lambda: sqs.get_queue_url(QueueName=names.quarantine_queue)),
        ("dashboard", names.dashboard, lambda: cloudwatch.get_dashboard(DashboardName=names.dashboard)),
        (
            "log group",
            log_group,
            lambda: any(
                g["logGroupName"] == log_group
                for g in logs.describe_log_groups(logGroupNamePrefix=log_group)["logGroups"]
            ),
        ),
        (
            "launch template",
            names.monitor_host,
            lambda: ec2.describe_launch_templates(LaunchTemplateNames=[names.monitor_host])["LaunchTemplates"],
        ),
        (
            "security group",
            names.monitor_host,
            lambda: ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [names.monitor_host]}])[
                "SecurityGroups"
            ],
        ),
        (
            "auto scaling group",
            names.monitor_host,
            lambda: autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[names.monitor_host])[
                "AutoScalingGroups"
            ],
        ),
        (
            "instance profile",
            names.monitor_role,
            lambda: iam.get_instance_profile(InstanceProfileName=names.monitor_role),
        ),
    ]
    for role in (names.processor_role, names.monitor_role, names.chatbot_role):
        probes.append(("role", role, lambda role=role: iam.get_role(RoleName=role)))
    for topic in (names.page_topic, names.notify_topic):
        arn = f"arn:aws:sns:{region}:{account}:{topic}"
        probes.append(("topic", topic, lambda arn=arn: sns.get_topic_attributes(TopicArn=arn)))
    for purpose in ("failed-batches", "artifacts"):
        bucket = names.bucket(purpose, account)
        probes.append(("bucket", bucket, lambda bucket=bucket: s3.head_bucket(Bucket=bucket)))
    taken = [
        f"kms alias {alias}" for alias in (names.key_alias("events"), names.key_alias("alarms")) if alias in aliases
    ]
    taken += [f"{kind} {name}" for kind, name, probe in probes if _exists(probe)]
    return taken
