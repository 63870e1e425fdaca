"""MonitorHost: the EC2 instance that runs the event monitor (DESIGN §6), healed by an ASG of one.

No inbound port at all: a shell is `aws ssm start-session`. The program uploads the app bundle and
the wheelhouse (every dependency as a wheel, `make wheelhouse`); user data installs both offline in a
venv and starts the systemd unit that ships in the bundle. A replacement (new bundle, new AMI) starts
before the old host stops: the checkpoint is written conditionally, so two monitors for a minute are safe.
"""

from __future__ import annotations

import base64
import json
import shlex
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import yaml

from components.alarm_catalog import HOST, MONITOR
from components.buckets import private_bucket
from components.iam import Statement, service_role
from components.packaging import MONITOR_UNIT, monitor_bundle, pins_digest, wheelhouse_path
from components.settings import Settings
from components.stream import EventStream
from components.tables import Tables

ROOT = Path(__file__).resolve().parent.parent
PIP_VERSION = "26.3"
APP_DIR = "/opt/ngu-points/app"
WHEELHOUSE_DIR = "/opt/ngu-points/wheelhouse"
VENV_DIR = "/opt/ngu-points/venv"
CONFIG_DIR = "/etc/ngu-points"
UNIT_NAME = MONITOR_UNIT.name
SSM_CORE_POLICY = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"


def monitor_config(settings: Settings, monitor_table: str) -> dict[str, Any]:
    """/etc/ngu-points/monitor.yaml, DESIGN §10's format."""
    config: dict[str, Any] = {
        "stage": str(settings.stage),
        "chain_id": settings.monitor.chain_id,
        "rpc_url_parameter": settings.names.parameter("RPC_URL"),
        "confirmations": settings.monitor.confirmations,
        "contracts": [{"address": c.address, "start_block": c.start_block} for c in settings.monitor.contracts],
        "checkpoint_table": monitor_table,
        "sink": settings.monitor.sink,
        "publish_concurrency": settings.monitor.publish_concurrency,
    }
    if settings.monitor.sink == "dynamodb":
        config |= {
            "tokens_table": settings.table_name("tokens"),
            "points_table": settings.table_name("points"),
            "points_per_day": dict(settings.points.per_day),
        }
        if settings.points.default_per_day is not None:
            config["default_points_per_day"] = settings.points.default_per_day
    return config


def agent_config(settings: Settings) -> dict[str, Any]:
    """CloudWatch agent: host memory and root disk, by `Stage` only (what the alarms select)."""
    stage = {"Stage": str(settings.stage)}
    return {
        "agent": {"metrics_collection_interval": 60, "omit_hostname": True},
        "metrics": {
            "namespace": HOST,
            "aggregation_dimensions": [["Stage"]],
            "metrics_collected": {
                "mem": {"measurement": ["mem_used_percent"], "append_dimensions": stage},
                "disk": {
                    "measurement": ["used_percent"],
                    "resources": ["/"],
                    "drop_device": True,
                    "append_dimensions": stage,
                },
            },
        },
    }


def user_data(
    *, bundle_url: str, wheelhouse_url: str, region: str, config: dict[str, Any], agent: dict[str, Any]
) -> str:
    """The boot script: install the bundle in a venv from the wheelhouse only, write config, start the
    agent and the unit. No package index is reached: every wheel comes from the stack's bucket."""
    agent_path = "/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json"
    offline = f"--quiet --no-index --find-links {WHEELHOUSE_DIR}"
    return f"""#!/bin/bash
set -euxo pipefail
dnf install -y python3.12 amazon-cloudwatch-agent
id ngu-points >/dev/null 2>&1 || useradd --system --home-dir /opt/ngu-points --shell /sbin/nologin ngu-points
mkdir -p {APP_DIR} {CONFIG_DIR} {WHEELHOUSE_DIR}
aws s3 cp {shlex.quote(bundle_url)} /tmp/ngu-points-bundle.tar.gz --region {region}
aws s3 cp {shlex.quote(wheelhouse_url)} /tmp/ngu-points-wheelhouse.tar.gz --region {region}
tar -xzf /tmp/ngu-points-bundle.tar.gz -C {APP_DIR}
tar -xzf /tmp/ngu-points-wheelhouse.tar.gz -C {WHEELHOUSE_DIR}
python3.12 -m venv {VENV_DIR}
{VENV_DIR}/bin/pip install {offline} pip=={PIP_VERSION}
cd {APP_DIR} && {VENV_DIR}/bin/pip install {offline} --group monitor -c constraints.txt
cat > {CONFIG_DIR}/monitor.yaml <<'NGU_MONITOR_YAML'
{yaml.safe_dump(config, sort_keys=False).rstrip()}
NGU_MONITOR_YAML
cat > {CONFIG_DIR}/monitor.env <<'NGU_MONITOR_ENV'
AWS_REGION={region}
NGU_MONITOR_ENV
cat > {agent_path} <<'NGU_AGENT_JSON'
{json.dumps(agent, indent=2)}
NGU_AGENT_JSON
/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s -c file:{agent_path}
install -m 0644 {APP_DIR}/{MONITOR_UNIT} /etc/systemd/system/{UNIT_NAME}
systemctl daemon-reload
systemctl enable --now {UNIT_NAME}
"""


