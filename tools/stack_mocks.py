"""Plausible provider answers for the stack program under Pulumi's mocks, and a monitor that records
every resource the program registers.

Imports nothing of this repository, so that a copy of the CLI's exec shim (tests/pulumi/exec_shim.py)
can load it by path without putting the repository on sys.path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks, rpc

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


class RecordingMonitor(mocks.MockMonitor):
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
                    inputs=unwrap(raw, redact=False),
                    parent=request.parent or None,
                    protect=bool(request.protect),
                    delete_before_replace=bool(request.deleteBeforeReplace),
                    provider=request.provider or None,
                    dependencies=list(request.dependencies),
                    import_id=request.importId or None,
                    redacted_inputs=jsonable(unwrap(raw, redact=True)),
                )
            )
        return response


def unwrap(value: Any, *, redact: bool) -> Any:
    if rpc.is_rpc_secret(value):
        return SECRET if redact else unwrap(rpc.unwrap_rpc_secret(value), redact=redact)
    if isinstance(value, dict):
        return {k: unwrap(v, redact=redact) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v, redact=redact) for v in value]
    return value


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, pulumi.FileArchive | pulumi.FileAsset):
        return {"path": value.path}
    if isinstance(value, pulumi.AssetArchive):
        return {"assets": {k: jsonable(v) for k, v in value.assets.items()}}
    if isinstance(value, pulumi.StringAsset):
        return {"text": value.text}
    if isinstance(value, pulumi.Resource):
        return str(value)
    return value


class ProviderMocks(pulumi.runtime.Mocks):
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
                # A role's id is its name (what its inline policies and attachments refer to).
                return name, state
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
