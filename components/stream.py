"""EventStream: the Kinesis stream between the monitor and the consumer (DESIGN §1, §7)."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.kms import customer_key
from components.settings import Settings


class EventStream(pulumi.ComponentResource):
    stream: aws.kinesis.Stream
    key: aws.kms.Key

    def __init__(self, name: str, settings: Settings, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ngu:pipeline:EventStream", name, None, opts)
        self.key = customer_key(
            f"{name}-key",
            settings.names.key_alias("events"),
            f"Encrypts the Kinesis stream {settings.stream_name}",
            settings,
            self,
        )
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
        self.register_outputs({"streamArn": self.stream.arn, "streamName": self.stream.name})
