"""The DynamoDB tables: tokens (GSI `owner-index`), points, monitor state (DESIGN §4, §10).

Their shape lives in app/declared_tables.py, which `python -m app preflight` compares with the live
tables. Adopting the existing prod tables (`tables.mode: adopt`) uses the `import` resource option:
the next `pulumi up` takes the live table of that name into the stack's state without touching its
data, and since CLI 3.174 then *updates* whatever differs from this declaration in the same `up`,
so docs/deploy.md runs preflight first. A `get` would only read the table: the stack could then
neither protect it nor keep its backups and encryption as declared.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from app.declared_tables import DeclaredTable, TableKind, declared_tables
from components.iam import Statement
from components.settings import Settings


class Tables(pulumi.ComponentResource):
    tokens: aws.dynamodb.Table
    points: aws.dynamodb.Table
    monitor: aws.dynamodb.Table

    def __init__(self, name: str, settings: Settings, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ngu:pipeline:Tables", name, None, opts)
        declared = declared_tables(str(settings.stage), settings.tables.mode)
        self.tokens = self._table(name, declared["tokens"], settings)
        self.points = self._table(name, declared["points"], settings)
        self.monitor = self._table(name, declared["monitor"], settings)
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

    def _table(self, name: str, table: DeclaredTable, settings: Settings) -> aws.dynamodb.Table:
        kind: TableKind = table.kind
        return aws.dynamodb.Table(
            f"{name}-{kind}",
            name=table.name,
            billing_mode=table.billing_mode,
            hash_key=table.hash_key,
            attributes=[aws.dynamodb.TableAttributeArgs(name=a, type="S") for a in table.attributes],
            global_secondary_indexes=[
                aws.dynamodb.TableGlobalSecondaryIndexArgs(
                    name=index,
                    key_schemas=[
                        aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs(attribute_name=key, key_type="HASH")
                    ],
                    projection_type="ALL",
                )
                for index, key in table.indexes
            ]
            or None,
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=table.point_in_time_recovery),
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(enabled=table.server_side_encryption),
            stream_enabled=table.stream_enabled,
            deletion_protection_enabled=table.deletion_protection,
            tags=table.tags,
            opts=pulumi.ResourceOptions(
                parent=self, protect=settings.protect, import_=table.name if table.adopt else None
            ),
        )
