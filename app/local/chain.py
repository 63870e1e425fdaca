"""The NGU test token on a local chain, driven through web3 with anvil's unlocked accounts.

Every Transfer the token emits is recorded as the chain reports it (decoded by web3 from the
receipts, independently of the monitor), so tests and the demo can check what reached the ledger.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from web3 import Web3
from web3.logs import DISCARD

from app.local.services import ROOT, Anvil

BLOCK_TX_GAS = 300_000
ARTIFACT = ROOT / "contracts" / "build" / "NGU.json"


@dataclass(frozen=True)
class ChainTransfer:
    token_id: int
    from_address: str
    to_address: str
    block_number: int
    block_hash: str
    tx_hash: str
    tx_index: int
    log_index: int

    @property
    def seq(self) -> int:
        return self.block_number * 1_000_000 + self.log_index


class Chain:
    def __init__(self, anvil: Anvil) -> None:
        self.anvil = anvil
        self.w3 = Web3(Web3.HTTPProvider(anvil.http_url, request_kwargs={"timeout": 30}))
        self.accounts = [a.lower() for a in self.w3.eth.accounts]
        self.minter = self.w3.eth.accounts[0]
        artifact = json.loads(ARTIFACT.read_text())
        self.abi = artifact["abi"]
        factory = self.w3.eth.contract(abi=self.abi, bytecode=artifact["bytecode"])
        receipt = self._wait(factory.constructor().transact({"from": self.minter}))
        self.address = receipt["contractAddress"].lower()
        self.deploy_block = receipt["blockNumber"]
        self.token = self.w3.eth.contract(address=receipt["contractAddress"], abi=self.abi)
        self.transfers: list[ChainTransfer] = []
        self.latest_block = self.deploy_block  # the newest block this driver made (other threads read it)
        self._block: list[str] | None = None  # hashes sent inside `one_block`
        self._timestamps: dict[int, int] = {}

    def reattach(self) -> None:
        self.w3 = Web3(Web3.HTTPProvider(self.anvil.http_url, request_kwargs={"timeout": 30}))
        self.token = self.w3.eth.contract(address=Web3.to_checksum_address(self.address), abi=self.abi)

    def account(self, index: int) -> str:
        return Web3.to_checksum_address(self.accounts[index])

    def _wait(self, tx_hash: bytes) -> Any:
        return self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.01)

    def _send(self, call: Any, sender: str | None = None, gas: int | None = None) -> Any:
        if self._block is not None:
            return self._send_raw(call, sender or self.minter, gas or BLOCK_TX_GAS)
        options: dict[str, Any] = {"from": sender or self.minter}
        if gas:
            options["gas"] = gas
        return self._receipt(call.transact(options))

    def _send_raw(self, call: Any, sender: str, gas: int) -> str:
        """One eth_sendTransaction, the node filling in nonce and fees: web3's transact costs four or
        five round trips a transaction (chain id, fee history, ...), the demo's main cost at full size.
        The gas is given: an estimate would run against the block before this one."""
        transaction = {
            "from": sender,
            "to": self.token.address,
            "data": self.token.encode_abi(call.abi_element_identifier, args=call.args),
            "gas": hex(gas),
        }
        answer = self.w3.provider.make_request("eth_sendTransaction", [transaction])
        if "error" in answer:
            raise RuntimeError(f"eth_sendTransaction: {answer['error']}")
        self._block.append(answer["result"])
        return answer["result"]

    def _receipt(self, tx_hash: bytes) -> Any:
        receipt = self._wait(tx_hash)
        if receipt["status"] != 1:
            raise RuntimeError(f"transaction reverted: {receipt['transactionHash'].hex()}")
        self.latest_block = max(self.latest_block, receipt["blockNumber"])
        self.transfers += self.transfers_in(receipt)
        return receipt

    @contextmanager
    def one_block(self) -> Iterator[None]:
        """The transactions sent inside go into one block, mined at the end (several logs a block, as
        on a real chain). A token should move at most once a block: each call is built on the last block."""
        self.w3.provider.make_request("evm_setAutomine", [False])
        self._block = []
        try:
            yield
        finally:
            sent, self._block = self._block, None
            self.w3.provider.make_request("evm_setAutomine", [True])
        if sent:
            self.mine(1)
            for tx_hash in sent:
                self._receipt(tx_hash)

    def transfers_in(self, receipt: Any) -> list[ChainTransfer]:
        return [
            ChainTransfer(
                token_id=log["args"]["tokenId"],
                from_address=log["args"]["from"].lower(),
                to_address=log["args"]["to"].lower(),
                block_number=log["blockNumber"],
                block_hash="0x" + log["blockHash"].hex().removeprefix("0x"),
                tx_hash="0x" + log["transactionHash"].hex().removeprefix("0x"),
                tx_index=log["transactionIndex"],
                log_index=log["logIndex"],
            )
            for log in self.token.events.Transfer().process_receipt(receipt, errors=DISCARD)
        ]

    def mint(self, to: int, token_id: int) -> Any:
        return self._send(self.token.functions.mint(self.account(to), token_id))

    def batch_mint(self, to: int, first_id: int, count: int) -> Any:
        return self._send(self.token.functions.batchMint(self.account(to), first_id, count), gas=29_000_000)

    def transfer(self, sender: int, to: int, token_id: int) -> Any:
        call = self.token.functions.transferFrom(self.account(sender), self.account(to), token_id)
        return self._send(call, self.account(sender))

    def safe_transfer(self, sender: int, to: int, token_id: int) -> Any:
        call = self.token.functions.safeTransferFrom(self.account(sender), self.account(to), token_id)
        return self._send(call, self.account(sender))

    def burn(self, sender: int, token_id: int) -> Any:
        return self._send(self.token.functions.burn(token_id), self.account(sender))

    def fungible_transfer(self, sender: int, to: int, amount: int) -> Any:
        """An ERC-20-shaped Transfer log (3 topics) from the token's own address."""
        call = self.token.functions.emitFungibleTransfer(self.account(sender), self.account(to), amount)
        receipt = self._send(call)
        if [len(log["topics"]) for log in receipt["logs"]] != [3]:
            raise RuntimeError("emitFungibleTransfer must emit exactly one 3-topic Transfer log")
        return receipt

    def mine(self, blocks: int = 1) -> None:
        self.w3.provider.make_request("anvil_mine", [hex(blocks)])
        self.latest_block += blocks

    def advance(self, seconds: int) -> None:
        """Let time pass on the chain: the next block is `seconds` later."""
        self.w3.provider.make_request("evm_increaseTime", [seconds])

    @property
    def head(self) -> int:
        return self.w3.eth.block_number

    def timestamp(self, block: int) -> int:
        if block not in self._timestamps:
            self._timestamps[block] = self.w3.eth.get_block(block)["timestamp"]
        return self._timestamps[block]
