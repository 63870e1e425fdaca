"""A JSON-RPC proxy in front of anvil that misbehaves on cue, for the monitor's fault tests.

Rules see each call (a batch's calls one by one) and may answer it themselves, using `forward`
to reach the node; calls no rule takes are forwarded as they came (a batch stays one request).
While a rule runs, every other request waits (`hold`), so "between the logs and the headers" is
deterministic: a reorg a rule triggers lands before any header the monitor asked for concurrently.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

Call = dict[str, Any]
Rule = Callable[[Call, Callable[[Call], Call]], Call | None]


class RpcProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.rules: list[Rule] = []
        self.calls: Counter[str] = Counter()
        self.requests = 0  # HTTP requests (a batch is one)
        self.ranges = 0  # range eth_getLogs calls
        self.first_get_logs: float | None = None  # time.perf_counter() of the first eth_getLogs
        self.hold = threading.RLock()
        self._local = threading.local()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> RpcProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> RpcProxy:
        return self.start()

    def __exit__(self, *_: Any) -> None:
        self.stop()

    def forward(self, body: Any) -> Any:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session.post(self.upstream, json=body, timeout=60).json()

    def node(self, method: str, params: list | None = None) -> Any:
        """Call the node directly (not through the rules); the result, or raise on an error."""
        answer = self.forward({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def handle(self, body: Any) -> Any:
        calls = body if isinstance(body, list) else [body]
        with self.hold:
            self.requests += 1
            for call in calls:
                if call.get("method") == "eth_getLogs":
                    if self.first_get_logs is None:
                        self.first_get_logs = time.perf_counter()
                    self.ranges += is_range_logs(call)
            answers: dict[int, Any] = {}
            passed = []
            for index, call in enumerate(calls):
                self.calls[call.get("method", "?")] += 1
                for rule in list(self.rules):
                    answer = rule(call, self.forward)
                    if answer is not None:
                        answers[index] = answer
                        break
                else:
                    passed.append(index)
            if passed:
                forwarded = self.forward([calls[i] for i in passed] if isinstance(body, list) else calls[0])
                for index, answer in zip(passed, forwarded if isinstance(body, list) else [forwarded], strict=True):
                    answers[index] = answer
        ordered = [answers[i] for i in range(len(calls))]
        return ordered if isinstance(body, list) else ordered[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                data = json.dumps(proxy.handle(body)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        return Handler


def result(call: Call, value: Any) -> Call:
    return {"jsonrpc": "2.0", "id": call.get("id"), "result": value}


def error(call: Call, message: str, code: int = -32000) -> Call:
    return {"jsonrpc": "2.0", "id": call.get("id"), "error": {"code": code, "message": message}}


def is_range_logs(call: Call) -> bool:
    return call.get("method") == "eth_getLogs" and "fromBlock" in (call.get("params") or [{}])[0]


def reorg_after_logs(proxy: RpcProxy, when: Callable[[int, int], bool], reorg: Callable[[], None]) -> Rule:
    """Once: the first range `eth_getLogs` with `when(from, to)` is answered by the node, then
    `reorg()` runs before the answer is returned (and before any other call is forwarded)."""
    fired = threading.Event()

    def rule(call: Call, forward: Callable[[Call], Call]) -> Call | None:
        if fired.is_set() or not is_range_logs(call):
            return None
        query = call["params"][0]
        if not when(int(query["fromBlock"], 16), int(query["toBlock"], 16)):
            return None
        answer = forward(call)
        reorg()
        fired.set()
        return answer

    rule.fired = fired  # type: ignore[attr-defined]
    return rule


def replica_behind(proxy: RpcProxy, lag: int = 1) -> Rule:
    """`eth_getLogs` answered as by a replica `lag` blocks behind the node: a range answer holds no
    log of the newest `lag` blocks, and a read by hash of one of them is refused (unknown block)."""

    def rule(call: Call, forward: Callable[[Call], Call]) -> Call | None:
        if call.get("method") != "eth_getLogs":
            return None
        replica_head = int(proxy.node("eth_blockNumber"), 16) - lag
        query = call["params"][0]
        if "blockHash" in query:
            block = proxy.node("eth_getBlockByHash", [query["blockHash"], False])
            if block is None or int(block["number"], 16) > replica_head:
                return error(call, "unknown block")
            return None
        answer = forward(call)
        if "result" in answer:
            kept = [log for log in answer["result"] if int(log["blockNumber"], 16) <= replica_head]
            rule.hidden += len(answer["result"]) - len(kept)  # type: ignore[attr-defined]
            answer["result"] = kept
        return answer

    rule.hidden = 0  # type: ignore[attr-defined]  # logs left out of range answers so far
    return rule
