"""Run the Pulumi program under mocks for one stack file and record every resource it declares.

There is no Pulumi CLI here: this is how tests (and the policy pack's tests) see what `pulumi up -s
STACK` would send to the engine. `secure:` config values become placeholders; `config` overrides
single keys (`"ngu-points-event-processor:consumer"` takes the JSON of the whole section).

    python -m tools.record_stack --stack prod     # prints {"resources": [...], "outputs": {...}}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import runpy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks, rpc, settings, stack

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "ngu-points-event-processor"
ACCOUNT = "123456789012"
SECRET = "[secret]"


@dataclass
class RecordedResource:
    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    parent: str | None
    protect: bool
    delete_before_replace: bool
    provider: str | None
    dependencies: list[str]
    # The `import` resource option: the id of an existing resource this one adopts.
    import_id: str | None = None
    # The inputs with every secret replaced by "[secret]": what the CLI prints.
    redacted_inputs: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class RecordedStack:
    resources: list[RecordedResource]
    outputs: dict[str, Any]
    redacted_outputs: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def of_type(self, type_: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str) -> RecordedResource:
        matches = [r for r in self.resources if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{name}: {len(matches)} resources have this name")
        return matches[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "resources": [
                {
                    "type": r.type,
                    "name": r.name,
                    "urn": r.urn,
                    "inputs": r.redacted_inputs,
                    "parent": r.parent,
                    "protect": r.protect,
                    "deleteBeforeReplace": r.delete_before_replace,
                    "provider": r.provider,
                    "dependencies": r.dependencies,
                    "importId": r.import_id,
                }
                for r in self.resources
            ],
            "outputs": self.redacted_outputs,
        }


def stack_config(stack_name: str, overrides: dict[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    """The config map the engine would hand the program: values as strings, objects as JSON."""
    path = ROOT / f"Pulumi.{stack_name}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"--stack {stack_name}: no stack file {path.name}")
    document = yaml.safe_load(path.read_text()) or {}
    values: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in (document.get("config") or {}).items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            values[key] = f"placeholder-for-{key}"
            secret_keys.append(key)
        elif isinstance(value, str):
            values[key] = value
        else:
            values[key] = json.dumps(value)
    for key, value in (overrides or {}).items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    return values, secret_keys


def record_stack(stack: str, config: dict[str, str] | None = None) -> RecordedStack:
    """Run __main__.py for `stack` on a fresh event loop and return what it declared."""
    values, secret_keys = stack_config(stack, config)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return _run(stack, values, secret_keys, loop)
    finally:
        loop.close()
        asyncio.set_event_loop(None)


def _run(stack_name: str, values: dict[str, str], secret_keys: list[str], loop: asyncio.AbstractEventLoop):
    pulumi.runtime.set_all_config(values, secret_keys)
    settings.ROOT.set(None)
    monitor = _RecordingMonitor(_Mocks(values.get("aws:region", "us-east-1")))
    pulumi.runtime.set_mocks(monitor.mocks, project=PROJECT, stack=stack_name, preview=False, monitor=monitor)
    root = settings.get_root_resource()
    program = str(ROOT / "__main__.py")
    loop.run_until_complete(stack.run_pulumi_func(lambda: runpy.run_path(program, run_name="__main__")))

    async def resolve(value: Any) -> tuple[Any, bool]:
        output = pulumi.Output.from_input(value)
        return await output.future(), bool(await output.is_secret())

    outputs: dict[str, Any] = {}
    redacted: dict[str, Any] = {}
    for name, value in root.outputs.items():
        plain, secret = loop.run_until_complete(resolve(value))
        outputs[name] = plain
        redacted[name] = SECRET if secret else _jsonable(plain)
    return RecordedStack(monitor.recorded, outputs, redacted)


class _RecordingMonitor(mocks.MockMonitor):
    """The mock monitor, also keeping what only the RegisterResource request carries."""

    def __init__(self, mocks_: mocks.Mocks) -> None:
        super().__init__(mocks_)
        self.recorded: list[RecordedResource] = []

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            raw = rpc.deserialize_properties(request.object) if request.custom else {}
            self.recorded.append(
                RecordedResource(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    inputs=_unwrap(raw, redact=False),
                    parent=request.parent or None,
                    protect=bool(request.protect),
                    delete_before_replace=bool(request.deleteBeforeReplace),
                    provider=request.provider or None,
                    dependencies=list(request.dependencies),
                    import_id=request.importId or None,
                    redacted_inputs=_jsonable(_unwrap(raw, redact=True)),
                )
            )
        return response


def _unwrap(value: Any, *, redact: bool) -> Any:
    if rpc.is_rpc_secret(value):
        return SECRET if redact else _unwrap(rpc.unwrap_rpc_secret(value), redact=redact)
    if isinstance(value, dict):
        return {k: _unwrap(v, redact=redact) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v, redact=redact) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, pulumi.FileArchive | pulumi.FileAsset):
        return {"path": value.path}
    if isinstance(value, pulumi.AssetArchive):
        return {"assets": {k: _jsonable(v) for k, v in value.assets.items()}}
    if isinstance(value, pulumi.StringAsset):
        return {"text": value.text}
    if isinstance(value, pulumi.Resource):
        return str(value)
    return value


class _Mocks(pulumi.runtime.Mocks):
    """Plausible provider answers: ids and ARNs from names, SSM parameters from their names."""

    def __init__(self, region: str) -> None:
        self.region = region

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        service = args.typ.split(":")[1].split("/")[0]
        name = str(args.inputs.get("name") or args.inputs.get("bucket") or args.name)
        arn = f"arn:aws:{service}:{self.region}:{ACCOUNT}:{args.name}"
        state = {"arn": arn, "id": f"{args.name}-id", **args.inputs}
        match args.typ:
            case "aws:iam/role:Role":
                state["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{name}"
            case "aws:iam/instanceProfile:InstanceProfile":
                state["arn"] = f"arn:aws:iam::{ACCOUNT}:instance-profile/{name}"
            case "aws:kinesis/stream:Stream":
                state["arn"] = f"arn:aws:kinesis:{self.region}:{ACCOUNT}:stream/{name}"
            case "aws:dynamodb/table:Table":
                state["arn"] = f"arn:aws:dynamodb:{self.region}:{ACCOUNT}:table/{name}"
            case "aws:lambda/function:Function":
                state["arn"] = f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{name}"
            case "aws:lambda/eventSourceMapping:EventSourceMapping":
                state["uuid"] = f"{args.name}-uuid"
            case "aws:sqs/queue:Queue":
                state["arn"] = f"arn:aws:sqs:{self.region}:{ACCOUNT}:{name}"
                state["url"] = f"https://sqs.{self.region}.amazonaws.com/{ACCOUNT}/{name}"
            case "aws:sns/topic:Topic":
                state["arn"] = f"arn:aws:sns:{self.region}:{ACCOUNT}:{name}"
            case "aws:s3/bucket:Bucket":
                state["arn"] = f"arn:aws:s3:::{name}"
                state["bucket"] = name
            case "aws:kms/key:Key":
                state["arn"] = f"arn:aws:kms:{self.region}:{ACCOUNT}:key/{args.name}-key-id"
                state["keyId"] = f"{args.name}-key-id"
            case "aws:cloudwatch/logGroup:LogGroup":
                state["arn"] = f"arn:aws:logs:{self.region}:{ACCOUNT}:log-group:{name}"
            case "aws:ec2/launchTemplate:LaunchTemplate":
                state["latestVersion"] = 1
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        match args.token:
            case "aws:index/getCallerIdentity:getCallerIdentity":
                return {
                    "accountId": ACCOUNT,
                    "arn": f"arn:aws:iam::{ACCOUNT}:user/mock",
                    "userId": "mock",
                    "id": ACCOUNT,
                }
            case "aws:index/getRegion:getRegion":
                return {"name": self.region, "region": self.region, "id": self.region}
            case "aws:index/getPartition:getPartition":
                return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
            case "aws:ec2/getSubnet:getSubnet":
                return {"id": args.args["id"], "vpcId": "vpc-0123456789abcdef0", "arn": "mock"}
            case "aws:ssm/getParameter:getParameter":
                name = args.args["name"]
                return {"name": name, "value": _parameter_value(name, self.region), "type": "String", "id": name}
        raise NotImplementedError(f"{args.token}: no mock answer; add one to tools/record_stack.py")


def _parameter_value(name: str, region: str) -> str:
    last = name.rsplit("/", 1)[-1]
    if last == "VPC_SECURITY_GROUP":
        return "sg-0123456789abcdef0"
    if last.startswith("PRIVATE_SUBNET_"):
        return f"subnet-000000000000000{last[-1]}"
    if name.startswith("/aws/service/powertools/"):
        return f"arn:aws:lambda:{region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-arm64:1"
    if name.startswith("/aws/service/ami-"):
        return "ami-0123456789abcdef0"
    return f"mock-value-of-{last}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.STACK.yaml")
    arguments = parser.parse_args(argv)
    try:
        recorded = record_stack(arguments.stack)
    except Exception as error:  # one line for the operator, not a traceback
        print(f"record_stack: {error}", file=sys.stderr)
        return 1
    json.dump(recorded.to_json(), sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
