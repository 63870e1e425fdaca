"""How the components declare their resources: structure, tags, protection, the tables, the stream,
the consumer's mapping and failure paths, and the monitor host."""

from __future__ import annotations

import base64
import importlib
import inspect
import json

import pytest
import yaml

from app.store import monitor_table_definition, points_table_definition, tokens_table_definition
from components.packaging import wheelhouse_path
from tests.pulumi.conftest import STACKS, one, project_config
from tools.record_stack import ROOT, RecordedResource, RecordedStack

COMPONENTS = {"Tables", "EventStream", "EventConsumer", "MonitorHost", "AlarmSet", "Dashboard", "OperatorParameters"}


def _takes_tags(type_: str) -> bool:
    package, module_path, _ = type_.split(":")
    if package != "aws":
        return False
    module = module_path.split("/")[0]
    module = {"index": "", "lambda": "lambda_"}.get(module, module)
    cls = getattr(importlib.import_module(f"pulumi_aws.{module}".rstrip(".")), type_.rsplit(":", 1)[1])
    return "tags" in inspect.signature(cls._internal_init).parameters


def _tags(resource: RecordedResource) -> dict[str, str]:
    tags = resource.inputs.get("tags") or {}
    if isinstance(tags, list):  # the Auto Scaling group's tag blocks
        return {t["key"]: t["value"] for t in tags}
    return tags


@pytest.mark.parametrize("stack", STACKS)
def test_every_resource_belongs_to_a_named_component(recorded: dict[str, RecordedStack], stack: str) -> None:
    resources = recorded[stack].resources
    components = {r.urn: r for r in resources if r.type.startswith("ngu:pipeline:")}
    assert {r.type.rsplit(":", 1)[1] for r in components.values()} == COMPONENTS
    for resource in resources:
        if resource.type.startswith(("ngu:", "pulumi:providers:")):
            continue
        parent = components.get(resource.parent or "")
        assert parent is not None, f"{resource.name} is not inside a component"
        assert resource.name.startswith(f"{parent.name}-"), resource.name
        assert resource.provider and "pulumi:providers:aws::" in resource.provider, resource.name


@pytest.mark.parametrize("stack", STACKS)
def test_every_taggable_resource_carries_environment_and_service(
    recorded: dict[str, RecordedStack], stack: str
) -> None:
    taggable = [r for r in recorded[stack].resources if _takes_tags(r.type)]
    assert len(taggable) > 40
    for resource in taggable:
        assert _tags(resource).items() >= {"Environment": stack, "Service": "ngu-points-event-processor"}.items(), (
            resource.name
        )


def test_provider_tags_every_resource_by_default(prod: RecordedStack) -> None:
    provider = one(prod, "pulumi:providers:aws")
    assert json.loads(provider.inputs["defaultTags"])["tags"] == {
        "Environment": "prod",
        "Service": "ngu-points-event-processor",
    }
    assert provider.inputs["region"] == "us-east-1"


def _tables(stack: RecordedStack) -> dict[str, RecordedResource]:
    return {t.inputs["name"]: t for t in stack.of_type("aws:dynamodb/table:Table")}


@pytest.mark.parametrize(
    "definition", [tokens_table_definition, points_table_definition, monitor_table_definition], ids=lambda f: f.__name__
)
@pytest.mark.parametrize("stack", STACKS)
def test_tables_have_the_keys_the_store_uses(recorded: dict[str, RecordedStack], stack: str, definition) -> None:
    expected = definition(f"ngu-points-core-v5-{definition.__name__.split('_')[0]}-{stack}")
    table = _tables(recorded[stack])[expected["TableName"]].inputs
    assert table["hashKey"] == expected["KeySchema"][0]["AttributeName"]
    assert table["billingMode"] == expected["BillingMode"] == "PAY_PER_REQUEST"
    assert {(a["name"], a["type"]) for a in table["attributes"]} == {
        (a["AttributeName"], a["AttributeType"]) for a in expected["AttributeDefinitions"]
    }
    indexes = {i["name"]: i["keySchemas"][0]["attributeName"] for i in table.get("globalSecondaryIndexes") or []}
    assert indexes == {
        i["IndexName"]: i["KeySchema"][0]["AttributeName"] for i in expected.get("GlobalSecondaryIndexes", [])
    }
    assert table["pointInTimeRecovery"] == {"enabled": True}
    assert table["serverSideEncryption"] == {"enabled": True}


