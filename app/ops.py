"""Operator reads of the ledger: a holder's points, a token, the leaderboard (`python -m app ...`).

Tables come from `--tokens-table` / `--points-table` or the TOKENS_TABLE / POINTS_TABLE environment
(as the Lambda has them); AWS endpoints from the standard AWS_* environment.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Callable
from fractions import Fraction
from typing import TypeVar

from app.errors import OperatorError, one_line_errors
from app.ledger import BeforeLastChange
from app.store import Store

T = TypeVar("T")

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_TOKEN = re.compile(r"[1-9][0-9]*:0x[0-9a-fA-F]{40}:(0|[1-9][0-9]*)")


def table_arguments(parser: argparse.ArgumentParser) -> None:
    from app.stage import stage_argument

    stage_argument(parser)
    parser.add_argument("--tokens-table", help="overrides --stage's; default: $TOKENS_TABLE")
    parser.add_argument("--points-table", help="overrides --stage's; default: $POINTS_TABLE")
    parser.add_argument(
        "--at", type=unix_seconds, default=None, metavar="UNIX_SECONDS", help="points at this time (now)"
    )
    parser.add_argument("--json", action="store_true", help="JSON output (these reads always print JSON)")


def unix_seconds(text: str) -> int:
    if not text.isdecimal():
        raise argparse.ArgumentTypeError(f"expected unix seconds (a non-negative integer), got {text!r}")
    return int(text)


def points_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("holder", help="the holder's address")
    table_arguments(parser)


def token_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("token", help="chainId:contract:tokenId")
    table_arguments(parser)


def leaderboard_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, default=10)
    table_arguments(parser)


def holdings_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("holder", help="the holder's address")
    table_arguments(parser)


# The one error path of every command (app/errors.py); kept under these names for the commands here.
reports_errors = one_line_errors


@reports_errors
def holdings(args: argparse.Namespace) -> int:
    holder = _holder(args)
    rows = _store(args).tokens_of(holder)
    _print([{k: item[k] for k in ("token", "acquiredAt", "lastEventId")} for item in rows])
    return 0


@reports_errors
def points(args: argparse.Namespace) -> int:
    holder = _holder(args)
    row = _store(args).holder(holder)
    if row is None:
        raise OperatorError(f"holder: {holder} has no points row", code=1)
    at = _at(args)
    _answerable(lambda: row.require_answer(holder, at))
    # lastChangeAt null: a row written before the time was stored, answered from its sums unchecked.
    _print(
        {
            "holder": holder,
            "at": at,
            "points": decimal_points(row.points_at(at)),
            "tokensHeld": row.tokens_held,
            "lastChangeAt": row.last_change_at,
        }
    )
    return 0


@reports_errors
def token(args: argparse.Namespace) -> int:
    if not _TOKEN.fullmatch(args.token):
        raise OperatorError(f"token: expected chainId:0x<contract>:decimalTokenId, got {args.token!r}")
    store = _store(args)
    chain, contract, token_id = args.token.split(":")
    item = store.token(f"{chain}:{contract.lower()}:{token_id}")
    if item is None:
        raise OperatorError(f"token: {args.token} is not in {store.tokens_table}", code=1)
    _print(item)
    return 0


@reports_errors
def leaderboard(args: argparse.Namespace) -> int:
    at = _at(args)
    board = _answerable(lambda: _store(args).leaderboard(at=at, limit=args.limit))
    _print(
        [
            {"rank": i, "holder": h, "points": decimal_points(p), "tokensHeld": row.tokens_held}
            for i, (h, p, row) in enumerate(board, 1)
        ]
    )
    return 0


def _holder(args: argparse.Namespace) -> str:
    if not _ADDRESS.fullmatch(args.holder):
        raise OperatorError(f"holder: not a 0x address: {args.holder!r}")
    return args.holder.lower()


def _at(args: argparse.Namespace) -> int:
    return args.at if args.at is not None else int(time.time())


def _answerable(read: Callable[[], T]) -> T:
    try:
        return read()
    except BeforeLastChange as early:
        raise OperatorError(
            f"--at: {early} (ask for --at {early.last_change_at} or later)",
        ) from None


def _store(args: argparse.Namespace) -> Store:
    from app import names
    from app.stage import resolve

    tokens = resolve(args, names.TOKENS_TABLE_PARAMETER, "--tokens-table")
    return Store(tokens, resolve(args, names.POINTS_TABLE_PARAMETER, "--points-table"))


def decimal_points(value: Fraction) -> str:
    """Six decimal places, rounded down: what a holder has surely earned."""
    micro = value.numerator * 1_000_000 // value.denominator
    sign = "-" if micro < 0 else ""
    whole, frac = divmod(abs(micro), 1_000_000)
    return f"{sign}{whole}.{frac:06d}"


def _print(value: object) -> None:
    print(json.dumps(value, indent=2))
