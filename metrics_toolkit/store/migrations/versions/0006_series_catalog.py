"""The series catalog: which (metric_type, host) pairs have snapshots, and when.

Creates ``metrics_series`` and fills it from the snapshots with one GROUP BY, so
``list_hosts`` and the explorer's sidebar answer from it at once (docs/design.md §8).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from metrics_toolkit.store.sqltypes import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_HOST = {
    "postgresql": "coalesce(metric_data ->> 'host', '')",
    "sqlite": "coalesce(json_extract(metric_data, '$.host'), '')",
}


def upgrade() -> None:
    op.create_table(
        "metrics_series",
        sa.Column("metric_type", sa.String(length=50), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("metric_type", "host", name="pk_metrics_series"),
    )
    dialect = op.get_bind().dialect.name
    if dialect in _HOST:
        op.execute(
            "INSERT INTO metrics_series (metric_type, host, first_seen, last_seen) "
            f"SELECT metric_type, {_HOST[dialect]}, min(timestamp), max(timestamp) "
            "FROM metrics_snapshots GROUP BY 1, 2"
        )


def downgrade() -> None:
    op.drop_table("metrics_series")