def test_prod_tables_are_protected_and_adopt_the_existing_tokens_and_points(prod: RecordedStack) -> None:
    tables = _tables(prod)
    assert all(t.protect and t.inputs["deletionProtectionEnabled"] for t in tables.values())
    assert {name: t.import_id for name, t in tables.items()} == {
        "ngu-points-core-v5-tokens-prod": "ngu-points-core-v5-tokens-prod",
        "ngu-points-core-v5-points-prod": "ngu-points-core-v5-points-prod",
        "ngu-points-core-v5-monitor-prod": None,
    }


def test_staging_creates_its_tables_unprotected(staging: RecordedStack) -> None:
    tables = _tables(staging).values()
    assert len(tables) == 3
    assert not any(t.protect or t.import_id or t.inputs["deletionProtectionEnabled"] for t in tables)


def test_stream_is_encrypted_with_its_own_key_and_published_in_ssm(prod: RecordedStack) -> None:
    stream = one(prod, "aws:kinesis/stream:Stream").inputs
    assert stream["encryptionType"] == "KMS"
    assert stream["kmsKeyId"].startswith("arn:aws:kms:") and "events-key" in stream["kmsKeyId"]
    assert "shardCount" not in stream
    parameters = {p.inputs["name"]: p.inputs for p in prod.of_type("aws:ssm/parameter:Parameter")}
    assert parameters["/ngu-points-system-v2/prod/KINESIS_STREAM_NAME"]["value"] == stream["name"]
    assert parameters["/ngu-points-system-v2/prod/RPC_URL"]["type"] == "SecureString"


@pytest.mark.parametrize("stack", STACKS)
def test_mapping_loses_nothing_silently(recorded: dict[str, RecordedStack], stack: str) -> None:
    mapping = one(recorded[stack], "aws:lambda/eventSourceMapping:EventSourceMapping")
    assert mapping.delete_before_replace
    assert mapping.inputs["startingPosition"] == project_config(stack, "consumer")["startingPosition"] == "TRIM_HORIZON"
    assert mapping.inputs["metricsConfig"] == {"metrics": ["EventCount"]}
    retention_seconds = project_config(stack, "stream")["retentionHours"] * 3600
    assert 60 <= mapping.inputs["maximumRecordAgeInSeconds"] < retention_seconds
    destination = mapping.inputs["destinationConfig"]["onFailure"]["destinationArn"]
    assert destination == f"arn:aws:s3:::ngu-points-{stack}-failed-batches-123456789012"


