"""`make demo` at the quick size: the pipeline survives its faults, the ledger matches the chain, and
operator commands work against the running demo stack under the `local` stage's names."""

import json
import os
import re
import signal
import subprocess
import sys

import pytest

from app.local.services import ROOT
from tests.local.demo_process import DemoRun, still_running

BOARD_ROW = re.compile(r"^\s+(\d+)\s+(0x[0-9a-f]{40})\s+(\d+\.\d{6})\s+(\d+)$", re.M)


def check_the_scenario(out):
    # the mapping runs with the stack file's settings, not the emulator's defaults
    assert re.search(
        r"^mapping +\S+ from Pulumi.staging.yaml: 4 shards, batch 100, parallelization 10, retries 3, max age 43200s",
        out,
        re.M,
    )
    assert re.search(r"^fault +monitor SIGKILLed \(checkpoint at block \d+\)$", out, re.M)
    assert re.search(r"^fault +monitor restarted", out, re.M)
    redelivered = int(re.search(r"^fault +(\d+) records already on the stream put on it again$", out, re.M)[1])
    assert redelivered > 0
    transfers = int(re.search(r"^chain +done: (\d+) transfers", out, re.M)[1])
    assert transfers >= 36
    handled = re.search(
        r"^consumer +\d+ invocations .*, (\d+) records handled, 1 quarantined, 0 sent to S3$", out, re.M
    )
    assert handled, out
    # every transfer, the redelivered stretch, the poison record; and what the restarted monitor published again
    assert int(handled[1]) >= transfers + redelivered + 1
    assert re.search(r"^progress +head \d+, monitor \w+ at block \d+ .*records published \d+, applied \d+", out, re.M)
    # the product's reconcile command checked owners (ownerOf) and points (recomputed from the logs)
    assert re.search(r"^check +python -m app reconcile --config \S+monitor.yaml --stage local$", out, re.M)
    assert re.search(r"^  \d+ tokens, 5 holders up to block \d+: consistent$", out, re.M)
    assert "the ledger matches the chain" in out and "MISMATCH" not in out
    board = BOARD_ROW.findall(out)
    assert len(board) == 5 and all(float(points) > 0 for _, _, points, _ in board)


@pytest.mark.integration
def test_the_quick_scenario_matches_the_chain_and_operator_commands_read_the_running_stack():
    demo = DemoRun("--quick", "--keep-running")
    try:
        # only a clean check keeps the stack up
        endpoint = demo.wait_for_line(r"^stack up +AWS_ENDPOINT_URL=(\S+) ", timeout=120)[1]
        check_the_scenario(demo.output)
        at = demo.wait_for_line(r"^leaderboard +at block \d+ \(t=(\d+)\)")[1]
        board = [(int(r), holder, points, int(t)) for r, holder, points, t in BOARD_ROW.findall(demo.output)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }

        def operator(*args):  # names resolved from the stage's SSM parameters, as against a deployed stage
            command = [sys.executable, "-m", "app", *args, "--stage", "local"]
            done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            return json.loads(done.stdout)

        leaderboard = operator("leaderboard", "--at", at, "--limit", "10")
        assert [(r["rank"], r["holder"], r["points"], r["tokensHeld"]) for r in leaderboard] == board
        _, top, points, tokens = board[0]
        answer = operator("points", top, "--at", at)
        assert (answer["holder"], answer["at"], answer["points"], answer["tokensHeld"]) == (
            top,
            int(at),
            points,
            tokens,
        )
        started = demo.descendants()
        demo.process.send_signal(signal.SIGTERM)
        code = demo.finish()
    except BaseException:
        demo.kill()
        raise
    assert code == 128 + signal.SIGTERM
    assert still_running(started) == []
