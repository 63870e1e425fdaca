"""Raw JSON-RPC over HTTP (aiohttp): single calls and batches, results left as the node sent them.

Raw on purpose: web3's result formatters decode ~4k logs/s, while the fields the monitor needs can
be sliced out of the JSON at ~490k/s (DESIGN §6). Keep-alive connections, one session per monitor.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import aiohttp


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
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._ids = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> JsonRpc:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

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
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(self._url, json=body) as response:
                if response.status >= 400 and response.content_type != "application/json":
                    raise RpcUnavailable(f"{method}: HTTP {response.status}")
                return await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise RpcUnavailable(f"{method}: {type(error).__name__}") from None


def _result(method: str, answer: Any) -> Any:
    if not isinstance(answer, dict):
        raise RpcError(method, None, f"answer is a {type(answer).__name__}, not a JSON-RPC object")
    if "error" in answer:
        error = answer["error"] or {}
        raise RpcError(method, error.get("code"), str(error.get("message", error)))
    if "result" not in answer:
        raise RpcError(method, None, "answer has neither result nor error")
    return answer["result"]
