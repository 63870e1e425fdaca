"""`make demo` runs the whole pipeline and checks the ledger against the chain."""

import re
import subprocess
import sys

import pytest

from app.local.services import ROOT


@pytest.mark.integration
def test_demo_pipeline_matches_the_chain_in_both_rounds():
    done = subprocess.run([sys.executable, "-m", "app", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert out.count("matches the chain: yes") == 2
    assert "the ledger matches the chain in every round" in out
    # round 1: 12 mints + 4 moves; round 2 adds a batch mint of 20 and 2 transfers, and one junk record
    assert re.search(r"consumer +\d+ invocations, 16 records delivered, 0 quarantined, 0 sent to S3", out)
    assert re.search(r"consumer +\d+ invocations, 39 records delivered, 1 quarantined, 0 sent to S3", out)
    board = re.findall(r"^\s+1\s+(0x[0-9a-f]{40})\s+(\d+\.\d{6})\s+(\d+)$", out, re.M)
    assert len(board) == 2 and all(float(points) > 0 for _, points, _ in board)
