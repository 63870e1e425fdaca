"""Every `ngu-points …` step of the runbooks parses as written (flags that exist, values they accept);
the `cost` steps, which need no AWS, run."""

import re
import shlex

import pytest

from app.__main__ import main, parser
from app.local.services import ROOT

DOCS = [
    *sorted((ROOT / "docs" / "runbooks").glob("*.md")),
    ROOT / "docs" / "operations.md",
    ROOT / "docs" / "alarms.md",
]
SUBSTITUTIONS = {
    '"$STAGE"': "prod",
    "$STAGE": "prod",
    "$CHAIN_ID": "1",
    "0x<holder>": "0x" + "a" * 40,
    "0x<contract>": "0x" + "b" * 40,
    "<tokenId>": "7",
}


def steps() -> list[tuple[str, str]]:
    found = []
    for path in DOCS:
        text = path.read_text()
        lines = re.findall(r"`(ngu-points [^`]+)`", text) + re.findall(r"^(ngu-points .+)$", text, re.M)
        found += [(path.name, line) for line in lines if len(line.split()) > 2]
    return sorted(set(found))


def argv(line: str) -> list[str]:
    for placeholder, value in SUBSTITUTIONS.items():
        line = line.replace(placeholder, value)
    line = re.sub(r"\[([^\]]+)\]", r"\1", line)  # optional flags, shown in brackets
    return shlex.split(line)[1:]


def test_the_runbooks_have_steps():
    commands = {argv(line)[0] for _, line in steps()}
    assert {"verify", "reconcile", "replay", "redrive", "cost", "points", "leaderboard"} <= commands


@pytest.mark.parametrize(("doc", "line"), steps())
def test_each_step_parses(doc, line):
    parser().parse_args(argv(line))


@pytest.mark.parametrize(("doc", "line"), [s for s in steps() if s[1].startswith("ngu-points cost")])
def test_each_cost_step_runs(doc, line, capsys):
    assert main(argv(line)) == 0
    assert "cheaper" in capsys.readouterr().out
