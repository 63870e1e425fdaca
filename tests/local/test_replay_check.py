"""The demo's own check names every token and holder whose ledger row differs from the chain."""

from dataclasses import dataclass, field

import boto3
from moto import mock_aws

from app.events import ZERO_ADDRESS
from app.local.chain import ChainTransfer
from app.local.replay_check import event_of, mismatches
from app.store import Store, create_tables
from tests.support.chain import CHAIN_ID, CONTRACT, address, fake_hash

RATE = 10
ALICE, BOB = address(0xA), address(0xB)


@dataclass
class RecordedChain:
    """What the demo's chain driver records: the Transfer logs as the node reported them."""

    address: str = CONTRACT
    transfers: list[ChainTransfer] = field(default_factory=list)
    timestamps: dict[int, int] = field(default_factory=dict)

    def log(self, token_id, frm, to, block):
        self.timestamps[block] = 1_700_000_000 + block * 3600
        index = len(self.transfers)
        self.transfers.append(
            ChainTransfer(token_id, frm, to, block, fake_hash("b", block), fake_hash("t", index), 0, index)
        )

    def timestamp(self, block):
        return self.timestamps[block]


def apply(store, chain, t):
    store.apply(event_of(chain, t), RATE)


def test_a_ledger_that_matches_has_no_mismatch_and_each_difference_is_named():
    chain = RecordedChain()
    chain.log(1, ZERO_ADDRESS, ALICE, block=1)
    chain.log(2, ZERO_ADDRESS, ALICE, block=1)
    chain.log(1, ALICE, BOB, block=2)
    chain.log(2, ALICE, BOB, block=3)  # the ledger will miss this one
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(client, tokens="t", points="p", monitor="m")
        store = Store("t", "p", client=client)
        for t in chain.transfers[:3]:
            apply(store, chain, t)
        assert mismatches(chain, store, head=2, rate=RATE) == []
        problems = mismatches(chain, store, head=3, rate=RATE)
    token = f"{CHAIN_ID}:{CONTRACT}:2"
    assert [p.split(":")[0] for p in problems] == [f"token {CHAIN_ID}", f"holder {ALICE}", f"holder {BOB}"]
    assert problems[0].startswith(f"token {token}: ledger ('{ALICE}',")
    assert all("\n" not in p for p in problems)
