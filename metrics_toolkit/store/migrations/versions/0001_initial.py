"""Initial schema: users, metrics_snapshots, config, archive_policies (the seed's models).

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from metrics_toolkit.store.sqltypes import JSONDocument, UTCDateTime, utcnow

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

HOST_SQL = {
    "postgresql": "(coalesce(metric_data ->> 'host', ''))",
    "sqlite": "(coalesce(json_extract(metric_data, '$.host'), ''))",
}
RAW_SQL = {
    "postgresql": "NOT (metric_data ? '_rollup')",
    "sqlite": "json_type(metric_data, '$._rollup') IS NULL",
}


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=50), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", UTCDateTime(), server_default=utcnow(), nullable=False),
        sa.Column("last_login", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
    )
    op.create_index("ix_users_username", "users", ["username"], unique=True)

    op.create_table(
        "metrics_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("timestamp", UTCDateTime(), nullable=False),
        sa.Column("metric_type", sa.String(length=50), nullable=False),
        sa.Column("metric_data", JSONDocument, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_metrics_snapshots"),
    )
    op.create_index("ix_metrics_snapshots_timestamp", "metrics_snapshots", ["timestamp"])
    dialect = op.get_bind().dialect.name
    if dialect in HOST_SQL:
        op.create_index(
            "uq_metrics_snapshots_identity",
            "metrics_snapshots",
            ["metric_type", "timestamp", sa.text(HOST_SQL[dialect])],
            unique=True,
            **{f"{dialect}_where": sa.text(RAW_SQL[dialect])},  # type: ignore[arg-type]
        )

    op.create_table(
        "config",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", JSONDocument, nullable=False),
        sa.Column("updated_at", UTCDateTime(), server_default=utcnow(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_config"),
    )

    op.create_table(
        "archive_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("retention_days", sa.Integer(), server_default="30", nullable=False),
        sa.Column("archive_enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("downsample_after_days", sa.Integer(), server_default="3", nullable=False),
        sa.Column("downsample_interval", sa.String(length=20), server_default="1h", nullable=False),
        sa.Column("last_archive_run", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), server_default=utcnow(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), server_default=utcnow(), nullable=False),
        sa.CheckConstraint(
            "retention_days > 0", name=op.f("ck_archive_policies_retention_positive")
        ),
        sa.CheckConstraint(
            "downsample_after_days >= 0 AND downsample_after_days < retention_days",
            name=op.f("ck_archive_policies_downsample_before_retention"),
        ),
        sa.PrimaryKeyConstraint("id", name="pk_archive_policies"),
    )


def downgrade() -> None:
    op.drop_table("archive_policies")
    op.drop_table("config")
    op.drop_index("uq_metrics_snapshots_identity", table_name="metrics_snapshots")
    op.drop_index("ix_metrics_snapshots_timestamp", table_name="metrics_snapshots")
    op.drop_table("metrics_snapshots")
    op.drop_index("ix_users_username", table_name="users")
    op.drop_table("users")
