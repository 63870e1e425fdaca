"""A handler for the execution-environment tests: reports where and how it ran."""

import os
import time


def handler(event, context):
    if event.get("raise"):
        raise ValueError(event["raise"])
    time.sleep(event.get("sleep", 0))
    return {
        "pid": os.getpid(),
        "stage": os.environ.get("STAGE"),
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
