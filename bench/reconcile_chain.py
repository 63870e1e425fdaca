"""What reconcile asks the chain, beside a naive baseline, in one run.

    .venv/bin/python -m bench.reconcile_chain [--tokens 5000]

A chain on anvil (from node_modules) with N tokens minted in batches of 250 and N/10 transfers.
Measured: `ownerOf` of every token at one block, batched JSON-RPC (reconcile: 100 calls a request)
against one call per request (the baseline), and reading the whole Transfer history with the
monitor's RangeReader (reconcile's log reader). Both owner paths must agree or the run fails.
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import UTC, datetime

from app.local.chain import Chain
from app.local.services import CHAIN_ID, Anvil
from app.monitor.config import MonitorConfig
from app.reconcile_chain import ChainClient, address_of

BATCH_MINT = 250


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=5000)
    tokens = parser.parse_args().tokens
    with Anvil() as anvil:
        chain = Chain(anvil)
        for first in range(1, tokens + 1, BATCH_MINT):
            chain.batch_mint(1 + first % 5, first, min(BATCH_MINT, tokens + 1 - first))
        for token_id in range(1, tokens + 1, 10):
            chain.transfer(1 + token_id % 5, 1 + (token_id + 1) % 5, token_id)
        chain.mine(1)
        head = chain.head
        config = MonitorConfig(
            stage="bench",
            chain_id=CHAIN_ID,
            rpc_url=anvil.ws_url,
            confirmations=0,
            contracts=[{"address": chain.address, "start_block": chain.deploy_block}],
            checkpoint_file="/dev/null",
        )
        client = ChainClient(config, anvil.http_url)
        keys = [f"{CHAIN_ID}:{chain.address}:{i}" for i in range(1, tokens + 1)]

        started = time.perf_counter()
        batched = client.run(lambda c: c.owners(keys, head))
        batched_s = time.perf_counter() - started

        async def one_by_one(c: ChainClient) -> dict[str, str | None]:
            return {key: await c.owner_word(key, head) for key in keys}

        started = time.perf_counter()
        single = client.run(one_by_one)
        single_s = time.perf_counter() - started
        if {k: address_of(v) for k, v in single.items()} != batched:  # type: ignore[arg-type]
            raise SystemExit("batched and one-by-one ownerOf disagree")

        started = time.perf_counter()
        history = client.run(lambda c: c.history(head))
        history_s = time.perf_counter() - started

    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {platform.machine()} · Python {platform.python_version()}")
    print(f"{tokens:,} tokens, {len(history.events):,} Transfers in {head - chain.deploy_block + 1:,} blocks\n")
    print("| step | requests | seconds | per second |")
    print("|---|---:|---:|---:|")
    print(
        f"| ownerOf, batched 100 a request (reconcile) | {-(-tokens // 100):,} | {batched_s:.2f} | {tokens / batched_s:,.0f} tokens |"
    )
    print(f"| ownerOf, one a request (baseline) | {tokens:,} | {single_s:.2f} | {tokens / single_s:,.0f} tokens |")
    print(f"| Transfer history (RangeReader) | - | {history_s:.2f} | {len(history.events) / history_s:,.0f} events |")


if __name__ == "__main__":
    main()
