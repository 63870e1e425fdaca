"""SIGINT / SIGTERM stop the demo at any moment and leave no process and no port behind."""

import signal
import time

import psutil
import pytest

from tests.local.demo_process import DemoRun, listening_ports, port_is_free, still_running


def at_start_up(demo):
    demo.wait_for_child("app.local.moto_server")  # moto is starting: Ctrl-C here used to leave it running


def mid_run(demo):
    demo.wait_for_line(r"^fault +monitor restarted")


def during_the_final_check(demo):
    demo.wait_for_line(r"^chain +done: .* draining")


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
]


@pytest.mark.integration
@pytest.mark.parametrize("moment", [at_start_up, mid_run, during_the_final_check])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_signal_stops_every_process_the_demo_started(sig, moment):
    demo = DemoRun("--quick")
    try:
        moment(demo)
        started = demo.descendants()
        ports = listening_ports(started)
        kinds = {kind(p) for p in started}
        demo.process.send_signal(sig)
        # Anything started after the snapshot counts too, until the demo is gone.
        while demo.process.poll() is None:
            started += [p for p in demo.descendants() if p not in started]
            time.sleep(0.02)
        code = demo.finish()
    except BaseException:
        demo.kill()
        raise
    assert code == 128 + sig, demo.output
    assert f"stopped       by {sig.name}: every process the demo started is stopped" in demo.output
    assert started, "the test should have caught the demo with processes running"
    assert still_running(started) == []
    assert all(port_is_free(port) for port in ports)
    if moment is mid_run:  # everything was up: the chain, AWS, the monitor, the execution environments
        assert {"anvil", "moto_server", "monitor", "environment"} <= kinds, kinds
        assert len(ports) >= 2
