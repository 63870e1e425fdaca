"""A stop signal that lands while a child is being started (held by the shield until the start's
block ends) stops that child: the demo never leaks a process it had just started."""

import os
import signal

import pytest

from app.local import services
from app.local.services import Anvil, MotoServer
from app.local.signals import Stopped, StopSignals


@pytest.mark.parametrize("server", [MotoServer, Anvil])
def test_a_signal_during_the_start_stops_the_child_just_started(server, monkeypatch):
    started = []
    real_start = services.start_process

    def start_then_signal(command, **kwargs):
        process = real_start(command, **kwargs)
        started.append(process)
        os.kill(os.getpid(), signal.SIGTERM)  # arrives inside the shield: raised when the block ends
        return process

    monkeypatch.setattr(services, "start_process", start_then_signal)
    try:
        with StopSignals(), pytest.raises(Stopped):
            server().start()
        assert len(started) == 1
        assert started[0].poll() is not None, "the child started under the signal is still running"
    finally:
        for process in started:  # whatever the outcome, the test stops what it started
            services.stop_process(process)
