"""SIGINT / SIGTERM stop the demo at any moment and leave no process and no port behind."""

import signal
import threading
import time

import psutil
import pytest

from tests.local.demo_process import DemoRun, listening_ports, port_is_free, still_running


def at_start_up(demo):
    demo.wait_for_child("app.local.moto_server")  # moto is starting: Ctrl-C here used to leave it running
    return "moto_server"


def mid_run(demo):
    demo.wait_for_line(r"^fault +monitor restarted")


def during_the_final_check(demo):
    demo.wait_for_child("app reconcile")  # the product's reconcile command, checking the ledger
    return "reconcile"


def kind(process):
    try:
        command = " ".join(process.cmdline())
    except psutil.NoSuchProcess:
        return "gone"
    for fragment, name in KINDS:
        if fragment in command:
            return name
    return command


KINDS = [
    ("anvil", "anvil"),
    ("app.local.moto_server", "moto_server"),
    ("app monitor", "monitor"),
    ("multiprocessing.spawn", "environment"),
    ("resource_tracker", "resource tracker"),
    ("app reconcile", "reconcile"),
]


class Stop:
    """One demo stopped by `sig` at `moment`: what it had started, followed until it is gone."""

    def __init__(self, sig, moment):
        self.sig = sig
        self.demo = DemoRun("--quick")
        self.moment = moment

    def send(self):
        # The kind of child a moment waited for was running when found; a quick one (reconcile at
        # --quick size) may end before the snapshot below, so it counts as seen.
        found = self.moment(self.demo)
        seen = {found} if found is not None else set()
        self.started = self.demo.descendants()
        self.ports = listening_ports(self.started)
        self.kinds = {kind(p) for p in self.started} | seen
        self.demo.process.send_signal(self.sig)
        self.follower = threading.Thread(target=self._follow, daemon=True)
        self.follower.start()

    def _follow(self):
        # Anything started after the snapshot counts too, until the demo is gone.
        while self.demo.process.poll() is None:
            self.started += [p for p in self.demo.descendants() if p not in self.started]
            time.sleep(0.02)

    def check(self):
        code = self.demo.finish()
        self.follower.join(10)
        output = self.demo.output
        assert code == 128 + self.sig, output
        assert f"stopped       by {self.sig.name}: every process the demo started is stopped" in output
        assert self.started, "the test should have caught the demo with processes running"
        assert still_running(self.started) == []
        assert all(port_is_free(port) for port in self.ports)
        if self.moment is during_the_final_check:
            assert "reconcile" in self.kinds, self.kinds
        if self.moment is mid_run:  # everything was up: the chain, AWS, the monitor, the environments
            assert {"anvil", "moto_server", "monitor", "environment"} <= self.kinds, self.kinds
            assert len(self.ports) >= 2


@pytest.mark.integration
@pytest.mark.parametrize("moment", [at_start_up, mid_run, during_the_final_check])
def test_sigint_and_sigterm_stop_every_process_the_demo_started(moment):
    # Two demos side by side, one per signal: the test's time is one demo's, not two.
    stops = [Stop(signal.SIGINT, moment), Stop(signal.SIGTERM, moment)]
    try:
        for stop in stops:
            stop.send()
        for stop in stops:
            stop.check()
    except BaseException:
        for stop in stops:
            stop.demo.kill()
        raise
