"""One error path for every `python -m app` command: what went wrong, in one line, and the exit code.

Exit codes (DESIGN §10): 2 bad input, 1 something missing or refused. AWS errors name the
resource: DynamoDB, SQS and SSM say only "not found", so every client made by `app.aws` remembers
the parameters of its last request (`remember_request`) and the message names the table, stream,
bucket, queue or parameter from them.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)


class OperatorError(Exception):
    """A one-line error for the operator; `code` 2 for bad input, 1 for a thing that is not there."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


_NOT_FOUND = frozenset(
    {
        "ResourceNotFoundException",  # DynamoDB, Kinesis
        "NoSuchBucket",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
        "ParameterNotFound",
    }
)
# Request parameters that name a resource, and what to call it.
_NAMES = (
    ("TableName", "table"),
    ("StreamName", "stream"),
    ("StreamARN", "stream"),
    ("Bucket", "bucket"),
    ("QueueUrl", "queue"),
    ("QueueName", "queue"),
    ("Name", "SSM parameter"),
)

# Operation name -> the parameters of its last call in this context (a failed call may be followed
# by others, e.g. a redrive showing its messages again, before the error reaches `describe`).
_last_requests: ContextVar[dict[str, dict[str, Any]]] = ContextVar("last_aws_requests")


def remember_request(params: dict[str, Any], model: Any, **_: Any) -> None:
    """botocore `provide-client-params` handler: keep the operation's parameters for `describe`."""
    requests = _last_requests.get(None)
    if requests is None:
        requests = {}
        _last_requests.set(requests)
    requests[model.name] = params


def describe(error: BaseException) -> tuple[str, int] | None:
    """The one-line message and exit code for an error a person can act on; None for a defect."""
    if isinstance(error, OperatorError):
        return str(error), error.code
    if isinstance(error, NoCredentialsError):
        return "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE", 1
    if isinstance(error, NoRegionError):
        return "no AWS region: set AWS_REGION", 1
    if isinstance(error, EndpointConnectionError):
        return f"cannot reach AWS at {error.kwargs.get('endpoint_url')} (check AWS_ENDPOINT_URL / AWS_REGION)", 1
    if isinstance(error, BotoCoreError):
        return _one_line(str(error)), 1
    if isinstance(error, ClientError):
        return _client_error(error), 1
    return None


def one_line_errors(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except Exception as error:
            described = describe(error)
            if described is None:
                raise
            message, code = described
            print(f"error: {message}", file=sys.stderr)
            return code

    return run


def _client_error(error: ClientError) -> str:
    details = error.response.get("Error", {})
    code = details.get("Code", "Error")
    resource = _resource(error.operation_name)
    if code in _NOT_FOUND and resource:
        return f"{resource}: not found ({error.operation_name}: {code})"
    where = f" on {resource}" if resource else ""
    return _one_line(f"{error.operation_name}{where}: {code}: {details.get('Message', '')}")


def _resource(operation: str) -> str | None:
    """What the failed request was about, from its remembered parameters."""
    params = _last_requests.get({}).get(operation)
    if params is None:
        return None
    tables = list(params.get("RequestItems") or {}) or [
        op.get("TableName") for item in params.get("TransactItems") or [] for op in item.values()
    ]
    if tables:
        return f"table {', '.join(dict.fromkeys(t for t in tables if t))}"
    for key, kind in _NAMES:
        if params.get(key):
            return f"{kind} {params[key]}"
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())
