"""`python -m app <command>`: one small function per command, registered in COMMANDS."""

from __future__ import annotations

import argparse
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
    parser.add_argument("--stream", required=True, help="the stream to put the records back on")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--bucket", help="the mapping's S3 on-failure destination")
    source.add_argument("--queue-url", help="the quarantine queue")
    parser.add_argument("--prefix", default="aws/lambda/", help="with --bucket: the key prefix (default aws/lambda/)")
    parser.add_argument("--dry-run", action="store_true", help="count what would be redriven, change nothing")


def _redrive(args: argparse.Namespace) -> int:
    from app import aws
    from app.redrive import Redriver

    redriver = Redriver(aws.client("kinesis"), args.stream, dry_run=args.dry_run)
    if args.bucket:
        report = redriver.from_failure_bucket(aws.client("s3"), args.bucket, args.prefix)
    else:
        report = redriver.from_quarantine(aws.client("sqs"), args.queue_url)
    print(report.summary(args.dry_run))
    return 0


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
]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, as every error of these commands (DESIGN §10); `--help` still shows the usage.
        self.exit(2, f"{self.prog}: error: {message}\n")


def parser() -> argparse.ArgumentParser:
    root = _Parser(prog="python -m app", description="ngu-points event pipeline")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        command.arguments(sub)
        sub.set_defaults(run=command.run)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # One error path for every command: a missing table, stream, bucket or queue, no credentials or
    # no region is one line naming it, exit 1; bad input (OperatorError) exit 2.
    return one_line_errors(args.run)(args)


if __name__ == "__main__":
    sys.exit(main())
