"""`python -m app preflight --stage prod`: what the first `pulumi up` of a stage would change in what
already exists, read before it runs, and the seed's pre-deployment backup of the tables.

Since CLI 3.174 an `import` whose inputs differ from the live resource succeeds and then updates the
live resource in the same `up`. This reads the live tables, the stage's SSM name parameters, the
seed's alarm topic, alarms of the names the stack's alarms take (the seed made some by hand: `up`
overwrites them without a word) and every other name the stack creates (app/preflight_names.py),
compares them with what the stack declares (app/declared_tables.py, the stack file's `tables.mode`
and `stream.nameParameter`), prints every difference with what `up` would do,
and exits 1 if anything would replace or destroy data or make `up` fail. It changes nothing except
that it takes an on-demand backup of each adopted table (named with the date) and prints its ARN.

Exit codes (DESIGN §10): 0 nothing destructive, 1 something missing or destructive, 2 bad input.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from botocore.exceptions import ClientError

from app import aws
from app.declared_tables import DeclaredTable, TableMode, declared_tables
from app.errors import OperatorError
from app.names import OPERATOR_PARAMETERS, PROJECT, STREAM_PARAMETER, StageNames
from app.preflight_names import taken_names

ROOT = Path(__file__).resolve().parent.parent
Effect = Literal["update", "replace", "destroy", "blocked"]
# What makes preflight fail: data replaced or destroyed, or an `up` that cannot succeed.
FAILING: frozenset[Effect] = frozenset({"replace", "destroy", "blocked"})


@dataclass(frozen=True)
class Difference:
    resource: str
    effect: Effect
    what: str


@dataclass(frozen=True)
class StackFile:
    """The stack file's values that decide what the first `up` does with what exists."""

    region: str
    tables_mode: TableMode
    stream_parameter_mode: Literal["create", "adopt"]
    ami_id: str
    architecture: str


def read_stack_file(stage: str, root: Path = ROOT) -> StackFile:
    path = root / f"Pulumi.{stage}.yaml"
    if not path.is_file():
        raise OperatorError(f"--stage {stage}: no stack file {path.name}", code=2)
    config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    tables = config.get(f"{PROJECT}:tables") or {}
    stream = config.get(f"{PROJECT}:stream") or {}
    monitor = config.get(f"{PROJECT}:monitor") or {}
    mode, parameter_mode = tables.get("mode"), stream.get("nameParameter", "create")
    if mode not in ("create", "adopt") or parameter_mode not in ("create", "adopt"):
        raise OperatorError(f"{path.name}: tables.mode and stream.nameParameter must be create or adopt", code=2)
    return StackFile(
        region=str(config.get("aws:region", "")),
        tables_mode=mode,
        stream_parameter_mode=parameter_mode,
        ami_id=str(monitor.get("amiId", "")),
        architecture=str(monitor.get("architecture", "")),
    )


# --- tables -----------------------------------------------------------------------------------------


def compare_table(table: DeclaredTable, live: dict[str, Any], pitr: str, tags: dict[str, str]) -> list[Difference]:
    """What an `up` importing `live` as `table` would do to it."""
    name, found = table.name, []

    def add(effect: Effect, what: str) -> None:
        found.append(Difference(f"table {name}", effect, what))

    keys = {k["KeyType"]: k["AttributeName"] for k in live["KeySchema"]}
    if keys != {"HASH": table.hash_key}:
        add("replace", f"key schema {keys} is not {{'HASH': '{table.hash_key}'}}: the table would be recreated empty")
    types = {a["AttributeName"]: a["AttributeType"] for a in live.get("AttributeDefinitions", [])}
    for attribute in table.attributes:
        if types.get(attribute, "S") != "S":
            add("replace", f"key attribute {attribute} is type {types[attribute]}, declared S")
    billing = live.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
    if billing != table.billing_mode:
        add("update", f"billing mode {billing} -> {table.billing_mode}")
    _compare_indexes(table, live, add)
    if (pitr == "ENABLED") != table.point_in_time_recovery:
        add("update", f"point-in-time recovery {pitr} -> {'ENABLED' if table.point_in_time_recovery else 'DISABLED'}")
    sse = live.get("SSEDescription", {}).get("Status") in ("ENABLED", "ENABLING", "UPDATING")
    if sse != table.server_side_encryption:
        add("update", "server-side encryption: AWS owned key -> KMS (the AWS managed key aws/dynamodb)")
    stream = live.get("StreamSpecification", {}).get("StreamEnabled", False)
    if stream and not table.stream_enabled:
        view = live["StreamSpecification"].get("StreamViewType", "")
        add("destroy", f"DynamoDB stream ({view}) is enabled, not declared: up disables it and its records are lost")
    protection = bool(live.get("DeletionProtectionEnabled", False))
    if protection != table.deletion_protection:
        add("update", f"deletion protection {protection} -> {table.deletion_protection}")
    for key in sorted(set(tags) | set(table.tags)):
        if tags.get(key) != table.tags.get(key):
            add("update", f"tag {key}: {tags.get(key)!r} -> {table.tags.get(key)!r}")
    return found


