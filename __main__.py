"""The stack program: read settings once, wire the components, export what operators and other stacks use."""

import pulumi
import pulumi_aws as aws

from app import names
from components import settings as stack_settings
from components.alarms import AlarmSet, AlarmTargets
from components.consumer import EventConsumer
from components.dashboard import Dashboard
from components.monitor_host import MonitorHost
from components.operator_parameters import OperatorParameters
from components.stream import EventStream
from components.tables import Tables

settings, secrets = stack_settings.load()

# Every resource is tagged by this provider; components also pass the tags explicitly, because a
# policy pack sees only a resource's own inputs.
provider = aws.Provider(
    f"{settings.prefix}-aws",
    region=settings.region,
    default_tags=aws.ProviderDefaultTagsArgs(tags=settings.tags),
)
opts = pulumi.ResourceOptions(providers=[provider])

tables = Tables("tables", settings, opts)
stream = EventStream("events", settings, opts)
consumer = EventConsumer("processor", settings, stream, tables, opts)
monitor = MonitorHost("monitor", settings, stream, tables, consumer.quarantine, secrets.rpc_url, opts)
targets = AlarmTargets(
    stream=stream.stream.name,
    function=consumer.function.name,
    mapping=consumer.mapping.uuid,
    queue=consumer.quarantine.name,
    tokens_table=tables.tokens.name,
    points_table=tables.points.name,
    stage=str(settings.stage),
)
alarms = AlarmSet("alarms", settings, targets, secrets.pagerduty_endpoint, opts)
dashboard = Dashboard("dashboard", settings, targets, [a.arn for a in alarms.alarms.values()], opts)
# What the operator commands read (app/names.py); the monitor reads KINESIS_STREAM_NAME (DESIGN §6).
OperatorParameters(
    "names",
    settings,
    {
        names.STREAM_PARAMETER: stream.stream.name,
        names.TOKENS_TABLE_PARAMETER: tables.tokens.name,
        names.POINTS_TABLE_PARAMETER: tables.points.name,
        names.MONITOR_TABLE_PARAMETER: tables.monitor.name,
        names.FUNCTION_PARAMETER: consumer.function.name,
        names.MAPPING_PARAMETER: consumer.mapping.uuid,
        names.QUARANTINE_PARAMETER: consumer.quarantine.url,
        names.FAILED_BATCHES_PARAMETER: consumer.failed_batches.bucket,
        names.PAGE_TOPIC_PARAMETER: alarms.page.arn,
        names.NOTIFY_TOPIC_PARAMETER: alarms.notify.arn,
        names.DASHBOARD_PARAMETER: dashboard.dashboard.dashboard_name,
    },
    opts,
)

# The seed's CloudFormation outputs.
pulumi.export("KinesisStreamArn", stream.stream.arn)
pulumi.export("EventProcessorRoleArn", consumer.role.arn)
pulumi.export("EventMonitorRoleArn", monitor.role.arn)
# And what an operator reaches for next.
pulumi.export("KinesisStreamName", stream.stream.name)
pulumi.export("ProcessorFunctionName", consumer.function.name)
pulumi.export("EventSourceMappingUuid", consumer.mapping.uuid)
pulumi.export("TokensTableName", tables.tokens.name)
pulumi.export("PointsTableName", tables.points.name)
pulumi.export("MonitorTableName", tables.monitor.name)
pulumi.export("QuarantineQueueUrl", consumer.quarantine.url)
pulumi.export("FailedBatchesBucket", consumer.failed_batches.bucket)
pulumi.export("MonitorAutoScalingGroup", monitor.group.name)
pulumi.export("PageTopicArn", alarms.page.arn)
pulumi.export("NotifyTopicArn", alarms.notify.arn)
pulumi.export("DashboardUrl", dashboard.url)
