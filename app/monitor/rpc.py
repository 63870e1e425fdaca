"""Raw JSON-RPC over HTTP: single calls and batches, results left as the node sent them.

Raw on purpose: web3's result formatters decode ~4k logs/s, while the fields the monitor needs can
be sliced out of the JSON at ~490k/s (DESIGN §6). The HTTP client is urllib3 (botocore's own, so
already imported) on a small thread pool, not aiohttp: importing aiohttp took ~120 ms of the time
from process start to the first eth_getLogs, and the monitor's few concurrent calls (a range's
logs beside its header batches) need no more than a pool of keep-alive connections.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import urllib3

CONNECTIONS = 8


class RpcError(Exception):
    """The node answered with a JSON-RPC error."""

    def __init__(self, method: str, code: int | None, message: str) -> None:
        super().__init__(f"{method}: {message} (code {code})")
        self.method = method
        self.code = code
        self.message = message


class RpcUnavailable(Exception):
    """The node could not be reached or did not answer in time (the URL is never included)."""


class JsonRpc:
    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self._url = url
        self._timeout = urllib3.Timeout(total=timeout)
        self._ids = itertools.count(1)
        self._pool: urllib3.PoolManager | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def __aenter__(self) -> JsonRpc:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        if self._pool is not None:
            self._pool.clear()
            self._pool = None

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        request = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
        return _result(method, await self._post(request, method))

    async def batch(
        self, method: str, params_list: Sequence[Sequence[Any]], *, return_errors: bool = False
    ) -> list[Any]:
        """One HTTP request carrying one call of `method` per params; results in the same order.
        With `return_errors`, a call the node refused is its RpcError in the list instead of raised."""
        if not params_list:
            return []
        first = next(self._ids)
        requests = [
            {"jsonrpc": "2.0", "id": first + offset, "method": method, "params": list(params)}
            for offset, params in enumerate(params_list)
        ]
        self._ids = itertools.count(first + len(requests))
        answers = await self._post(requests, method)
        if isinstance(answers, dict):  # some nodes answer a whole batch with one error object
            by_id = {request["id"]: answers for request in requests}
        elif isinstance(answers, list):
            by_id = {answer.get("id"): answer for answer in answers if isinstance(answer, dict)}
        else:
            raise RpcError(method, None, f"batch answer is a {type(answers).__name__}, not a list")
        results = []
        for request in requests:
            try:
                results.append(_result(method, by_id.get(request["id"], {})))
            except RpcError as error:
                if not return_errors:
                    raise
                results.append(error)
        return results

    async def _post(self, body: Any, method: str) -> Any:
        if self._pool is None:
            self._pool = urllib3.PoolManager(maxsize=CONNECTIONS, retries=False, timeout=self._timeout)
            self._executor = ThreadPoolExecutor(CONNECTIONS, thread_name_prefix="json-rpc")
        data = json.dumps(body).encode()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._send, data, method)

    def _send(self, data: bytes, method: str) -> Any:
        try:
            response = self._pool.request(
                "POST", self._url, body=data, headers={"Content-Type": "application/json"}, preload_content=True
            )
        except urllib3.exceptions.HTTPError as error:
            raise RpcUnavailable(f"{method}: {type(error).__name__}") from None
        content_type = response.headers.get("Content-Type", "")
        if response.status >= 400 and "json" not in content_type:
            raise RpcUnavailable(f"{method}: HTTP {response.status}")
        try:
            return json.loads(response.data)
        except ValueError:
            raise RpcUnavailable(f"{method}: the answer is not JSON (HTTP {response.status})") from None


def _result(method: str, answer: Any) -> Any:
    if not isinstance(answer, dict):
        raise RpcError(method, None, f"answer is a {type(answer).__name__}, not a JSON-RPC object")
    if "error" in answer:
        error = answer["error"] or {}
        raise RpcError(method, error.get("code"), str(error.get("message", error)))
    if "result" not in answer:
        raise RpcError(method, None, "answer has neither result nor error")
    return answer["result"]
