"""What the demo's holders do on the local chain: mints, then days of trading and a few burns.

Deterministic (a seeded random), several transfers a block, the node's clock moved between blocks so
points accrue over simulated days. The caller hears about every block, to inject faults and report.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from app.local.chain import Chain

HOUR = 3600
DAY = 24 * HOUR
MINTS_PER_BLOCK = 25


@dataclass(frozen=True)
class Size:
    holders: int
    tokens: int
    days: int
    blocks_per_day: int
    moves_per_block: int
    environments: int  # at most this many execution environments (each a process with a cold start)

    @property
    def blocks(self) -> int:
        return self.days * self.blocks_per_day

    @property
    def transfers(self) -> int:
        """Mints plus moves (transfers and burns)."""
        return self.tokens + self.blocks * self.moves_per_block


FULL = Size(holders=20, tokens=200, days=10, blocks_per_day=12, moves_per_block=9, environments=40)
QUICK = Size(holders=5, tokens=12, days=2, blocks_per_day=4, moves_per_block=3, environments=2)

OnBlock = Callable[[int, int], None]  # (trading block number from 1, how many there are)


class Activity:
    def __init__(self, chain: Chain, size: Size, seed: int = 10) -> None:
        if size.holders + 1 > len(chain.accounts):
            raise ValueError(
                f"holders: {size.holders} need {size.holders + 1} node accounts, not {len(chain.accounts)}"
            )
        self.chain = chain
        self.size = size
        self.random = random.Random(seed)
        self.holders = list(range(1, size.holders + 1))  # account 0 is the minter
        self.owners: dict[int, int] = {}  # live token id -> holder account index
        self.burns = 0

    def run(self, on_block: OnBlock) -> None:
        self._mint()
        self.chain.advance(HOUR)
        step = DAY // self.size.blocks_per_day
        for number in range(1, self.size.blocks + 1):
            with self.chain.one_block():
                for token_id in self.random.sample(
                    sorted(self.owners), min(self.size.moves_per_block, len(self.owners))
                ):
                    self._move(token_id)
            if number % self.size.blocks_per_day == 0:
                self.chain.fungible_transfer(1, 2, 1000)  # an ERC-20-shaped log: the monitor ignores it
            self.chain.advance(step)
            on_block(number, self.size.blocks)

    def _mint(self) -> None:
        batch = min(10, self.size.tokens // 4)
        singles = self.size.tokens - batch
        for first in range(1, singles + 1, MINTS_PER_BLOCK):
            with self.chain.one_block():
                for token_id in range(first, min(first + MINTS_PER_BLOCK, singles + 1)):
                    holder = self.holders[token_id % len(self.holders)]
                    self.chain.mint(holder, token_id)
                    self.owners[token_id] = holder
        if batch:
            self.chain.batch_mint(self.holders[0], singles + 1, batch)
            self.owners.update(dict.fromkeys(range(singles + 1, singles + batch + 1), self.holders[0]))

    def _move(self, token_id: int) -> None:
        owner = self.owners[token_id]
        if self.random.random() < 0.03 and len(self.owners) > 0.8 * self.size.tokens:
            self.chain.burn(owner, token_id)
            del self.owners[token_id]
            self.burns += 1
            return
        to = self.random.choice([h for h in self.holders if h != owner])
        if self.random.random() < 0.2:
            self.chain.safe_transfer(owner, to, token_id)
        else:
            self.chain.transfer(owner, to, token_id)
        self.owners[token_id] = to