def _compare_indexes(table: DeclaredTable, live: dict[str, Any], add: Callable[[Effect, str], None]) -> None:
    declared = {index: key for index, key in table.indexes}
    existing = {}
    for index in live.get("GlobalSecondaryIndexes", []):
        keys = {k["KeyType"]: k["AttributeName"] for k in index["KeySchema"]}
        existing[index["IndexName"]] = (keys, index.get("Projection", {}).get("ProjectionType"))
    for index, key in declared.items():
        if index not in existing:
            add("update", f"index {index} (on {key}) is created; queries on it fail until it is ACTIVE")
        elif existing[index] != ({"HASH": key}, "ALL"):
            add("destroy", f"index {index} is {existing[index]}, declared ({{'HASH': '{key}'}}, 'ALL'): up rebuilds it")
    for index in sorted(set(existing) - set(declared)):
        add("destroy", f"index {index} is not declared: up deletes it")


def check_tables(dynamodb: Any, stage: str, mode: TableMode) -> tuple[list[Difference], list[str]]:
    """The differences, and the adopted tables that exist (to back up)."""
    differences, existing = [], []
    for table in declared_tables(stage, mode).values():
        try:
            live = dynamodb.describe_table(TableName=table.name)["Table"]
        except ClientError as error:
            if _code(error) != "ResourceNotFoundException":
                raise
            if table.adopt:
                differences.append(Difference(f"table {table.name}", "blocked", "missing: the import fails"))
            continue
        if not table.adopt:
            what = "exists but tables.mode creates it: up fails (adopt it, or delete it first)"
            differences.append(Difference(f"table {table.name}", "blocked", what))
            continue
        existing.append(table.name)
        backups = dynamodb.describe_continuous_backups(TableName=table.name)["ContinuousBackupsDescription"]
        pitr = backups.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus", "DISABLED")
        tags = {t["Key"]: t["Value"] for t in dynamodb.list_tags_of_resource(ResourceArn=live["TableArn"])["Tags"]}
        differences += compare_table(table, live, pitr, tags)
    return differences, existing


# --- SSM parameters and the seed's alarm topic -------------------------------------------------------


def check_parameters(ssm: Any, names: StageNames, stream_mode: str) -> list[Difference]:
    full = {key: names.parameter(key) for key in OPERATOR_PARAMETERS}
    live = {}
    keys = list(full.values())
    for start in range(0, len(keys), 10):  # GetParameters takes ten names at a time
        for parameter in ssm.get_parameters(Names=keys[start : start + 10])["Parameters"]:
            live[parameter["Name"]] = parameter
    differences = []
    for key, name in full.items():
        adopt = key == STREAM_PARAMETER and stream_mode == "adopt"
        if name not in live:
            if adopt:
                what = "missing: the import fails (set stream.nameParameter: create)"
                differences.append(Difference(f"parameter {name}", "blocked", what))
            continue
        if not adopt:
            what = "exists but the stack creates it: up fails with ParameterAlreadyExists"
            if key == STREAM_PARAMETER:
                what += " (set stream.nameParameter: adopt)"
            differences.append(Difference(f"parameter {name}", "blocked", what))
            continue
        parameter = live[name]
        if parameter["Type"] != "String":
            differences.append(Difference(f"parameter {name}", "update", f"type {parameter['Type']} -> String"))
        if parameter["Value"] != names.stream:
            what = f"value {parameter['Value']!r} -> {names.stream!r} (the monitor then publishes to the new stream)"
            differences.append(Difference(f"parameter {name}", "update", what))
    return differences


def check_image(ec2: Any, ami_id: str, architecture: str) -> list[Difference]:
    """The monitor's pinned image must exist here and fit the instance type's architecture."""
    where = f"monitor.amiId {ami_id}"
    try:
        images = ec2.describe_images(ImageIds=[ami_id])["Images"]
    except ClientError as error:
        if not _code(error).startswith("InvalidAMIID"):
            raise
        images = []
    if not images:
        return [Difference(where, "blocked", "no such image in this region: the host cannot launch (`make ami`)")]
    if images[0].get("Architecture") != architecture:
        what = f"is {images[0].get('Architecture')}, monitor.architecture is {architecture}: the host cannot launch"
        return [Difference(where, "blocked", what)]
    return []


# --- alarms ------------------------------------------------------------------------------------------

DESCRIBE_ALARMS_NAMES = 100  # DescribeAlarms takes at most 100 AlarmNames a call


