"""Operator commands: `python -m app points | token | leaderboard` print what the tables hold."""

import json

import pytest

from app.__main__ import main
from tests.support.aws import POINTS, TOKENS, moto_ledger
from tests.support.chain import address, mint

A, B = address(0xA), address(0xB)


@pytest.fixture
def ledger(monkeypatch):
    monkeypatch.setenv("TOKENS_TABLE", TOKENS)
    monkeypatch.setenv("POINTS_TABLE", POINTS)
    with moto_ledger() as ledger:
        ledger.store.apply(mint(1, A, block=1, timestamp=0), 10)
        ledger.store.apply(mint(2, B, block=1, timestamp=0, log_index=1), 10)
        ledger.store.apply(mint(3, B, block=1, timestamp=43_200, log_index=2), 10)
        yield ledger


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_points_of_a_holder_at_a_time(ledger, capsys):
    code, out, _ = run(capsys, "points", B.upper().replace("0X", "0x"), "--at", "86400")
    assert code == 0
    assert json.loads(out) == {"holder": B, "at": 86400, "points": "15.000000", "tokensHeld": 2}


def test_leaderboard_ranks_by_points(ledger, capsys):
    code, out, _ = run(capsys, "leaderboard", "--at", "86400", "--limit", "2")
    assert code == 0
    assert [(r["rank"], r["holder"], r["points"]) for r in json.loads(out)] == [
        (1, B, "15.000000"),
        (2, A, "10.000000"),
    ]


def test_holdings_come_from_the_owner_index(ledger, capsys):
    code, out, _ = run(capsys, "holdings", B)
    assert code == 0
    assert [(row["token"].rsplit(":", 1)[1], row["acquiredAt"]) for row in json.loads(out)] == [("2", 0), ("3", 43_200)]
    code, out, _ = run(capsys, "holdings", address(0xC))
    assert code == 0 and json.loads(out) == []


def test_token_row(ledger, capsys):
    key = mint(2, B, block=1, timestamp=0).token_key
    code, out, _ = run(capsys, "token", key, "--at", "0")
    assert code == 0 and json.loads(out)["owner"] == B


@pytest.mark.parametrize(
    ("argv", "message", "code"),
    [
        (("points", "0x12"), "error: holder: not a 0x address: '0x12'", 2),
        (("points", address(0xC)), f"error: holder: {address(0xC)} has no points row", 1),
        (("token", "1:0xabc:1"), "error: token: expected chainId:0x<contract>:decimalTokenId, got '1:0xabc:1'", 2),
    ],
)
def test_bad_input_is_one_line_naming_it(ledger, capsys, argv, message, code):
    got, out, err = run(capsys, *argv)
    assert got == code and out == "" and err.strip() == message


def test_missing_table_names_the_flag(capsys, monkeypatch):
    monkeypatch.delenv("TOKENS_TABLE", raising=False)
    code, _, err = run(capsys, "leaderboard", "--points-table", "p")
    assert code == 2 and err.strip() == "error: --tokens-table: missing (give it or --stage S, or set TOKENS_TABLE)"
