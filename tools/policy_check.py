"""Check a stack against the policy pack the way `pulumi preview --policy-pack policy` does, without the CLI.

The stack program runs under mocks (`tools.record_stack`); the pack is started exactly as the CLI starts
a Python policy pack (`python -u -m pulumi.policy <engine-address> .` in `policy/`), its Analyzer gRPC
service is configured with the stack's policy config (reconciled with each policy's schema as the CLI
does), every resource is analysed, then the stack as a whole. Violations print as the CLI prints them.

    python -m tools.policy_check --stack prod
    python -m tools.policy_check --stack prod --resources recorded.json   # output of tools.record_stack

Exit status: 0 clean or advisory only, 1 a mandatory violation, 2 bad input or a pack that fails.
"""

import argparse
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import grpc
import jsonschema
import yaml
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc, engine_pb2, engine_pb2_grpc
from pulumi_policy.deserialize import serialize_properties

ROOT = Path(__file__).resolve().parent.parent
PACK_DIR = ROOT / "policy"
PROJECT_FILE = ROOT / "Pulumi.yaml"
DEFAULT_PROJECT = "ngu-points-event-processor"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 5.0

LEVELS = ("advisory", "mandatory", "remediate", "disabled")
_LEVEL_TO_PROTO = {
    "advisory": analyzer_pb2.ADVISORY,
    "mandatory": analyzer_pb2.MANDATORY,
    "remediate": analyzer_pb2.REMEDIATE,
    "disabled": analyzer_pb2.DISABLED,
}
_PROTO_TO_LEVEL = {v: k for k, v in _LEVEL_TO_PROTO.items()}


class PolicyCheckError(Exception):
    """Bad input or a pack that cannot run: one line that names what to fix."""


@dataclass(frozen=True)
class Resource:
    """A recorded resource (the seam of tools.record_stack.RecordedResource), loaded from its JSON form."""

    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    parent: str | None = None
    protect: bool = False
    delete_before_replace: bool | None = None
    provider: str | None = None
    dependencies: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Violation:
    policy: str
    level: str
    urn: str
    message: str


@dataclass(frozen=True)
class Report:
    pack: str
    version: str
    violations: list[Violation]
    engine_logs: list[str]

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == "mandatory"]


# --- inputs -----------------------------------------------------------------------------------------


def load_resources(path: Path) -> list[Resource]:
    """Resources from the JSON that `python -m tools.record_stack --stack S` prints."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return [
            Resource(
                type=r["type"],
                name=r["name"],
                urn=r["urn"],
                inputs=r.get("inputs") or {},
                parent=r.get("parent"),
                protect=bool(r.get("protect", False)),
                delete_before_replace=r.get("delete_before_replace", r.get("deleteBeforeReplace")),
                provider=r.get("provider"),
                dependencies=list(r.get("dependencies") or []),
            )
            for r in document["resources"]
        ]
    except OSError as error:
        raise PolicyCheckError(f"--resources {path}: {error.strerror}") from error
    except (ValueError, KeyError, TypeError) as error:
        raise PolicyCheckError(f"--resources {path}: not a recorded stack ({error!r})") from error


def record(stack: str) -> list[Any]:
    """Run the stack program under mocks and return what it registered."""
    try:
        from tools.record_stack import record_stack
    except ModuleNotFoundError as error:
        if error.name != "tools.record_stack":
            raise
        raise PolicyCheckError(
            "tools/record_stack.py is missing, so the stack program cannot be recorded; pass --resources FILE"
        ) from error
    try:
        return list(record_stack(stack).resources)
    except Exception as error:  # the program's own error, reported as one line naming the stack
        raise PolicyCheckError(f"--stack {stack}: the program failed under mocks: {error}") from error


def load_policy_config(path: Path) -> dict[str, dict[str, Any]]:
    """A `--policy-pack-config` file, parsed as the CLI parses it: {policy: level | {enforcementLevel?, ...props}}."""
    try:
        document = json.loads(path.read_text(encoding="utf-8") or "{}")
    except OSError as error:
        raise PolicyCheckError(f"policy config {path}: {error.strerror}") from error
    except json.JSONDecodeError as error:
        raise PolicyCheckError(f"policy config {path}: not JSON ({error.msg}, line {error.lineno})") from error
    if not isinstance(document, dict):
        raise PolicyCheckError(f"policy config {path}: must be a JSON object keyed by policy name")
    config: dict[str, dict[str, Any]] = {}
    for name, value in document.items():
        if isinstance(value, str):
            value = {"enforcementLevel": value}
        if not isinstance(value, dict):
            raise PolicyCheckError(f"policy config {path}: {name!r} must be an enforcement level or an object")
        level = value.get("enforcementLevel")
        if level is not None and level not in LEVELS:
            raise PolicyCheckError(f"policy config {path}: {name!r}: {level!r} is not one of {', '.join(LEVELS)}")
        config[name] = dict(value)
    return config


def reconcile_config(policies: Iterable[Any], given: Mapping[str, Mapping[str, Any]], source: str) -> dict[str, Any]:
    """Each policy's effective level and properties: schema defaults, then `all`, then the file; validated."""
    result: dict[str, dict[str, Any]] = {}
    schemas: dict[str, dict[str, Any]] = {}
    for policy in policies:
        properties = json_format.MessageToDict(policy.configSchema.properties)
        schemas[policy.name] = {"type": "object", "properties": properties}
        if policy.configSchema.required:
            schemas[policy.name]["required"] = list(policy.configSchema.required)
        defaults = {k: v["default"] for k, v in properties.items() if isinstance(v, dict) and "default" in v}
        result[policy.name] = {"level": _PROTO_TO_LEVEL[policy.enforcementLevel], "properties": defaults}
    unknown = sorted(set(given) - set(result) - {"all"})
    if unknown:
        raise PolicyCheckError(f"policy config {source}: no such policy in the pack: {', '.join(unknown)}")
    all_level = given.get("all", {}).get("enforcementLevel")
    for name, entry in result.items():
        if all_level:
            entry["level"] = all_level
        overrides = dict(given.get(name, {}))
        if "enforcementLevel" in overrides:
            entry["level"] = overrides.pop("enforcementLevel")
        entry["properties"].update(overrides)
        errors = sorted(jsonschema.Draft7Validator(schemas[name]).iter_errors(entry["properties"]), key=str)
        if errors:
            where = "/".join(str(p) for p in errors[0].absolute_path) or "(root)"
            raise PolicyCheckError(f"policy config {source}: {name}: {where}: {errors[0].message}")
    return result


