"""`cost`: the stack's monthly cost against a hand computation at two volumes, one where a provisioned
stream is cheaper and one where on-demand is; prices from the one price table, alarms from the catalog."""

import json
import subprocess
import sys

import pytest

from app.__main__ import main
from app.local.services import ROOT
from components.alarm_catalog import CATALOG

HOURS = 730
GIB = 1024**3


def cost(capsys, *argv):
    code = main(["cost", "--stage", "prod", "--json", *argv])
    return code, json.loads(capsys.readouterr().out)


def line(report, item):
    (found,) = [entry for entry in report["lines"] if entry["item"] == item]
    return found["usd"]


def test_a_million_events_a_month_on_demand_is_cheaper(capsys):
    code, report = cost(capsys, "--events-per-month", "1000000", "--event-bytes", "420")
    assert code == 0
    # by hand: 730 h x $0.04, plus 10^6 records of 1 KiB (rounded up) in at $0.08/GiB and out at $0.04/GiB
    on_demand = 730 * 0.04 + 1e6 * 1024 / GIB * (0.08 + 0.04)
    # 4 shards (an on-demand stream's starting capacity) x 730 h x $0.015, one PUT unit per record at $0.014/M
    provisioned = 4 * 730 * 0.015 + 1 * 0.014
    assert report["streamModes"] == {
        "ON_DEMAND": round(on_demand, 2),
        "PROVISIONED": round(provisioned, 2),
        "provisionedShards": 4,
    }
    assert report["cheaperStreamMode"] == "ON_DEMAND" and report["savingUsd"] == round(provisioned - on_demand, 2)
    assert line(report, "stream-hours") == pytest.approx(29.2)
    assert line(report, "transactional writes (5.2 WRU/event)") == pytest.approx(5.2 * 0.625)
    assert line(report, "reads (0.92 RRU/event)") == pytest.approx(0.92 * 0.125)
    assert line(report, "monitor host t4g.small") == pytest.approx(730 * 0.0168)
    assert line(report, f"alarms ({len(CATALOG)} in the catalog)") == pytest.approx(
        0.10 * sum(len(spec.metrics) for spec in CATALOG)
    )
    assert report["totalUsd"] == round(sum(entry["usd"] for entry in report["lines"]), 2)
    assert (report["region"], report["pricesDate"]) == ("us-east-1", "2026-11-29")


def test_five_billion_events_a_month_provisioned_is_cheaper(capsys):
    code, report = cost(capsys, "--events-per-month", "5000000000", "--event-bytes", "420")
    assert code == 0
    on_demand = 730 * 0.04 + 5e9 * 1024 / GIB * (0.08 + 0.04)
    # peak 3 x 5e9 / (730 x 3600 s) = 5,708 records/s: 6 shards of 1,000 records/s
    provisioned = 6 * 730 * 0.015 + 5000 * 0.014
    assert report["streamModes"] == {
        "ON_DEMAND": round(on_demand, 2),
        "PROVISIONED": round(provisioned, 2),
        "provisionedShards": 6,
    }
    assert report["cheaperStreamMode"] == "PROVISIONED"
    assert line(report, "transactional writes (5.2 WRU/event)") == pytest.approx(5e9 * 5.2 / 1e6 * 0.625)


def test_the_text_report_says_which_mode_is_cheaper(capsys):
    assert main(["cost", "--stage", "staging", "--events-per-month", "1000000"]) == 0
    out = capsys.readouterr().out
    assert "monitor host t4g.micro" in out
    assert out.splitlines()[-1].endswith("on-demand is cheaper by 14.50")


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--stage", "local", "--events-per-month", "5"], 1, "error: --stack-file "),
        (["--stage", "prod", "--events-per-month", "5", "--peak-factor", "0.5"], 2, "error: --peak-factor: at least 1"),
    ],
)
def test_bad_input_is_one_line(capsys, argv, code, message):
    assert main(["cost", *argv]) == code
    assert capsys.readouterr().err.startswith(message)


def test_cost_reads_the_stack_file_without_importing_pulumi():
    script = (
        "import sys; from app.__main__ import main; code = main(['cost', '--stage', 'prod', "
        "'--events-per-month', '1000', '--json']); assert 'pulumi' not in sys.modules, 'pulumi imported'; "
        "sys.exit(code)"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