@pytest.mark.parametrize("stack", STACKS)
def test_failure_bucket_is_private_encrypted_and_expires(recorded: dict[str, RecordedStack], stack: str) -> None:
    resources = recorded[stack]
    bucket = next(b for b in resources.of_type("aws:s3/bucket:Bucket") if "failed-batches" in b.name)
    children = {r.type.split(":")[-1]: r.inputs for r in resources.resources if r.name.startswith(f"{bucket.name}-")}
    assert children["BucketServerSideEncryptionConfiguration"]["rules"][0]["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "AES256"
    }
    block = children["BucketPublicAccessBlock"]
    assert all(block[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    (rule,) = children["BucketLifecycleConfiguration"]["rules"]
    assert rule["expiration"]["days"] == project_config(stack, "consumer")["failedBatchRetentionDays"]
    policy = json.loads(children["BucketPolicy"]["policy"])
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_quarantine_queue_is_encrypted_and_wired_to_the_handler(prod: RecordedStack) -> None:
    queue = one(prod, "aws:sqs/queue:Queue").inputs
    assert queue["sqsManagedSseEnabled"] is True
    variables = one(prod, "aws:lambda/function:Function").inputs["environment"]["variables"]
    assert variables["QUARANTINE_QUEUE_URL"].endswith("/ngu-points-prod-quarantine")


def test_function_environment_is_design_section_10(prod: RecordedStack) -> None:
    function = one(prod, "aws:lambda/function:Function").inputs
    variables = function["environment"]["variables"]
    assert {"TOKENS_TABLE", "POINTS_TABLE", "QUARANTINE_QUEUE_URL", "POINTS_PER_DAY", "STAGE", "LOG_LEVEL"} <= set(
        variables
    )
    assert "POWERTOOLS_SERVICE_NAME" not in variables  # it would add a dimension the alarms do not select
    assert json.loads(variables["POINTS_PER_DAY"]) == project_config("prod", "points")["perDay"]
    assert (variables["STAGE"], variables["LOG_LEVEL"]) == ("prod", "INFO")
    assert (function["runtime"], function["architectures"], function["handler"]) == (
        "python3.12",
        ["arm64"],
        "app.processor.handler",
    )
    (layer,) = function["layers"]
    assert ":017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-arm64:" in layer
    assert function["loggingConfig"]["logGroup"] == one(prod, "aws:cloudwatch/logGroup:LogGroup").inputs["name"]


def test_function_waits_for_its_log_group_and_permissions(prod: RecordedStack) -> None:
    function = one(prod, "aws:lambda/function:Function")
    log_group = one(prod, "aws:cloudwatch/logGroup:LogGroup")
    assert log_group.urn in function.dependencies
    policies = {p.urn for p in prod.of_type("aws:iam/rolePolicy:RolePolicy") if p.name.startswith("processor-")}
    assert policies <= set(function.dependencies)


def test_a_pinned_layer_arn_overrides_the_ssm_lookup() -> None:
    from tools.record_stack import record_stack

    arn = "arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-arm64:99"
    consumer = {**project_config("staging", "consumer"), "powertoolsLayerArn": arn}
    stack = record_stack("staging", {"ngu-points-event-processor:consumer": json.dumps(consumer)})
    assert one(stack, "aws:lambda/function:Function").inputs["layers"] == [arn]


def _user_data(stack: RecordedStack) -> str:
    return base64.b64decode(one(stack, "aws:ec2/launchTemplate:LaunchTemplate").inputs["userData"]).decode()


def test_monitor_host_launch_template_is_locked_down(prod: RecordedStack) -> None:
    template = one(prod, "aws:ec2/launchTemplate:LaunchTemplate").inputs
    assert template["metadataOptions"]["httpTokens"] == "required"
    (interface,) = template["networkInterfaces"]
    assert interface["associatePublicIpAddress"] == "false"
    (device,) = template["blockDeviceMappings"]
    assert device["ebs"]["encrypted"] == "true"
    assert template["instanceType"] == project_config("prod", "monitor")["instanceType"]


def test_monitor_security_group_has_no_ingress(prod: RecordedStack) -> None:
    group = one(prod, "aws:ec2/securityGroup:SecurityGroup").inputs
    assert not group.get("ingress")
    assert group["vpcId"] == "vpc-0123456789abcdef0"


def test_monitor_runs_as_an_auto_scaling_group_of_one_over_the_private_subnets(prod: RecordedStack) -> None:
    group = one(prod, "aws:autoscaling/group:Group").inputs
    assert (group["minSize"], group["maxSize"], group["desiredCapacity"]) == (1, 2, 1)
    assert group["vpcZoneIdentifiers"] == ["subnet-0000000000000001", "subnet-0000000000000002"]


def test_monitor_is_replaced_launch_before_terminate(prod: RecordedStack) -> None:
    group = one(prod, "aws:autoscaling/group:Group").inputs
    preferences = group["instanceRefresh"]["preferences"]
    # The old host keeps running (100% of one healthy) until its replacement is in service (200%).
    assert (preferences["minHealthyPercentage"], preferences["maxHealthyPercentage"]) == (100, 200)
    policy = group["instanceMaintenancePolicy"]
    assert (policy["minHealthyPercentage"], policy["maxHealthyPercentage"]) == (100, 200)
    assert group["launchTemplate"]["version"] == "1"  # the schema's string, not the template's integer


@pytest.mark.parametrize("stack", STACKS)
def test_the_ami_is_the_stack_setting_not_a_lookup(recorded: dict[str, RecordedStack], stack: str) -> None:
    template = one(recorded[stack], "aws:ec2/launchTemplate:LaunchTemplate").inputs
    assert template["imageId"] == project_config(stack, "monitor")["amiId"]


def test_user_data_installs_the_uploaded_bundle_offline_and_starts_the_unit(prod: RecordedStack) -> None:
    script = _user_data(prod)
    objects = {o.name: o.inputs for o in prod.of_type("aws:s3/bucketObjectv2:BucketObjectv2")}
    for name in ("monitor-bundle", "monitor-wheelhouse"):
        assert f"s3://ngu-points-prod-artifacts-123456789012/{objects[name]['key']}" in script
    assert objects["monitor-wheelhouse"]["source"].path == str(wheelhouse_path(ROOT, "arm64"))
    assert objects["monitor-wheelhouse"]["key"].startswith("monitor/monitor-wheelhouse-cp312-aarch64-")
    assert "python3.12 -m venv /opt/ngu-points/venv" in script
    assert "tar -xzf /tmp/ngu-points-wheelhouse.tar.gz -C /opt/ngu-points/wheelhouse" in script
    installs = [line for line in script.splitlines() if "pip install" in line]
    assert len(installs) == 2
    assert all("--no-index --find-links /opt/ngu-points/wheelhouse" in line for line in installs)
    assert installs[1].endswith("--group monitor -c constraints.txt")
    assert "/etc/systemd/system/ngu-points-monitor.service" in script
    assert "systemctl enable --now ngu-points-monitor.service" in script
    assert "amazon-cloudwatch-agent-ctl -a fetch-config" in script


def test_user_data_writes_the_monitor_config_of_design_section_10(prod: RecordedStack) -> None:
    script = _user_data(prod)
    config = yaml.safe_load(script.split("<<'NGU_MONITOR_YAML'\n", 1)[1].split("\nNGU_MONITOR_YAML", 1)[0])
    monitor = project_config("prod", "monitor")
    assert config == {
        "stage": "prod",
        "chain_id": monitor["chainId"],
        "rpc_url_parameter": "/ngu-points-system-v2/prod/RPC_URL",
        "confirmations": monitor["confirmations"],
        "contracts": [{"address": c["address"], "start_block": c["startBlock"]} for c in monitor["contracts"]],
        "checkpoint_table": "ngu-points-core-v5-monitor-prod",
        "sink": "kinesis",
        "publish_concurrency": 4,
    }
    # The monitor itself accepts what the host is given (same model as `python -m app monitor`).
    from app.monitor.config import MonitorConfig

    assert MonitorConfig.parse(config).publish_concurrency == 4
    agent = json.loads(script.split("<<'NGU_AGENT_JSON'\n", 1)[1].split("\nNGU_AGENT_JSON", 1)[0])
    assert set(agent["metrics"]["metrics_collected"]) == {"mem", "disk"}


def test_bundle_holds_the_app_and_what_the_host_installs(prod: RecordedStack) -> None:
    import tarfile

    source = prod.named("monitor-bundle").inputs["source"]
    with tarfile.open(source.path) as bundle:
        names = set(bundle.getnames())
    assert {"app/processor.py", "pyproject.toml", "constraints.txt", "deploy/ngu-points-monitor.service"} <= names


def test_direct_sink_config_carries_the_ledger_tables_and_rates() -> None:
    from tools.record_stack import record_stack

    section = "ngu-points-event-processor"
    monitor = {**project_config("staging", "monitor"), "sink": "dynamodb"}
    points = {**project_config("staging", "points"), "defaultPerDay": 3}
    stack = record_stack(
        "staging", {f"{section}:monitor": json.dumps(monitor), f"{section}:points": json.dumps(points)}
    )
    script = _user_data(stack)
    config = yaml.safe_load(script.split("<<'NGU_MONITOR_YAML'\n", 1)[1].split("\nNGU_MONITOR_YAML", 1)[0])
    assert config["sink"] == "dynamodb"
    assert (config["tokens_table"], config["points_table"]) == (
        "ngu-points-core-v5-tokens-staging",
        "ngu-points-core-v5-points-staging",
    )
    assert config["points_per_day"] == points["perDay"]
    assert config["default_points_per_day"] == 3


@pytest.mark.parametrize("stack", STACKS)
def test_layer_version_is_the_powertools_the_handler_is_tested_with(stack: str) -> None:
    import tomllib

    from tools.record_stack import ROOT

    lambda_group = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]["lambda"]
    (pin,) = [d for d in lambda_group if d.startswith("aws-lambda-powertools==")]
    assert project_config(stack, "consumer")["powertoolsVersion"] == pin.split("==")[1]


def test_user_data_is_valid_bash(prod: RecordedStack, tmp_path) -> None:
    import subprocess

    script = tmp_path / "user-data.sh"
    script.write_text(_user_data(prod))
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert _user_data(prod).startswith("#!/bin/bash\nset -euxo pipefail\n")