def stack_config(stack: str) -> dict[str, str]:
    """The stack's config as the CLI hands it to plugins (PULUMI_CONFIG): strings, secrets withheld."""
    path = ROOT / f"Pulumi.{stack}.yaml"
    if not path.exists():
        return {}
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    config = {}
    for key, value in (document.get("config") or {}).items():
        if isinstance(value, dict) and "secure" in value:
            config[key] = "[secret]"
        else:
            config[key] = value if isinstance(value, str) else json.dumps(value)
    return config


def project_name() -> str:
    if PROJECT_FILE.exists():
        return (yaml.safe_load(PROJECT_FILE.read_text(encoding="utf-8")) or {}).get("name", DEFAULT_PROJECT)
    return DEFAULT_PROJECT


def pack_version(pack_dir: Path) -> str | None:
    """PulumiPolicy.yaml's version, which the CLI prefers over the one a Python pack reports."""
    path = pack_dir / "PulumiPolicy.yaml"
    if not path.exists():
        return None
    version = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("version")
    return str(version) if version else None


# --- the engine the pack reports to -----------------------------------------------------------------


class _Engine(engine_pb2_grpc.EngineServicer):
    """The part of the engine a policy pack talks to: it logs (pulumi.log) and asks for the root resource."""

    def __init__(self) -> None:
        self.logs: list[str] = []

    def Log(self, request, context):
        self.logs.append(f"{engine_pb2.LogSeverity.Name(request.severity).lower()}: {request.message}")
        return empty_pb2.Empty()

    def GetRootResource(self, request, context):
        return engine_pb2.GetRootResourceResponse(urn="")

    def SetRootResource(self, request, context):
        return engine_pb2.SetRootResourceResponse()


