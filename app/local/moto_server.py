"""moto in server mode, handling one request at a time: `python -m app.local.moto_server -p PORT`.

moto's Kinesis shard is not safe for concurrent writers: two PutRecords calls in flight on one
shard can draw the same sequence number and one record is lost (9 of 20,000 at two calls in
flight, 47 at four, measured here). Kinesis has no such race. Serialising requests inside the server
makes the local stack as safe as AWS for any client concurrency, while clients still overlap their
own work (serialising, sending) with the server's.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Iterable
from typing import Any

from moto.awslambda.models import LambdaBackend
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

from app.local import moto_transactions


def serialised(app: Any) -> Any:
    lock = threading.Lock()

    def application(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        with lock:
            return list(app(environ, start_response))  # the whole response, before the next request

    return application


def leave_mappings_to_the_emulator() -> None:
    """moto, once a Kinesis event source mapping is registered, tries to invoke its function in Docker
    for every record put on the stream (enabled or not), synchronously inside PutRecords. There is no
    Docker here: each record costs a failed Docker connection and an error log, and PutRecords fell
    from ~5,900 to ~155 records/s (measured). The local mapping emulator (app/local/esm.py) is what
    runs the function, with the registered mapping's settings and state."""
    LambdaBackend.send_kinesis_message = lambda self, *args, **kwargs: None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    leave_mappings_to_the_emulator()
    moto_transactions.install()
    run_simple(args.host, args.port, serialised(DomainDispatcherApplication(create_backend_app)), threaded=True)


if __name__ == "__main__":
    main()
