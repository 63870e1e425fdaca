"""Head tracking: the WebSocket `newHeads` subscription as a doorbell, in its own task.

It only wakes the reader (events come from eth_getLogs over HTTP), so a lost message or a dropped
socket can never leave a gap; the reader's poll timer covers a silent socket. web3.py neither
reconnects nor resubscribes (a clean close ends its loop silently) and its full subscription queue
blocks every RPC on the socket, so this is a plain `websockets` client that drains every message at
once, reconnects with backoff and subscribes again.
"""

from __future__ import annotations

import asyncio
import json

from app.monitor.backoff import Backoff
from app.monitor.config import redact
from app.monitor.telemetry import logger

RECONNECT_BACKOFF = Backoff(base=0.5, cap=5.0)


class HeadWatcher:
    def __init__(self, url: str, *, backoff: Backoff = RECONNECT_BACKOFF) -> None:
        self.url = url
        self.backoff = backoff
        self.connected = False
        self.latest: int | None = None
        self.subscriptions = 0
        self._bell = asyncio.Event()

    async def wait(self, timeout: float) -> bool:
        """Wait for a new head (True) or the poll timer (False)."""
        try:
            await asyncio.wait_for(self._bell.wait(), timeout)
        except TimeoutError:
            return False
        finally:
            self._bell.clear()
        return True

    async def run(self) -> None:
        # Imported here, off the path from process start to the first eth_getLogs (~30 ms).
        import websockets
        from websockets.asyncio.client import connect

        attempt = 0
        while True:
            try:
                async with connect(self.url, open_timeout=10, ping_interval=20, ping_timeout=20, max_size=None) as ws:
                    await ws.send(
                        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]})
                    )
                    async for message in ws:
                        if self._receive(json.loads(message)):
                            attempt = 0
                logger.warning("websocket closed by the node; reconnecting", extra={"url": redact(self.url)})
            except (
                OSError,
                TimeoutError,
                websockets.WebSocketException,
                SubscriptionRefused,
                ValueError,
                KeyError,
            ) as error:
                if self.connected or attempt == 0:
                    logger.warning(
                        "websocket lost; reconnecting", extra={"url": redact(self.url), "error": type(error).__name__}
                    )
            self.connected = False
            attempt += 1
            await asyncio.sleep(self.backoff.delay(attempt))

    def _receive(self, message: dict) -> bool:
        """Handle one message; True when it confirmed the subscription."""
        if message.get("id") == 1:
            if "error" in message:
                raise SubscriptionRefused(str(message["error"]))
            self.connected = True
            self.subscriptions += 1
            logger.info(
                "websocket subscribed to newHeads", extra={"url": redact(self.url), "subscriptions": self.subscriptions}
            )
            self._bell.set()  # catch up on whatever was mined while disconnected
            return True
        if message.get("method") == "eth_subscription":
            head = message["params"]["result"]
            number = int(head["number"], 16)
            self.latest = number if self.latest is None else max(self.latest, number)
            self._bell.set()
        return False


class SubscriptionRefused(Exception):
    pass