@contextmanager
def engine_server() -> Iterator[tuple[str, _Engine]]:
    engine = _Engine()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    engine_pb2_grpc.add_EngineServicer_to_server(engine, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", engine
    finally:
        server.stop(0)


# --- the pack process -------------------------------------------------------------------------------


class PolicyPack:
    """The policy pack as a running plugin: started like the CLI starts it, always stopped on exit."""

    def __init__(
        self,
        engine_address: str,
        *,
        stack: str,
        project: str,
        config: Mapping[str, str],
        pack_dir: Path = PACK_DIR,
        python: str | None = None,
        dry_run: bool = True,
    ) -> None:
        self.pack_dir = pack_dir
        self.command = [
            _interpreter(python or default_python(pack_dir)),
            "-u",
            "-m",
            "pulumi.policy",
            engine_address,
            ".",
        ]
        self.env = {
            **os.environ,
            "PULUMI_STACK": stack,
            "PULUMI_PROJECT": project,
            "PULUMI_CONFIG": json.dumps(dict(config)),
            "PULUMI_DRY_RUN": "true" if dry_run else "false",
        }
        self.process: subprocess.Popen | None = None
        self._channel: grpc.Channel | None = None
        self._stderr: Any = None
        self.stub: analyzer_pb2_grpc.AnalyzerStub

    def __enter__(self) -> "PolicyPack":
        self._stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            self.command,
            cwd=self.pack_dir,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,
        )
        try:
            port = self._read_port()
            self._channel = grpc.insecure_channel(f"127.0.0.1:{port}")
            grpc.channel_ready_future(self._channel).result(timeout=START_TIMEOUT_S)
            self.stub = analyzer_pb2_grpc.AnalyzerStub(self._channel)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _read_port(self) -> int:
        assert self.process is not None and self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout=START_TIMEOUT_S)
        line = self.process.stdout.readline().decode(errors="replace").strip() if ready else ""
        if not line.isdigit():
            self.process.poll()
            raise PolicyCheckError(
                f"policy pack {self.pack_dir} did not start (printed {line!r}, exit {self.process.returncode}): "
                + self.stderr_tail()
            )
        # Anything printed later must not fill the pipe and block the pack.
        threading.Thread(target=self.process.stdout.read, daemon=True).start()
        return int(line)

    def stderr_tail(self, lines: int = 5) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        text = self._stderr.read().decode(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:]) or "(no stderr)"

    def __exit__(self, *exc: object) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self.process is not None:
            if self.process.poll() is None:
                # The pack stops its server on KeyboardInterrupt, as the CLI's interrupt expects.
                self.process.send_signal(signal.SIGINT)
                try:
                    self.process.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait()
            if self.process.stdout is not None:
                self.process.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    # The Analyzer protocol, in the order the engine drives it.

    def info(self) -> analyzer_pb2.AnalyzerInfo:
        return self.stub.GetAnalyzerInfo(empty_pb2.Empty())

    def configure(self, reconciled: Mapping[str, Mapping[str, Any]]) -> None:
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for name, entry in reconciled.items():
            policy_config = request.policyConfig[name]
            policy_config.enforcementLevel = _LEVEL_TO_PROTO[entry["level"]]
            policy_config.properties.update(entry["properties"])
        self.stub.Configure(request)

    def configure_stack(self, stack: str, project: str, config: Mapping[str, str], dry_run: bool = True) -> None:
        request = analyzer_pb2.AnalyzerStackConfigureRequest(
            stack=stack, project=project, organization="organization", dry_run=dry_run, config=dict(config)
        )
        try:
            self.stub.ConfigureStack(request)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise

    def analyze(self, resource: Any, by_urn: Mapping[str, Any]) -> analyzer_pb2.AnalyzeResponse:
        request = analyzer_pb2.AnalyzeRequest(
            type=resource.type,
            properties=_struct(resource.inputs),
            urn=resource.urn,
            name=resource.name,
            options=_options(resource),
        )
        provider = _provider(resource, by_urn)
        if provider is not None:
            request.provider.CopyFrom(provider)
        return self.stub.Analyze(request)

    def analyze_stack(self, resources: list[Any], by_urn: Mapping[str, Any]) -> analyzer_pb2.AnalyzeResponse:
        request = analyzer_pb2.AnalyzeStackRequest()
        for resource in resources:
            entry = request.resources.add(
                type=resource.type,
                properties=_struct(resource.inputs),
                urn=resource.urn,
                name=resource.name,
                options=_options(resource),
                parent=resource.parent or "",
                dependencies=list(resource.dependencies or []),
            )
            provider = _provider(resource, by_urn)
            if provider is not None:
                entry.provider.CopyFrom(provider)
        return self.stub.AnalyzeStack(request)


def default_python(pack_dir: Path) -> str:
    """The pack's own virtualenv when it exists (as the CLI uses it), else this interpreter."""
    venv_python = pack_dir / "venv" / "bin" / "python"
    return str(venv_python) if venv_python.exists() else sys.executable


def _interpreter(python: str) -> str:
    """An interpreter path that still holds once the pack runs in policy/ (absolute, not resolved:
    a venv's python is a symlink whose location selects the venv)."""
    if os.sep not in python:
        return python
    path = Path(python).absolute()
    if not path.exists():
        raise PolicyCheckError(f"--python {python}: no such interpreter (make policy-venv creates policy/venv)")
    return str(path)


def _struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    """Inputs on the wire: assets, archives and secrets in the engine's signature-keyed form."""
    struct = struct_pb2.Struct()
    struct.update(dict(serialize_properties(dict(values or {}))))
    return struct


def _options(resource: Any) -> analyzer_pb2.AnalyzerResourceOptions:
    delete_before_replace = getattr(resource, "delete_before_replace", None)
    return analyzer_pb2.AnalyzerResourceOptions(
        protect=bool(getattr(resource, "protect", False)),
        deleteBeforeReplace=bool(delete_before_replace),
        deleteBeforeReplaceDefined=delete_before_replace is not None,
        parent=getattr(resource, "parent", None) or "",
    )


