"""tools/record_stack.py: what the policy pack's tests read, in the shape the seams file fixed."""

from __future__ import annotations

import json
import subprocess
import sys

from tools.record_stack import ROOT, RecordedStack, stack_config


def test_cli_prints_resources_and_outputs_as_json_with_secrets_hidden() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tools.record_stack", "--stack", "prod"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert set(printed) == {"resources", "outputs"}
    by_name = {r["name"]: r for r in printed["resources"]}
    assert by_name["monitor-rpc-url"]["inputs"]["value"] == "[secret]"
    assert by_name["alarms-pagerduty"]["inputs"]["endpoint"] == "[secret]"
    assert "placeholder-for" not in result.stdout
    stream = by_name["events-stream"]
    assert stream["type"] == "aws:kinesis/stream:Stream"
    assert stream["inputs"]["retentionPeriod"] == 24
    assert {"urn", "parent", "protect", "deleteBeforeReplace", "provider", "dependencies"} <= set(stream)
    assert printed["outputs"]["KinesisStreamArn"].endswith("stream/ngu-points-core-v5-events-prod-v5")


def test_components_are_recorded_with_empty_inputs(prod: RecordedStack) -> None:
    components = [r for r in prod.resources if r.type.startswith("ngu:pipeline:")]
    assert len(components) == 7
    for component in components:
        assert component.inputs == {}
        assert component.parent and component.parent.split("::")[2] == "pulumi:pulumi:Stack"


def test_parent_urns_point_at_recorded_resources(prod: RecordedStack) -> None:
    urns = {r.urn for r in prod.resources}
    for resource in prod.resources:
        if resource.parent and resource.parent.split("::")[2] != "pulumi:pulumi:Stack":
            assert resource.parent in urns, resource.name
        for dependency in resource.dependencies:
            assert dependency in urns, (resource.name, dependency)


def test_secure_values_become_placeholders_and_overrides_replace_single_keys() -> None:
    values, secrets = stack_config("prod", {"ngu-points-event-processor:logLevel": "DEBUG"})
    assert set(secrets) == {"ngu-points-event-processor:rpcUrl", "ngu-points-event-processor:pagerdutyEndpoint"}
    assert values["ngu-points-event-processor:rpcUrl"] == "placeholder-for-ngu-points-event-processor:rpcUrl"
    assert values["ngu-points-event-processor:logLevel"] == "DEBUG"
    assert json.loads(values["ngu-points-event-processor:consumer"])["batchSize"] == 100
