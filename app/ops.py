"""Operator reads of the ledger: a holder's points, a token, the leaderboard (`python -m app ...`).

Tables come from `--tokens-table` / `--points-table` or the TOKENS_TABLE / POINTS_TABLE environment
(as the Lambda has them); AWS endpoints from the standard AWS_* environment.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from fractions import Fraction

from app.store import Store

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_TOKEN = re.compile(r"[1-9][0-9]*:0x[0-9a-fA-F]{40}:(0|[1-9][0-9]*)")


def table_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tokens-table", default=os.environ.get("TOKENS_TABLE"), help="default: $TOKENS_TABLE")
    parser.add_argument("--points-table", default=os.environ.get("POINTS_TABLE"), help="default: $POINTS_TABLE")
    parser.add_argument("--at", type=int, default=None, metavar="UNIX_SECONDS", help="points at this time (now)")


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


def holdings(args: argparse.Namespace) -> int:
    if not _ADDRESS.fullmatch(args.holder):
        return _fail(f"holder: not a 0x address: {args.holder!r}")
    store = _store(args)
    if store is None:
        return 2
    _print([{k: item[k] for k in ("token", "acquiredAt", "lastEventId")} for item in store.tokens_of(args.holder)])
    return 0


def points(args: argparse.Namespace) -> int:
    if not _ADDRESS.fullmatch(args.holder):
        return _fail(f"holder: not a 0x address: {args.holder!r}")
    store = _store(args)
    if store is None:
        return 2
    row = store.holder(args.holder)
    at = args.at if args.at is not None else int(time.time())
    if row is None:
        return _fail(f"holder: {args.holder.lower()} has no points row", code=1)
    _print(
        {
            "holder": args.holder.lower(),
            "at": at,
            "points": decimal_points(row.points_at(at)),
            "tokensHeld": row.tokens_held,
        }
    )
    return 0


def token(args: argparse.Namespace) -> int:
    if not _TOKEN.fullmatch(args.token):
        return _fail(f"token: expected chainId:0x<contract>:decimalTokenId, got {args.token!r}")
    store = _store(args)
    if store is None:
        return 2
    chain, contract, token_id = args.token.split(":")
    item = store.token(f"{chain}:{contract.lower()}:{token_id}")
    if item is None:
        return _fail(f"token: {args.token} is not in {store.tokens_table}", code=1)
    _print(item)
    return 0


def leaderboard(args: argparse.Namespace) -> int:
    store = _store(args)
    if store is None:
        return 2
    at = args.at if args.at is not None else int(time.time())
    board = store.leaderboard(at=at, limit=args.limit)
    _print(
        [
            {"rank": i, "holder": h, "points": decimal_points(p), "tokensHeld": row.tokens_held}
            for i, (h, p, row) in enumerate(board, 1)
        ]
    )
    return 0


def _store(args: argparse.Namespace) -> Store | None:
    for flag, value in (("--tokens-table", args.tokens_table), ("--points-table", args.points_table)):
        if not value:
            _fail(f"{flag}: missing (or set {flag[2:].upper().replace('-', '_')})")
            return None
    return Store(args.tokens_table, args.points_table)


def decimal_points(value: Fraction) -> str:
    """Six decimal places, rounded down: what a holder has surely earned."""
    micro = value.numerator * 1_000_000 // value.denominator
    sign = "-" if micro < 0 else ""
    whole, frac = divmod(abs(micro), 1_000_000)
    return f"{sign}{whole}.{frac:06d}"


def _print(value: object) -> None:
    print(json.dumps(value, indent=2))


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code
