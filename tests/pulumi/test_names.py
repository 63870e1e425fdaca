"""Physical names: prod and staging can share one account and region, so no account- or region-unique
name of one stage may equal the other's (the KMS aliases once did), and the operator's names are
published under the stage's SSM prefix with exactly the keys app/names.py lists."""

from __future__ import annotations

import pytest

from app.names import OPERATOR_PARAMETERS, STREAM_PARAMETER, StageNames
from tests.pulumi.conftest import STACKS, one
from tools.record_stack import RecordedStack

# Every resource type that claims a name in the account (or region), and the input that holds it.
PHYSICAL = {
    "aws:kms/alias:Alias": "name",
    "aws:iam/role:Role": "name",
    "aws:iam/instanceProfile:InstanceProfile": "name",
    "aws:ssm/parameter:Parameter": "name",
    "aws:s3/bucket:Bucket": "bucket",
    "aws:dynamodb/table:Table": "name",
    "aws:kinesis/stream:Stream": "name",
    "aws:sqs/queue:Queue": "name",
    "aws:sns/topic:Topic": "name",
    "aws:cloudwatch/logGroup:LogGroup": "name",
    "aws:cloudwatch/metricAlarm:MetricAlarm": "name",
    "aws:cloudwatch/dashboard:Dashboard": "dashboardName",
    "aws:ec2/launchTemplate:LaunchTemplate": "name",
    "aws:ec2/securityGroup:SecurityGroup": "name",
    "aws:autoscaling/group:Group": "name",
    "aws:lambda/function:Function": "name",
    "aws:chatbot/slackChannelConfiguration:SlackChannelConfiguration": "configurationName",
}
# Names unique only inside their parent, which is itself stage-named: (type, name input, parent input).
SCOPED = {
    "aws:iam/rolePolicy:RolePolicy": ("name", "role"),
    "aws:cloudwatch/logMetricFilter:LogMetricFilter": ("name", "logGroupName"),
}
# Children that configure a bucket (or put an object in it) and claim no name of their own.
NAMELESS_PREFIXES = ("aws:s3/bucket", "aws:iam/rolePolicyAttachment", "aws:sns/topicSubscription")


def physical_names(stack: RecordedStack) -> set[tuple[str, str]]:
    names: set[tuple[str, str]] = set()
    for resource in stack.resources:
        if resource.type in PHYSICAL:
            names.add((resource.type, resource.inputs[PHYSICAL[resource.type]]))
        elif resource.type in SCOPED:
            name, parent = SCOPED[resource.type]
            names.add((resource.type, f"{resource.inputs[parent]}/{resource.inputs[name]}"))
    return names


def test_every_named_resource_type_is_checked(recorded: dict[str, RecordedStack]) -> None:
    for stack in recorded.values():
        for resource in stack.resources:
            named = {"name", "bucket", "dashboardName", "configurationName"} & set(resource.inputs)
            if named and resource.type not in PHYSICAL and resource.type not in SCOPED:
                assert resource.type.startswith(NAMELESS_PREFIXES) and resource.type != "aws:s3/bucket:Bucket", (
                    f"{resource.type} ({resource.name}) has a name: add it to PHYSICAL or SCOPED"
                )


def test_prod_and_staging_share_no_physical_name(prod: RecordedStack, staging: RecordedStack) -> None:
    prod_names, staging_names = physical_names(prod), physical_names(staging)
    assert {t for t, _ in prod_names} == set(PHYSICAL) | set(SCOPED)
    assert len(prod_names) == len(staging_names) > 70
    assert prod_names.isdisjoint(staging_names), sorted(prod_names & staging_names)


@pytest.mark.parametrize("stack", STACKS)
def test_every_physical_name_carries_its_stage(recorded: dict[str, RecordedStack], stack: str) -> None:
    for type_, name in physical_names(recorded[stack]):
        assert stack in name, (type_, name)


def test_kms_aliases_are_named_by_stage(prod: RecordedStack, staging: RecordedStack) -> None:
    for stack, stage in ((prod, "prod"), (staging, "staging")):
        aliases = {a.inputs["name"] for a in stack.of_type("aws:kms/alias:Alias")}
        assert aliases == {StageNames(stage).key_alias("events"), StageNames(stage).key_alias("alarms")}
        assert aliases == {f"alias/ngu-points-{stage}-events", f"alias/ngu-points-{stage}-alarms"}


@pytest.mark.parametrize("stack", STACKS)
def test_operator_parameters_name_every_resource_an_operator_needs(
    recorded: dict[str, RecordedStack], stack: str
) -> None:
    resources = recorded[stack]
    names = StageNames(stack)
    parameters = {
        p.inputs["name"]: p for p in resources.of_type("aws:ssm/parameter:Parameter") if p.name.startswith("names-")
    }
    assert set(parameters) == {names.parameter(key) for key in OPERATOR_PARAMETERS}
    value = {key: parameters[names.parameter(key)].inputs["value"] for key in OPERATOR_PARAMETERS}
    assert all(parameters[names.parameter(key)].inputs["type"] == "String" for key in OPERATOR_PARAMETERS)
    topics = {t.inputs["name"]: t for t in resources.of_type("aws:sns/topic:Topic")}
    assert value == {
        "KINESIS_STREAM_NAME": names.stream,
        "TOKENS_TABLE": names.tokens_table,
        "POINTS_TABLE": names.points_table,
        "MONITOR_TABLE": names.monitor_table,
        "PROCESSOR_FUNCTION_NAME": names.function,
        "EVENT_SOURCE_MAPPING_UUID": resources.outputs["EventSourceMappingUuid"],
        "QUARANTINE_QUEUE_URL": f"https://sqs.us-east-1.amazonaws.com/123456789012/{names.quarantine_queue}",
        "FAILED_BATCHES_BUCKET": names.failed_batches_bucket("123456789012"),
        "PAGE_TOPIC_ARN": f"arn:aws:sns:us-east-1:123456789012:{names.page_topic}",
        "NOTIFY_TOPIC_ARN": f"arn:aws:sns:us-east-1:123456789012:{names.notify_topic}",
        "DASHBOARD_NAME": names.dashboard,
    }
    assert set(topics) == {names.page_topic, names.notify_topic}
    assert (
        value["EVENT_SOURCE_MAPPING_UUID"]
        == one(resources, "aws:lambda/eventSourceMapping:EventSourceMapping").name + "-uuid"
    )


def test_prod_adopts_the_seeds_stream_parameter_and_staging_creates_it(
    prod: RecordedStack, staging: RecordedStack
) -> None:
    def imports(stack: RecordedStack) -> dict[str, str | None]:
        return {p.inputs["name"]: p.import_id for p in stack.of_type("aws:ssm/parameter:Parameter")}

    stream_parameter = StageNames("prod").parameter(STREAM_PARAMETER)
    assert {name for name, imported in imports(prod).items() if imported} == {stream_parameter}
    assert imports(prod)[stream_parameter] == stream_parameter
    assert not any(imports(staging).values())
