"""Every physical name of one stage, in one place: the stack declares these, the local stack creates
them, and the operator commands find them (through the SSM parameters below, or directly).

Pure and dependency-free: `components/` imports it too, so it must never import boto3, web3 or pulumi.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PROJECT = "ngu-points-event-processor"
SSM_ROOT = "/ngu-points-system-v2"
_STAGE = re.compile(r"^[a-z][a-z0-9]{0,15}$")

# The SSM parameters under /ngu-points-system-v2/{stage}/ that name what an operator needs. The stack
# writes each (KINESIS_STREAM_NAME is the seed's); the local stack writes the same; commands read them.
STREAM_PARAMETER = "KINESIS_STREAM_NAME"
TOKENS_TABLE_PARAMETER = "TOKENS_TABLE"
POINTS_TABLE_PARAMETER = "POINTS_TABLE"
MONITOR_TABLE_PARAMETER = "MONITOR_TABLE"
FUNCTION_PARAMETER = "PROCESSOR_FUNCTION_NAME"
MAPPING_PARAMETER = "EVENT_SOURCE_MAPPING_UUID"
QUARANTINE_PARAMETER = "QUARANTINE_QUEUE_URL"
FAILED_BATCHES_PARAMETER = "FAILED_BATCHES_BUCKET"
PAGE_TOPIC_PARAMETER = "PAGE_TOPIC_ARN"
NOTIFY_TOPIC_PARAMETER = "NOTIFY_TOPIC_ARN"
DASHBOARD_PARAMETER = "DASHBOARD_NAME"
OPERATOR_PARAMETERS = (
    STREAM_PARAMETER,
    TOKENS_TABLE_PARAMETER,
    POINTS_TABLE_PARAMETER,
    MONITOR_TABLE_PARAMETER,
    FUNCTION_PARAMETER,
    MAPPING_PARAMETER,
    QUARANTINE_PARAMETER,
    FAILED_BATCHES_PARAMETER,
    PAGE_TOPIC_PARAMETER,
    NOTIFY_TOPIC_PARAMETER,
    DASHBOARD_PARAMETER,
)


@dataclass(frozen=True)
class StageNames:
    """The names of one stage (`prod`, `staging`, `dev`, or `local` for the local stack)."""

    stage: str

    def __post_init__(self) -> None:
        if not _STAGE.fullmatch(self.stage):
            raise ValueError(f"stage: expected a short lowercase name such as prod, got {self.stage!r}")

    # The seed fixed these (DESIGN §7): existing dashboards and the monitor find them by name.
    @property
    def stream(self) -> str:
        return f"ngu-points-core-v5-events-{self.stage}-v5"

    def table(self, kind: str) -> str:
        """`tokens`, `points` or `monitor`."""
        return f"ngu-points-core-v5-{kind}-{self.stage}"

    @property
    def tokens_table(self) -> str:
        return self.table("tokens")

    @property
    def points_table(self) -> str:
        return self.table("points")

    @property
    def monitor_table(self) -> str:
        return self.table("monitor")

    @property
    def function(self) -> str:
        return f"{PROJECT}-{self.stage}-processKinesisEvents"

    @property
    def processor_role(self) -> str:
        return f"ngu-points-event-processor-{self.stage}"

    @property
    def monitor_role(self) -> str:
        return f"ngu-points-event-monitor-{self.stage}"

    @property
    def ssm_prefix(self) -> str:
        return f"{SSM_ROOT}/{self.stage}"

    def parameter(self, key: str) -> str:
        """The full SSM name of one of OPERATOR_PARAMETERS (or RPC_URL)."""
        return f"{self.ssm_prefix}/{key}"

    # Names the seed did not fix carry this prefix, so that no two stages share one.
    @property
    def prefix(self) -> str:
        return f"ngu-points-{self.stage}"

    @property
    def quarantine_queue(self) -> str:
        return f"{self.prefix}-quarantine"

    def failed_batches_bucket(self, account: str) -> str:
        # Bucket names are global: the account keeps them unique.
        return self.bucket("failed-batches", account)

    @property
    def dashboard(self) -> str:
        return f"{self.prefix}-pipeline"

    # Names unique per account and region carry the stage too, so that stages can share an account.
    def key_alias(self, purpose: str) -> str:
        """A KMS alias (`events`, `alarms`): aliases are unique per account and region."""
        return f"alias/{self.prefix}-{purpose}"

    def bucket(self, purpose: str, account: str) -> str:
        return f"{self.prefix}-{purpose}-{account}"

    @property
    def page_topic(self) -> str:
        return f"{self.prefix}-page"

    @property
    def notify_topic(self) -> str:
        return f"{self.prefix}-notify"

    @property
    def legacy_alarm_topic(self) -> str:
        """The seed's alarm topic, created by hand before this stack (docs/deploy.md migrates it)."""
        return f"ngu-points-alarms-{self.stage}"

    @property
    def monitor_host(self) -> str:
        """The monitor's security group, launch template and Auto Scaling group."""
        return f"{self.prefix}-monitor"

    @property
    def chatbot_role(self) -> str:
        return f"{self.prefix}-chatbot"

    @property
    def chatbot_configuration(self) -> str:
        return f"{self.prefix}-alerts"

    def alarm(self, name: str, *, seed_name: bool = False) -> str:
        """An alarm's name: the seed's alarms keep their stream-prefixed names (DESIGN §7)."""
        return f"{self.stream}-{name}" if seed_name else f"{self.prefix}-{name}"
