"""What the stack declares for each DynamoDB table of a stage: keys, indexes, billing, backups,
encryption, stream, deletion protection and tags.

Pure and dependency-free: components/tables.py declares the tables from it and `python -m app
preflight` compares the live tables with it, so the two can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from app.names import PROJECT, StageNames

TableKind = Literal["tokens", "points", "monitor"]
TableMode = Literal["create", "adopt"]
KINDS: tuple[TableKind, ...] = ("tokens", "points", "monitor")
# Only tables that exist before this stack can be adopted; the monitor table is new.
ADOPTABLE: frozenset[TableKind] = frozenset({"tokens", "points"})
# The stage whose tables are protected (deletion protection and Pulumi's `protect`).
PROTECTED_STAGE = "prod"


def stage_tags(stage: str) -> dict[str, str]:
    """The tags every resource of a stage carries."""
    return {"Environment": stage, "Service": PROJECT}


@dataclass(frozen=True)
class DeclaredTable:
    kind: TableKind
    name: str
    hash_key: str
    indexes: tuple[tuple[str, str], ...]  # (index name, its hash key); every index projects ALL
    deletion_protection: bool
    tags: dict[str, str]
    adopt: bool
    # Every table: on-demand, point-in-time recovery, SSE with the AWS managed key, no DynamoDB stream.
    billing_mode: str = "PAY_PER_REQUEST"
    point_in_time_recovery: bool = True
    server_side_encryption: bool = True
    stream_enabled: bool = False

    @property
    def attributes(self) -> tuple[str, ...]:
        """Every key attribute (all strings): the table's hash key, then each index's."""
        return (self.hash_key, *(key for _, key in self.indexes))


# DESIGN §10; app/store.py's *_table_definition (the local stack) declares the same keys.
_KEYS: dict[TableKind, tuple[str, tuple[tuple[str, str], ...]]] = {
    "tokens": ("token", (("owner-index", "owner"),)),
    "points": ("holder", ()),
    "monitor": ("id", ()),
}


def declared_tables(stage: str, mode: TableMode) -> dict[TableKind, DeclaredTable]:
    """The three tables of `stage` as the stack declares them (`mode` is the stack's `tables.mode`)."""
    names = StageNames(stage)
    protected = stage == PROTECTED_STAGE
    return {
        kind: DeclaredTable(
            kind=kind,
            name=names.table(kind),
            hash_key=_KEYS[kind][0],
            indexes=_KEYS[kind][1],
            deletion_protection=protected,
            tags=stage_tags(stage),
            adopt=mode == "adopt" and kind in ADOPTABLE,
        )
        for kind in KINDS
    }
