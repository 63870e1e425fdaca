"""One reconciliation pass over the tables (and the repairs of `--fix`), beside a live consumer.

The tables are compared with the chain's history (app/reconcile_model.py). An item that looks wrong
is read again before it is reported: a token until two reads agree, a holder until its item is the
same before and after its tokens are read (every event that changes a holder's expected value
changes the holder item in the same transaction, so an unchanged holder means a consistent view).
An item that keeps changing is reported as unsettled, never repaired.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from app.ledger import HolderPoints, TokenState
from app.reconcile_model import (
    Mismatch,
    Step,
    TokenHistory,
    expected_holders,
    expected_step,
    holder_mismatches,
    token_mismatches,
)
from app.reconcile_tables import Tables

REREADS = 5
REREAD_PAUSE = 0.2


@dataclass
class Verdict:
    to_block: int
    tokens: int = 0
    holders: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    unsettled: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.mismatches and not self.unsettled

    def keys(self, kind: str) -> list[str]:
        return list(dict.fromkeys(m.key for m in self.mismatches if m.kind == kind))


class Reconciler:
    def __init__(
        self, tables: Tables, histories: Mapping[str, TokenHistory], to_block: int, prefixes: tuple[str, ...]
    ) -> None:
        self.tables = tables
        self.histories = histories
        self.to_block = to_block
        self.prefixes = prefixes
        self._tokens_of: dict[str, list[str]] = {}
        for key, history in histories.items():
            for holder in history.holders:
                self._tokens_of.setdefault(holder, []).append(key)

    def check(self) -> Verdict:
        verdict = Verdict(self.to_block)
        tokens = self.tables.tokens(self.prefixes)
        holders = self.tables.holders()
        keys = set(tokens) | {k for k, h in self.histories.items() if h.up_to_block(self.to_block)}
        steps = {key: self._step(key, tokens.get(key)) for key in keys}
        for key in sorted(keys):
            if token_mismatches(key, tokens.get(key), steps[key]):
                stable, settled = self._settled_token(key)
                if not stable:
                    verdict.unsettled.append(f"token {key}")
                    continue
                steps[key] = self._step(key, settled)
                verdict.mismatches += token_mismatches(key, settled, steps[key])
        expected = expected_holders(steps)
        addresses = set(holders) | set(expected)
        for address in sorted(addresses):
            if holder_mismatches(address, holders.get(address), expected.get(address)):
                settled_holder = self._settled_holder(address)
                if settled_holder is None:
                    verdict.unsettled.append(f"holder {address}")
                    continue
                verdict.mismatches += holder_mismatches(address, *settled_holder)
        verdict.tokens, verdict.holders = len(keys), len(addresses)
        return verdict

    def fix(self, verdict: Verdict) -> list[str]:
        """Repair what `verdict` found: tokens first (holders' expected values depend on them)."""
        fixed = []
        for key in verdict.keys("token"):
            read = self.tables.token(key)
            step = self._step(key, read)
            if token_mismatches(key, read, step) and self.tables.put_token(key, read, step.state if step else None):
                fixed.append(f"token {key}")
        for address in verdict.keys("holder"):
            settled = self._settled_holder(address)
            if settled is None:
                continue
            read, want = settled
            if holder_mismatches(address, read, want) and self.tables.put_holder(address, read, want or HolderPoints()):
                fixed.append(f"holder {address}")
        return fixed

    def _step(self, key: str, table: TokenState | None) -> Step | None:
        return expected_step(self.histories.get(key), table, self.to_block)

    def _settled_token(self, key: str) -> tuple[bool, TokenState | None]:
        """(True, the token) once two reads in a row agree; (False, None) if it kept changing."""
        previous = self.tables.token(key)
        for _ in range(REREADS):
            current = self.tables.token(key)
            if current == previous:
                return True, current
            previous = current
            time.sleep(REREAD_PAUSE)
        return False, None

    def _settled_holder(self, address: str) -> tuple[HolderPoints | None, HolderPoints | None] | None:
        """(table, expected) for a holder from one consistent view, or None if it kept changing."""
        keys = self._tokens_of.get(address, [])
        for _ in range(REREADS):
            before = self.tables.holder(address)
            states = self.tables.tokens_by_key(keys) if keys else {}
            expected = expected_holders({key: self._step(key, states.get(key)) for key in keys}).get(address)
            if self.tables.holder(address) == before:
                return before, expected
            time.sleep(REREAD_PAUSE)
        return None
