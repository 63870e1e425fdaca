"""Progress bars of operator commands: on a terminal's stderr only, never in piped output."""

import os
import subprocess
import sys

from app.local.services import ROOT

SCRIPT = (
    "import time\n"
    "from app.progress import progress_bar\n"
    "with progress_bar('reading Transfer logs', total=4) as advance:\n"
    "    advance(1); time.sleep(0.5); advance(3)\n"
    "print('report')\n"
)


def run(stderr):
    return subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, timeout=30, text=True
    )


def test_a_terminal_sees_the_bar_and_stdout_only_the_report():
    leader, follower = os.openpty()
    try:
        done = run(follower)
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
    assert done.returncode == 0 and done.stdout == "report\n"
    assert b"reading Transfer logs" in shown


def test_piped_output_has_no_bar():
    done = run(subprocess.PIPE)
    assert done.returncode == 0 and done.stdout == "report\n" and done.stderr == ""
