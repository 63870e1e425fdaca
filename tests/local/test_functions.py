"""The local stack runs concurrent invocations of the handler in separate execution environments."""

import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.local.esm import InvocationContext
from app.local.functions import ExecutionEnvironments, FunctionError

HANDLER = "tests.local.environment_handler.handler"


def context(seconds=30):
    return InvocationContext(deadline=time.monotonic() + seconds)


@pytest.fixture(scope="module")
def environments():
    with ExecutionEnvironments(HANDLER, {"STAGE": "envtest"}, size=2) as pool:
        yield pool


def test_concurrent_invocations_run_in_separate_processes_with_the_function_environment(environments):
    with ThreadPoolExecutor(2) as threads:
        answers = list(threads.map(lambda _: environments({"sleep": 0.3}, context()), range(2)))
    pids = {a["pid"] for a in answers}
    assert len(pids) == 2 and os.getpid() not in pids
    assert {a["stage"] for a in answers} == {"envtest"}
    assert all(0 < a["remaining_ms"] <= 30_000 for a in answers)


def test_a_handler_exception_is_a_function_error_naming_it(environments):
    with pytest.raises(FunctionError, match="ValueError: boom"):
        environments({"raise": "boom"}, context())


def test_an_invocation_past_the_function_timeout_is_a_function_error():
    with ExecutionEnvironments(HANDLER, {}, size=1) as pool:
        pool({}, context())  # the cold start, outside the timed invocation
        with pytest.raises(FunctionError, match="timed out"):
            pool({"sleep": 2}, context(seconds=0.2))
