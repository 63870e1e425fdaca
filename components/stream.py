"""EventStream: the Kinesis stream between the monitor and the consumer (DESIGN §1, §7)."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.kms import customer_key
from components.settings import Settings


class EventStream(pulumi.ComponentResource):
    stream: aws.kinesis.Stream
    key: aws.kms.Key
    name_parameter: aws.ssm.Parameter

    def __init__(self, name: str, settings: Settings, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ngu:pipeline:EventStream", name, None, opts)
        self.key = customer_key(f"{name}-key", f"Encrypts the Kinesis stream {settings.stream_name}", settings, self)
        self.stream = aws.kinesis.Stream(
            f"{name}-stream",
            name=settings.stream_name,
            retention_period=settings.stream.retention_hours,
            stream_mode_details=aws.kinesis.StreamStreamModeDetailsArgs(stream_mode=settings.stream.mode),
            shard_count=settings.stream.shard_count,
            encryption_type="KMS",
            kms_key_id=self.key.arn,
            tags=settings.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # The monitor finds its stream here (DESIGN §6), as the seed's runbook set it by hand.
        self.name_parameter = aws.ssm.Parameter(
            f"{name}-name-parameter",
            name=f"{settings.ssm_prefix}/KINESIS_STREAM_NAME",
            type="String",
            value=self.stream.name,
            description="Kinesis stream the event monitor publishes to",
            tags=settings.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"streamArn": self.stream.arn, "streamName": self.stream.name})
