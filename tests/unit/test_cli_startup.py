"""The CLI builds only the named command's arguments: the monitor's start-up does not pay for the
imports of every other command (boto3, pydantic models, rich)."""

import subprocess
import sys

from app.__main__ import COMMANDS, parser


def _imported_after(argv: list[str]) -> set[str]:
    code = (
        "import sys; from app.__main__ import parser; "
        f"parser({argv!r}).parse_args({argv!r}); "
        "print(' '.join(m for m in ('boto3', 'rich', 'app.verify', 'app.reconcile') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_the_monitor_command_imports_no_other_command():
    assert _imported_after(["monitor", "--config", "monitor.yaml"]) == set()


def test_a_named_command_still_gets_its_own_arguments():
    args = parser(["cost", "--stage", "prod", "--events-per-month", "5"]).parse_args(
        ["cost", "--stage", "prod", "--events-per-month", "5"]
    )
    assert args.stage == "prod" and args.events_per_month == 5


def test_without_arguments_every_command_is_built():
    """parser() alone (the runbook test parses every documented step with it) knows every option."""
    built = parser()
    assert built.parse_args(["cost", "--stage", "prod", "--events-per-month", "5"]).events_per_month == 5
    assert built.parse_args(["monitor", "--config", "m.yaml"]).config == "m.yaml"
    assert {c.name for c in COMMANDS} == set(built._subparsers._group_actions[0].choices)