def stack_alarm_names(names: StageNames) -> list[str]:
    """Every alarm name the stack creates: the catalog components/alarms.py builds them from."""
    from components.alarm_catalog import CATALOG  # pure data (no pulumi): what the stack declares

    return [names.alarm(spec.name, seed_name=spec.seed_name) for spec in CATALOG]


def check_alarms(cloudwatch: Any, alarm_names: list[str]) -> list[Difference]:
    """Alarms of the stack's names that exist already (the seed's, made by hand): PutMetricAlarm
    overwrites an alarm of the same name without an error, so `up` takes them over silently."""
    found: dict[str, tuple[str, list[str]]] = {}
    for start in range(0, len(alarm_names), DESCRIBE_ALARMS_NAMES):
        chunk = alarm_names[start : start + DESCRIBE_ALARMS_NAMES]
        pages = cloudwatch.get_paginator("describe_alarms").paginate(
            AlarmNames=chunk, AlarmTypes=["MetricAlarm", "CompositeAlarm"]
        )
        for page in pages:
            for kind, key in (("metric", "MetricAlarms"), ("composite", "CompositeAlarms")):
                for alarm in page.get(key, []):
                    found[alarm["AlarmName"]] = (kind, alarm.get("AlarmActions", []))
    differences = []
    for name in alarm_names:
        if name in found:
            kind, actions = found[name]
            targets = ", ".join(action.rsplit(":", 1)[-1] for action in actions) or "no action"
            what = (
                f"exists outside the stack ({kind} alarm, notifies {targets}): up overwrites it with the stack's "
                "definition and routes, and the stack then owns it (a destroy deletes it)"
            )
            differences.append(Difference(f"alarm {name}", "update", what))
    return differences


def describe_legacy_topic(sns: Any, topic_arn: str) -> str:
    try:
        sns.get_topic_attributes(TopicArn=topic_arn)
    except ClientError as error:
        if _code(error) != "NotFound":
            raise
        return f"topic {topic_arn}: not found; nothing to migrate"
    subscriptions = []
    for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
        subscriptions += [f"{s['Protocol']}:{s['Endpoint']}" for s in page["Subscriptions"]]
    listed = ", ".join(subscriptions) or "none"
    return (
        f"topic {topic_arn}: not managed by the stack; {len(subscriptions)} subscriptions ({listed}); "
        "move them to the page/notify topics (docs/deploy.md, 'The seed's alarm topic')"
    )


# --- backups and the command ------------------------------------------------------------------------


def back_up(dynamodb: Any, tables: list[str], now: datetime) -> list[str]:
    lines = []
    for table in tables:
        name = f"{table}-preflight-{now:%Y-%m-%d-%H%M%S}"
        arn = dynamodb.create_backup(TableName=table, BackupName=name)["BackupDetails"]["BackupArn"]
        lines.append(f"backup {name}: {arn}")
    return lines


def check(
    stage: str, client: Callable[[str], Any] | None = None, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> int:
    client = client or aws.client
    try:
        names = StageNames(stage)
    except ValueError as error:
        raise OperatorError(f"--stage {error}", code=2) from None
    stack = read_stack_file(stage)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise OperatorError(f"no AWS region: set AWS_REGION (Pulumi.{stage}.yaml deploys to {stack.region})", code=1)
    if stack.region and region != stack.region:
        raise OperatorError(f"AWS_REGION is {region} but Pulumi.{stage}.yaml deploys to {stack.region}", code=1)
    account = client("sts").get_caller_identity()["Account"]
    print(f"preflight {stage}: account {account}, {region}; tables.mode {stack.tables_mode}")
    dynamodb = client("dynamodb")
    differences, existing = check_tables(dynamodb, stage, stack.tables_mode)
    differences += check_parameters(client("ssm"), names, stack.stream_parameter_mode)
    differences += check_image(client("ec2"), stack.ami_id, stack.architecture)
    differences += check_alarms(client("cloudwatch"), stack_alarm_names(names))
    for taken in taken_names(client, names, region, account):
        differences.append(Difference(taken, "blocked", "exists: up cannot create it (remove it, or import it)"))
    for difference in differences:
        print(f"  {difference.effect:<8} {difference.resource}: {difference.what}")
    print(describe_legacy_topic(client("sns"), f"arn:aws:sns:{region}:{account}:{names.legacy_alarm_topic}"))
    for line in back_up(dynamodb, existing, now()):
        print(line)
    failing = [d for d in differences if d.effect in FAILING]
    print(
        f"{len(differences)} differences the first up would apply, {len(failing)} that replace or destroy data "
        "or make up fail" + ("" if failing else "; next: make preview STACK=" + stage)
    )
    return 1 if failing else 0


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", required=True, help="the stage whose stack file and live resources to compare")


def run(args: argparse.Namespace) -> int:
    """Errors (bad input, no credentials or region, an AWS refusal) are one line: app/errors.py."""
    return check(args.stage)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
