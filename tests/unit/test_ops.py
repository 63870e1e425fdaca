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
    assert json.loads(out) == {
        "holder": B,
        "at": 86400,
        "points": "15.000000",
        "tokensHeld": 2,
        "lastChangeAt": 43_200,
    }


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


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ("points", B, "--at", "1600"),
            f"error: --at: 1600 is before the last change of holder {B} at 43200: the ledger answers only from "
            "each holder's last change on (ask for --at 43200 or later)",
        ),
        (("leaderboard", "--at", "0"), f"error: --at: 0 is before the last change of holder {B} at 43200"),
    ],
)
def test_a_time_before_a_holders_last_change_is_refused_in_one_line(ledger, capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith(message) and err.count("\n") == 1


def test_from_the_last_change_on_the_answer_is_exact(ledger, capsys):
    code, out, _ = run(capsys, "points", B, "--at", "43200")
    assert code == 0 and json.loads(out)["points"] == "5.000000"  # half a day at 10 a day; the second token from then


@pytest.mark.parametrize("at", ["-1", "-1600000000", "1e9", "soon"])
def test_a_time_that_is_not_unix_seconds_is_refused_at_parsing(ledger, capsys, at):
    with pytest.raises(SystemExit) as exited:
        main(["points", B, "--at", at])
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert (
        err
        == f"python -m app points: error: argument --at: expected unix seconds (a non-negative integer), got {at!r}\n"
    )


def test_a_row_written_before_the_time_was_stored_is_answered_from_its_sums(ledger, capsys):
    ledger.client.update_item(TableName=POINTS, Key={"holder": {"S": A}}, UpdateExpression="REMOVE lastChangeAt")
    code, out, _ = run(capsys, "points", A, "--at", "86400")
    assert code == 0 and json.loads(out)["lastChangeAt"] is None and json.loads(out)["points"] == "10.000000"