class MonitorHost(pulumi.ComponentResource):
    role: aws.iam.Role
    group: aws.autoscaling.Group
    security_group: aws.ec2.SecurityGroup
    artifacts: aws.s3.Bucket

    def __init__(
        self,
        name: str,
        settings: Settings,
        stream: EventStream,
        tables: Tables,
        quarantine: aws.sqs.Queue,
        rpc_url: pulumi.Output[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ngu:pipeline:MonitorHost", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)

        self.rpc_url_parameter = aws.ssm.Parameter(
            f"{name}-rpc-url",
            name=settings.names.parameter("RPC_URL"),
            type="SecureString",
            value=rpc_url,
            description="WebSocket RPC URL of the chain the event monitor reads",
            tags=settings.tags,
            opts=child,
        )
        self.artifacts = private_bucket(f"{name}-artifacts", "artifacts", settings, self, expire_after_days=None)
        bundle = monitor_bundle(ROOT, ROOT / "build" / "monitor-bundle.tar.gz")
        # The key carries the content hash: a new bundle is a new launch template version, which rolls the host.
        bundle_object = aws.s3.BucketObjectv2(
            f"{name}-bundle",
            bucket=self.artifacts.id,
            key=f"monitor/bundle-{bundle.sha256[:16]}.tar.gz",
            source=pulumi.FileAsset(str(bundle.path)),
            tags=settings.tags,
            opts=child,
        )

        # Built by `make wheelhouse` from the pins (the engine stops if it is missing); keyed by the pins.
        wheelhouse = wheelhouse_path(ROOT, settings.monitor.architecture)
        wheelhouse_object = aws.s3.BucketObjectv2(
            f"{name}-wheelhouse",
            bucket=self.artifacts.id,
            key=f"monitor/{wheelhouse.name.removesuffix('.tar.gz')}-{pins_digest(ROOT)[:16]}.tar.gz",
            source=pulumi.FileAsset(str(wheelhouse)),
            tags=settings.tags,
            opts=child,
        )

        self.role, _ = service_role(
            name,
            role_name=settings.monitor_role_name,
            description="Role for EC2 instance to send events to Kinesis",
            service="ec2.amazonaws.com",
            policies=self._statements(settings, stream, tables, quarantine, [bundle_object, wheelhouse_object]),
            tags=settings.tags,
            parent=self,
        )
        # Session Manager is the only way in (no SSH, no inbound port); AWS maintains its actions.
        aws.iam.RolePolicyAttachment(f"{name}-ssm-core", role=self.role.name, policy_arn=SSM_CORE_POLICY, opts=child)
        profile = aws.iam.InstanceProfile(
            f"{name}-profile", name=settings.monitor_role_name, role=self.role.name, tags=settings.tags, opts=child
        )

        subnets = [aws.ssm.get_parameter_output(name=p, opts=invoke).value for p in settings.network.subnet_parameters]
        vpc_id = aws.ec2.get_subnet_output(id=subnets[0], opts=invoke).vpc_id
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            name=settings.names.monitor_host,
            description="Event monitor: no ingress; HTTPS out to the RPC provider and AWS APIs",
            vpc_id=vpc_id,
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="tcp", from_port=443, to_port=443, cidr_blocks=["0.0.0.0/0"], description="HTTPS/WSS"
                )
            ],
            tags=settings.tags,
            opts=child,
        )
        script = pulumi.Output.all(
            self.artifacts.bucket, bundle_object.key, wheelhouse_object.key, tables.monitor.name
        ).apply(
            lambda args: user_data(
                bundle_url=f"s3://{args[0]}/{args[1]}",
                wheelhouse_url=f"s3://{args[0]}/{args[2]}",
                region=settings.region,
                config=monitor_config(settings, args[3]),
                agent=agent_config(settings),
            )
        )
        template = aws.ec2.LaunchTemplate(
            f"{name}-template",
            name=settings.names.monitor_host,
            description="NGU points event monitor",
            image_id=settings.monitor.ami_id,
            instance_type=settings.monitor.instance_type,
            iam_instance_profile=aws.ec2.LaunchTemplateIamInstanceProfileArgs(arn=profile.arn),
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1
            ),
            network_interfaces=[
                aws.ec2.LaunchTemplateNetworkInterfaceArgs(
                    device_index=0,
                    associate_public_ip_address="false",
                    security_groups=[self.security_group.id],
                    delete_on_termination="true",
                )
            ],
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/xvda",
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=settings.monitor.volume_gb,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            user_data=script.apply(lambda text: base64.b64encode(text.encode()).decode()),
            update_default_version=True,
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=settings.tags)
                for kind in ("instance", "volume")
            ],
            tags=settings.tags,
            opts=child,
        )
        self.group = aws.autoscaling.Group(
            f"{name}-group",
            name=settings.names.monitor_host,
            # One monitor; max 2 leaves room for a replacement that starts before the old host stops.
            min_size=1,
            max_size=2,
            desired_capacity=1,
            vpc_zone_identifiers=subnets,
            health_check_type="EC2",
            health_check_grace_period=300,
            launch_template=aws.autoscaling.GroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)
            ),
            # The same for replacements of an unhealthy host (health checks), not only for refreshes.
            instance_maintenance_policy=aws.autoscaling.GroupInstanceMaintenancePolicyArgs(
                min_healthy_percentage=100, max_healthy_percentage=200
            ),
            # Launch before terminate: the new host runs (and resumes from the checkpoint, which is
            # written conditionally and never moves back) before the old one stops, so ingestion never
            # pauses. 100% of one must stay healthy; up to 200% may run meanwhile.
            instance_refresh=aws.autoscaling.GroupInstanceRefreshArgs(
                strategy="Rolling",
                preferences=aws.autoscaling.GroupInstanceRefreshPreferencesArgs(
                    min_healthy_percentage=100, max_healthy_percentage=200
                ),
            ),
            tags=[
                aws.autoscaling.GroupTagArgs(key=key, value=value, propagate_at_launch=True)
                for key, value in {**settings.tags, "Name": settings.names.monitor_host}.items()
            ],
            opts=child,
        )
        self.register_outputs(
            {"roleArn": self.role.arn, "groupName": self.group.name, "securityGroupId": self.security_group.id}
        )

    def _statements(
        self,
        settings: Settings,
        stream: EventStream,
        tables: Tables,
        quarantine: aws.sqs.Queue,
        artifacts: list[aws.s3.BucketObjectv2],
    ) -> dict[str, list[Statement]]:
        parameters = pulumi.Output.concat(
            "arn:aws:ssm:",
            settings.region,
            ":",
            aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id,
            f":parameter{settings.ssm_prefix}/*",
        )
        statements: dict[str, list[Statement]] = {
            "KinesisAccess": [
                Statement(
                    "PublishEvents",
                    [
                        "kinesis:DescribeStream",
                        "kinesis:DescribeStreamSummary",
                        "kinesis:PutRecord",
                        "kinesis:PutRecords",
                    ],
                    [stream.stream.arn],
                ),
                Statement("EncryptRecords", ["kms:GenerateDataKey"], [stream.key.arn]),
            ],
            "SSMAccess": [
                Statement(
                    "ReadStageParameters",
                    ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
                    [parameters],
                )
            ],
            "StateTableAccess": [
                Statement(
                    "Checkpoint",
                    # The monitor reads and writes whole items (checkpoint, reorg records), nothing else.
                    ["dynamodb:GetItem", "dynamodb:PutItem"],
                    [tables.monitor.arn],
                )
            ],
            "MetricsAccess": [
                # PutMetricData has no resource type; the namespace condition is the narrowing.
                Statement(
                    "PutMonitorMetrics",
                    ["cloudwatch:PutMetricData"],
                    ["*"],
                    {"StringEquals": {"cloudwatch:namespace": [MONITOR, HOST]}},
                )
            ],
            "BundleAccess": [
                Statement(
                    "ReadBundle",
                    ["s3:GetObject"],
                    [pulumi.Output.concat(self.artifacts.arn, "/", artifact.key) for artifact in artifacts],
                )
            ],
        }
        if settings.monitor.sink == "dynamodb":
            # The legacy direct path (a rollback by config) writes the ledger itself.
            # It sets an event that can never apply aside in the consumer's quarantine queue (SQS-managed
            # encryption: no key to grant); GetQueueAttributes is its start-up check of the URL.
            statements["DirectSinkAccess"] = [
                tables.ledger_statement(),
                Statement("QuarantineInconsistent", ["sqs:GetQueueAttributes", "sqs:SendMessage"], [quarantine.arn]),
            ]
        return statements
