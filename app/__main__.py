"""`python -m app <command>`: one small function per command, registered in COMMANDS."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from app.errors import one_line_errors


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _monitor_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE", help="the monitor's YAML config (DESIGN §10)")
    parser.add_argument(
        "--until-block",
        type=_block_number,
        metavar="N",
        help="publish every event confirmed now up to block N (no waiting for new blocks), save the checkpoint and exit 0",
    )


def _monitor(args: argparse.Namespace) -> int:
    from app.monitor.command import main

    return main(args.config, args.until_block)


def _block_number(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a block number, got {text!r}")
    return int(text)


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    from app.local.stack import arguments

    arguments(parser)


def _demo(args: argparse.Namespace) -> int:
    from app.local.stack import run

    return run(quick=args.quick, keep_running=args.keep_running)


def _ops(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from app import ops

        return getattr(ops, name)(args)

    return run


def _ops_arguments(name: str) -> Callable[[argparse.ArgumentParser], None]:
    def add(parser: argparse.ArgumentParser) -> None:
        from app import ops

        getattr(ops, f"{name}_arguments")(parser)

    return add


def _redrive_arguments(parser: argparse.ArgumentParser) -> None:
    from app.stage import stage_argument

    stage_argument(parser)
    parser.add_argument("--stream", help="the stream to put the records back on (default: --stage's)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--bucket", nargs="?", const="", help="the mapping's S3 on-failure destination (alone: --stage's)"
    )
    source.add_argument("--queue-url", nargs="?", const="", help="the quarantine queue (alone: --stage's)")
    parser.add_argument("--prefix", default="aws/lambda/", help="with --bucket: the key prefix (default aws/lambda/)")
    parser.add_argument("--dry-run", action="store_true", help="count what would be redriven, change nothing")
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")


def _redrive(args: argparse.Namespace) -> int:
    from app import aws
    from app import names as n
    from app.redrive import Redriver
    from app.stage import resolve

    redriver = Redriver(aws.client("kinesis"), resolve(args, n.STREAM_PARAMETER, "--stream"), dry_run=args.dry_run)
    if args.bucket is not None:
        bucket = resolve(args, n.FAILED_BATCHES_PARAMETER, "--bucket")
        report = redriver.from_failure_bucket(aws.client("s3"), bucket, args.prefix)
    else:
        report = redriver.from_quarantine(aws.client("sqs"), resolve(args, n.QUARANTINE_PARAMETER, "--queue-url"))
    if args.json:
        counts = {"records": report.records, "sources": report.sources, "unreadable": report.unreadable}
        print(json.dumps({"dryRun": args.dry_run, **counts}))
    else:
        print(report.summary(args.dry_run))
    return 0


def _module(name: str) -> tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]:
    """A command that lives in its own module `app.<name>`, with `arguments(parser)` and `run(args)`."""

    def arguments(parser: argparse.ArgumentParser) -> None:
        importlib.import_module(f"app.{name}").arguments(parser)

    def run(args: argparse.Namespace) -> int:
        return importlib.import_module(f"app.{name}").run(args)

    return arguments, run


COMMANDS = [
    Command("monitor", "the event monitor: chain -> Kinesis (or DynamoDB)", _monitor_arguments, _monitor),
    Command("demo", "the whole pipeline on this machine, checked against the chain", _demo_arguments, _demo),
    Command("points", "a holder's points now (or --at)", _ops_arguments("points"), _ops("points")),
    Command("token", "a token's row in the tokens table", _ops_arguments("token"), _ops("token")),
    Command("holdings", "the tokens a holder holds (owner-index)", _ops_arguments("holdings"), _ops("holdings")),
    Command(
        "leaderboard", "the top holders by points now (or --at)", _ops_arguments("leaderboard"), _ops("leaderboard")
    ),
    Command("redrive", "put failed or quarantined records back on the stream", _redrive_arguments, _redrive),
    Command("verify", "the pre- and post-deployment checks of a stage, one line each", *_module("verify")),
    Command("reconcile", "check (and --fix) the tables against the chain", *_module("reconcile")),
    Command("replay", "re-apply what the stream still holds in a time window", *_module("replay")),
    Command("cost", "the monthly cost of a stage's configuration at a volume", *_module("cost")),
    Command("preflight", "what the first pulumi up would change; backs up the tables", *_module("preflight")),
    Command(
        "backfill",
        "publish a historical block range through the monitor's reader and sink; the live checkpoint untouched",
        *_module("monitor.backfill"),
    ),
]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, as every error of these commands (DESIGN §10); `--help` still shows the usage.
        self.exit(2, f"{self.prog}: error: {message}\n")


def parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The whole CLI; given the arguments, only the named command's own arguments are built, since
    building one imports its module (the monitor's start-up should not pay for boto3 and the rest)."""
    prog = "ngu-points" if os.path.basename(sys.argv[0]) == "ngu-points" else "python -m app"
    root = _Parser(prog=prog, description="ngu-points event pipeline: operator commands")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    named = next((word for word in argv if not word.startswith("-")), None) if argv is not None else None
    for command in COMMANDS:
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        if argv is None or command.name == named:
            command.arguments(sub)
        sub.set_defaults(run=command.run)
    return root


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser(argv).parse_args(argv)
    # One error path for every command: a missing table, stream, bucket or queue, no credentials or
    # no region is one line naming it, exit 1; bad input (OperatorError) exit 2.
    return one_line_errors(args.run)(args)


if __name__ == "__main__":
    sys.exit(main())
