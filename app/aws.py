"""AWS clients as every part of the app makes them.

Retries belong to botocore (adaptive mode: backoff plus client-side rate limiting on throttles).
The region comes from AWS_REGION, the variable Lambda and DESIGN §10 name, before botocore's own
AWS_DEFAULT_REGION (botocore alone does not read AWS_REGION).
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from botocore.config import Config

from app.errors import remember_request

RETRY_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 10}, connect_timeout=5, read_timeout=10)


def client(service: str, *, config: Config = RETRY_CONFIG, **kwargs: Any) -> Any:
    kwargs.setdefault("region_name", os.environ.get("AWS_REGION") or None)
    made = boto3.client(service, config=config, **kwargs)
    # So that an error can name the table, stream, bucket or queue AWS says is missing (app/errors.py).
    made.meta.events.register("provide-client-params", remember_request)
    return made
