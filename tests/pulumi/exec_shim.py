"""A small copy of the Pulumi CLI's Python exec shim (sdk/python/cmd/pulumi-language-python-exec),
with the engine's resource monitor swapped for Pulumi's mocks. The test copies this file to a folder
outside the repository and runs it with no PYTHONPATH, as the language host runs its shim from the
CLI's own folder: nothing of the repository is importable unless the program's start puts it there.

    python exec_shim.py --project P --stack S --pwd DIR --mocks tools/stack_mocks.py --out FILE PROGRAM
"""

import argparse
import asyncio
import importlib.util
import json
import os
import runpy
import sys

import pulumi
import pulumi.runtime
from pulumi.runtime import stack

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--project")
    parser.add_argument("--stack")
    parser.add_argument("--pwd")
    parser.add_argument("--mocks", help="tools/stack_mocks.py, loaded by path")
    parser.add_argument("--out", help="where to write the recorded resources as JSON")
    parser.add_argument("PROGRAM")
    args = parser.parse_args()

    # The venv Pulumi's own flow creates (`pulumi install`: requirements.txt only) has no editable install
    # of this project, which `make venv` adds: the program must not need it, so this shim drops it.
    sys.meta_path = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
    sys.path_hooks = [h for h in sys.path_hooks if not getattr(h, "__module__", "").startswith("__editable__")]

    # The shim's first steps: config (and which keys are secret) from the environment the engine set.
    pulumi.runtime.set_all_config(pulumi.runtime.get_config_env(), pulumi.runtime.get_config_secret_keys_env())

    spec = importlib.util.spec_from_file_location("stack_mocks", args.mocks)
    stack_mocks = importlib.util.module_from_spec(spec)
    sys.modules["stack_mocks"] = stack_mocks
    spec.loader.exec_module(stack_mocks)
    # The mocks bind futures to the loop current when they are set, so the loop comes first here.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    region = json.loads(os.environ["PULUMI_CONFIG"]).get("aws:region", "us-east-1")
    monitor = stack_mocks.RecordingMonitor(stack_mocks.ProviderMocks(region))
    pulumi.runtime.set_mocks(monitor.mocks, project=args.project, stack=args.stack, preview=False, monitor=monitor)

    # Then exactly as the shim: argv, chdir, and run_path of the program inside the stack.
    sys.argv = [args.PROGRAM]
    if args.pwd is not None:
        os.chdir(args.pwd)
    # The shim wraps this in run_in_stack, which registers the root stack; set_mocks has registered it.
    loop.run_until_complete(stack.run_pulumi_func(lambda: runpy.run_path(args.PROGRAM, run_name="__main__")))
    loop.close()
    with open(args.out, "w") as out:
        json.dump([[r.type, r.name, r.import_id] for r in monitor.recorded], out)
