"""The CI workflows parse, have the expected jobs, and wire the policy pack and its per-stack config
into pulumi/actions with the input names that action defines; secrets are referenced, never written."""

import re
from pathlib import Path

import pytest
import yaml

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"
PULUMI_ACTION_INPUTS = {
    "command", "stack-name", "work-dir", "comment-on-pr", "github-token", "cloud-url", "secrets-provider",
    "parallel", "message", "config-map", "expect-no-changes", "diff", "replace", "target", "target-dependents",
    "policyPacks", "policyPackConfigs", "refresh", "upsert", "edit-pr-comment", "color", "pulumi-version",
}  # fmt: skip


def load(name: str) -> dict:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    document["on"] = document.pop(True, document.get("on"))  # YAML 1.1 reads a bare `on` as true
    return document


@pytest.mark.parametrize("name", ["pull-request.yml", "deploy.yml", "pulumi-stack.yml"])
def test_workflow_is_valid_yaml_with_jobs(name):
    document = load(name)
    assert document["on"] and document["jobs"]
    for job in document["jobs"].values():
        assert "steps" in job or "uses" in job


def test_pull_request_runs_tests_then_previews_each_stack_with_its_policy_config():
    document = load("pull-request.yml")
    assert "pull_request" in document["on"]
    jobs = document["jobs"]
    assert any(".ci/run" in step.get("run", "") for step in jobs["test"]["steps"])
    preview = jobs["preview"]
    assert preview["needs"] == "test"
    assert preview["uses"] == "./.github/workflows/pulumi-stack.yml"
    assert preview["with"]["command"] == "preview"
    assert sorted(preview["strategy"]["matrix"]["stack"]) == ["prod", "staging"]
    assert "make policy STACK=${{ matrix.stack }}" in [s.get("run") for s in jobs["policy"]["steps"]]
    assert document["permissions"]["pull-requests"] == "write"


def test_main_deploys_staging_then_prod_behind_an_approval():
    document = load("deploy.yml")
    assert document["on"]["push"]["branches"] == ["main"]
    jobs = document["jobs"]
    assert jobs["staging"]["needs"] == "test" and jobs["staging"]["with"]["command"] == "up"
    assert jobs["prod"]["needs"] == "staging" and jobs["prod"]["with"]["command"] == "up"
    assert jobs["prod"]["with"]["stack"] == "prod"
    assert jobs["prod"]["with"]["environment"] == "production"
    assert document["concurrency"]["cancel-in-progress"] is False


def test_stack_job_runs_pulumi_with_the_policy_pack():
    document = load("pulumi-stack.yml")
    assert set(document["on"]["workflow_call"]["secrets"]) == {"PULUMI_ACCESS_TOKEN", "AWS_ROLE_ARN"}
    [job] = document["jobs"].values()
    assert job["environment"] == "${{ inputs.environment }}"
    [pulumi] = [s for s in job["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@")]
    assert set(pulumi["with"]) <= PULUMI_ACTION_INPUTS
    assert pulumi["with"]["policyPacks"] == "policy"
    assert pulumi["with"]["policyPackConfigs"] == "policy/config/${{ inputs.stack }}.json"
    assert pulumi["with"]["comment-on-pr"] == "${{ inputs.command == 'preview' }}"
    assert pulumi["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"


@pytest.mark.parametrize("name", ["pull-request.yml", "deploy.yml", "pulumi-stack.yml"])
def test_secrets_are_named_not_filled(name):
    text = (WORKFLOWS / name).read_text()
    assert not re.search(r"(pul-[0-9a-f]{20,}|AKIA[0-9A-Z]{16}|arn:aws:iam::\d{12})", text)
    for match in re.finditer(r"\b(PULUMI_ACCESS_TOKEN|AWS_ROLE_ARN):[ \t]*(\S.*)?$", text, re.MULTILINE):
        assert match.group(2) is None or match.group(2).startswith("${{ secrets."), match.group(0)


def test_policy_config_files_exist_for_every_stack_the_workflows_use():
    config = Path(__file__).resolve().parents[2] / "policy" / "config"
    assert {p.stem for p in config.glob("*.json")} >= {"prod", "staging"}
