"""The DynamoDB tables: tokens (GSI `owner-index`), points, monitor state (DESIGN §4, §10).

Adopting the existing prod tables (`tables.mode: adopt`) uses the `import` resource option: the
next `pulumi up` takes the live table of that name into the stack's state without touching its
data, and fails, listing the differences, if the live table does not match this declaration
(docs/deploy.md shows how to align it first). A `get` would only read the table: the stack could
then neither protect it nor keep its backups and encryption as declared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

from components.iam import Statement
from components.settings import Settings

TableKind = Literal["tokens", "points", "monitor"]


@dataclass(frozen=True)
class KeySchema:
    hash_key: str
    indexes: tuple[tuple[str, str], ...] = ()  # (index name, its hash key)


# DESIGN §10; app/store.py's *_table_definition (the local stack) declares the same keys.
SCHEMAS: dict[TableKind, KeySchema] = {
    "tokens": KeySchema("token", (("owner-index", "owner"),)),
    "points": KeySchema("holder"),
    "monitor": KeySchema("id"),
}
# Only tables that exist before this stack can be adopted; the monitor table is new.
ADOPTABLE: frozenset[TableKind] = frozenset({"tokens", "points"})


class Tables(pulumi.ComponentResource):
    tokens: aws.dynamodb.Table
    points: aws.dynamodb.Table
    monitor: aws.dynamodb.Table

    def __init__(self, name: str, settings: Settings, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ngu:pipeline:Tables", name, None, opts)
        self.tokens = self._table(name, "tokens", settings)
        self.points = self._table(name, "points", settings)
        self.monitor = self._table(name, "monitor", settings)
        self.register_outputs(
            {
                "tokensTableName": self.tokens.name,
                "pointsTableName": self.points.name,
                "monitorTableName": self.monitor.name,
            }
        )

    def ledger_statement(self) -> Statement:
        """What applying an event needs (app/store.py): read tokens, then one transaction of updates."""
        return Statement(
            "ApplyEvents",
            ["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:UpdateItem"],
            [self.tokens.arn, self.points.arn],
        )

    def _table(self, name: str, kind: TableKind, settings: Settings) -> aws.dynamodb.Table:
        schema = SCHEMAS[kind]
        table_name = settings.table_name(kind)
        adopt = settings.tables.mode == "adopt" and kind in ADOPTABLE
        attributes = [schema.hash_key, *(key for _, key in schema.indexes)]
        return aws.dynamodb.Table(
            f"{name}-{kind}",
            name=table_name,
            billing_mode="PAY_PER_REQUEST",
            hash_key=schema.hash_key,
            attributes=[aws.dynamodb.TableAttributeArgs(name=a, type="S") for a in attributes],
            global_secondary_indexes=[
                aws.dynamodb.TableGlobalSecondaryIndexArgs(
                    name=index,
                    key_schemas=[
                        aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs(attribute_name=key, key_type="HASH")
                    ],
                    projection_type="ALL",
                )
                for index, key in schema.indexes
            ]
            or None,
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(enabled=True),
            deletion_protection_enabled=settings.protect,
            tags=settings.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=settings.protect, import_=table_name if adopt else None),
        )
