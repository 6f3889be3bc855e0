"""Rollup tiers: per-bucket statistics kept ahead, and the tier log.

Creates ``metrics_tiers`` (one rolled-up document per width, metric_type, host and bucket)
and ``metrics_tier_dirty`` (the tier log, docs/design.md §9), then marks every (metric_type,
host, UTC day) that holds snapshots as changed. That is the whole backfill here, one GROUP
BY: the tiers are computed by the refresh that ``metrics-toolkit db upgrade`` runs next (with
a progress bar) and that every ``archive run`` runs. The refresh works through the log entry
by entry, so an interrupted backfill resumes where it stopped; until then readers read the
snapshots for what the log still marks.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from metrics_toolkit.store.sqltypes import JSONDocument, UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_HOST = {
    "postgresql": "coalesce(metric_data ->> 'host', '')",
    "sqlite": "coalesce(json_extract(metric_data, '$.host'), '')",
}
_DAY = {
    "postgresql": "date_bin('1 day', timestamp, TIMESTAMPTZ '1970-01-01 00:00:00+00')",
    "sqlite": "substr(timestamp, 1, 10) || ' 00:00:00.000000'",
}


def upgrade() -> None:
    op.create_table(
        "metrics_tiers",
        sa.Column("width_seconds", sa.Integer(), nullable=False),
        sa.Column("metric_type", sa.String(length=50), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("timestamp", UTCDateTime(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("metric_data", JSONDocument, nullable=False),
        sa.PrimaryKeyConstraint(
            "width_seconds", "metric_type", "host", "timestamp", name="pk_metrics_tiers"
        ),
    )
    op.create_index(
        "ix_metrics_tiers_time", "metrics_tiers", ["width_seconds", "metric_type", "timestamp"]
    )
    op.create_table(
        "metrics_tier_dirty",
        sa.Column("metric_type", sa.String(length=50), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("day", UTCDateTime(), nullable=False),
        sa.Column("first_ts", UTCDateTime(), nullable=False),
        sa.Column("last_ts", UTCDateTime(), nullable=False),
        sa.Column("seq", sa.Integer(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("metric_type", "host", "day", name="pk_metrics_tier_dirty"),
    )
    dialect = op.get_bind().dialect.name
    if dialect in _HOST:
        op.execute(
            "INSERT INTO metrics_tier_dirty (metric_type, host, day, first_ts, last_ts, seq) "
            f"SELECT metric_type, {_HOST[dialect]}, {_DAY[dialect]}, min(timestamp), "
            f"max(timestamp), 1 FROM metrics_snapshots GROUP BY 1, 2, 3"
        )


def downgrade() -> None:
    op.drop_table("metrics_tier_dirty")
    op.drop_index("ix_metrics_tiers_time", table_name="metrics_tiers")
    op.drop_table("metrics_tiers")
