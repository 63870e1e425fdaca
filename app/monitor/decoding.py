"""Hand decoding of ERC-721 `Transfer` logs from raw JSON-RPC log objects into ChainEvents.

ERC-20 and ERC-721 `Transfer` share one signature; ERC-721 indexes the token id, so its logs have
4 topics and an ERC-20 log (3 topics, amount in data) is not ours. Slicing the hex topics is ~100x
faster than web3's formatters (DESIGN §6); the result still passes through `build_event`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from app.events import ChainEvent, build_event

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"


def is_erc721_transfer(log: Mapping[str, Any]) -> bool:
    topics = log["topics"]
    return len(topics) == 4 and topics[0].lower() == TRANSFER_TOPIC


def log_block(log: Mapping[str, Any]) -> int:
    return int(log["blockNumber"], 16)


def decode_transfers(
    logs: Iterable[Mapping[str, Any]],
    *,
    chain_id: int,
    timestamps: Mapping[int, int],
    start_blocks: Mapping[str, int],
) -> list[ChainEvent]:
    """The ERC-721 transfers among `logs`, in chain order. `start_blocks` maps each watched contract
    (lowercase) to its first block; logs of other contracts or before that block are skipped."""
    events = []
    for log in logs:
        if not is_erc721_transfer(log):
            continue
        contract = log["address"].lower()
        block = log_block(log)
        if block < start_blocks.get(contract, block + 1):
            continue
        _, from_topic, to_topic, token_topic = log["topics"]
        events.append(
            build_event(
                chain_id=chain_id,
                contract=contract,
                token_id=int(token_topic, 16),
                from_address="0x" + from_topic[-40:],
                to_address="0x" + to_topic[-40:],
                block_number=block,
                block_hash=log["blockHash"],
                block_timestamp=timestamps[block],
                tx_hash=log["transactionHash"],
                tx_index=int(log["transactionIndex"], 16),
                log_index=int(log["logIndex"], 16),
            )
        )
    events.sort(key=lambda event: event.seq)
    return events
