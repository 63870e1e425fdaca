"""AWS clients as every part of the app makes them.

Retries belong to botocore (adaptive mode: backoff plus client-side rate limiting on throttles).
The region comes from AWS_REGION, the variable Lambda and DESIGN §10 name, before botocore's own
AWS_DEFAULT_REGION (botocore alone does not read AWS_REGION).

Clients come from one botocore session per process, as `boto3.client` makes them from its default
session, without importing boto3 (its resource layer and s3transfer: ~20 ms of the monitor's
start-up, and no caller here uses them). A botocore session is not safe to make clients from in
several threads at once, hence the lock; the clients themselves are.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from botocore.config import Config

from app.errors import remember_request

RETRY_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 10}, connect_timeout=5, read_timeout=10)

_lock = threading.Lock()
_session: Any = None


def client(service: str, *, config: Config = RETRY_CONFIG, **kwargs: Any) -> Any:
    kwargs.setdefault("region_name", os.environ.get("AWS_REGION") or None)
    with _lock:
        made = _current_session().create_client(service, config=config, **kwargs)
    # So that an error can name the table, stream, bucket or queue AWS says is missing (app/errors.py).
    made.meta.events.register("provide-client-params", remember_request)
    return made


def reset() -> None:
    """Forget the session (and the credentials it resolved): the next client starts afresh."""
    global _session
    with _lock:
        _session = None


def _current_session() -> Any:
    global _session
    if _session is None:
        import botocore.session

        _session = botocore.session.get_session()
    return _session
