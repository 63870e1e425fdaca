"""`python -m app <command>`: one small function per command, registered in COMMANDS."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass


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


COMMANDS = [
    Command("monitor", "the event monitor: chain -> Kinesis (or DynamoDB)", _monitor_arguments, _monitor),
]


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m app", description="ngu-points event pipeline")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        command.arguments(sub)
        sub.set_defaults(run=command.run)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