def _provider(resource: Any, by_urn: Mapping[str, Any]) -> analyzer_pb2.AnalyzerProviderResource | None:
    reference = getattr(resource, "provider", None)
    if not reference:
        return None
    urn = reference.rsplit("::", 1)[0] if reference.count("::") > 3 else reference
    parts = urn.split("::")
    if len(parts) < 4:
        return None
    provider_type, provider_name = parts[2].split("$")[-1], parts[3]
    recorded = by_urn.get(urn)
    inputs = recorded.inputs if recorded is not None else {}
    return analyzer_pb2.AnalyzerProviderResource(
        type=provider_type, properties=_struct(inputs), urn=urn, name=provider_name
    )


# --- the run ----------------------------------------------------------------------------------------


def _violations(response: analyzer_pb2.AnalyzeResponse, default_urn: str) -> list[Violation]:
    return [
        Violation(d.policyName, _PROTO_TO_LEVEL[d.enforcementLevel], d.urn or default_urn, d.message)
        for d in response.diagnostics
    ]


def check(
    resources: list[Any],
    *,
    stack: str,
    policy_config: Path,
    pack_dir: Path = PACK_DIR,
    python: str | None = None,
    pack: PolicyPack | None = None,
) -> Report:
    """Analyse `resources` with the pack configured from `policy_config`; starts a pack unless one is given."""
    given = load_policy_config(policy_config)
    project = project_name()
    config = stack_config(stack)
    if pack is not None:
        return _check_with(pack, resources, given, policy_config, stack, project, config, [])
    with (
        engine_server() as (address, engine),
        PolicyPack(address, stack=stack, project=project, config=config, pack_dir=pack_dir, python=python) as started,
    ):
        return _check_with(started, resources, given, policy_config, stack, project, config, engine.logs)


def _check_with(
    pack: PolicyPack,
    resources: list[Any],
    given: Mapping[str, Any],
    source: Path,
    stack: str,
    project: str,
    config: Mapping[str, str],
    logs: list[str],
) -> Report:
    info = pack.info()
    pack.configure(reconcile_config(info.policies, given, str(source)))
    pack.configure_stack(stack, project, config)
    by_urn = {r.urn: r for r in resources}
    violations: list[Violation] = []
    for resource in resources:
        if resource.type != "pulumi:pulumi:Stack":
            violations += _violations(pack.analyze(resource, by_urn), resource.urn)
    violations += _violations(pack.analyze_stack(resources, by_urn), "")
    return Report(info.name, pack_version(pack.pack_dir) or info.version, violations, list(logs))


def _resource_label(urn: str) -> str:
    parts = urn.split("::")
    if len(parts) < 4:
        return "stack"
    return f"{parts[2].split('$')[-1]}: {parts[3]}"


def print_report(report: Report, out: TextIO) -> None:
    """Violations as `pulumi preview` prints them: pack, then per violation level, policy, resource, message."""
    for line in report.engine_logs:
        print(f"    {line}", file=out)
    status = "failed" if report.mandatory else "passed"
    print("Policies:", file=out)
    print(f"    {report.pack}@v{report.version} (local: policy): {status}", file=out)
    for v in sorted(report.violations, key=lambda v: (v.level != "mandatory", v.policy, v.urn)):
        print(f"        - [{v.level}]  {v.policy}  ({_resource_label(v.urn)})", file=out)
        for line in v.message.splitlines():
            print(f"          {line}", file=out)
    advisory = len(report.violations) - len(report.mandatory)
    print(f"    {len(report.mandatory)} mandatory, {advisory} advisory violation(s)", file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check a stack against the policy pack, as pulumi preview would.")
    parser.add_argument("--stack", required=True, help="stack name: prod or staging")
    parser.add_argument(
        "--resources", type=Path, help="recorded resources (JSON of tools.record_stack); default: record now"
    )
    parser.add_argument("--policy-config", type=Path, help="default: policy/config/<stack>.json")
    parser.add_argument("--python", help="interpreter for the pack; default: policy/venv, else this one")
    args = parser.parse_args(argv)

    policy_config = args.policy_config or PACK_DIR / "config" / f"{args.stack}.json"
    try:
        if not policy_config.exists():
            raise PolicyCheckError(f"--stack {args.stack}: no policy config {policy_config}")
        resources = load_resources(args.resources) if args.resources else record(args.stack)
        report = check(resources, stack=args.stack, policy_config=policy_config, python=args.python)
    except PolicyCheckError as error:
        print(f"policy_check: {error}", file=sys.stderr)
        return 2
    print_report(report, sys.stdout)
    return 1 if report.mandatory else 0


if __name__ == "__main__":
    sys.exit(main())
