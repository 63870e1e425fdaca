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
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import settings, stack

from tools.program_entry import run_program
from tools.stack_mocks import ACCOUNT, SECRET, ProviderMocks, RecordedResource, RecordingMonitor, jsonable

__all__ = ["ACCOUNT", "ROOT", "RecordedResource", "RecordedStack", "record_stack", "stack_config"]

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "ngu-points-event-processor"


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
    """Run the program for `stack` on a fresh event loop, started as the CLI starts it, and return what it declared."""
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
    monitor = RecordingMonitor(ProviderMocks(values.get("aws:region", "us-east-1")))
    pulumi.runtime.set_mocks(monitor.mocks, project=PROJECT, stack=stack_name, preview=False, monitor=monitor)
    root = settings.get_root_resource()
    loop.run_until_complete(stack.run_pulumi_func(lambda: run_program(ROOT)))

    async def resolve(value: Any) -> tuple[Any, bool]:
        output = pulumi.Output.from_input(value)
        return await output.future(), bool(await output.is_secret())

    outputs: dict[str, Any] = {}
    redacted: dict[str, Any] = {}
    for name, value in root.outputs.items():
        plain, secret = loop.run_until_complete(resolve(value))
        outputs[name] = plain
        redacted[name] = SECRET if secret else jsonable(plain)
    return RecordedStack(monitor.recorded, outputs, redacted)


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
