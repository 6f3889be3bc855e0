"""A partial index on the timestamps of rolled-up rows.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ROLLUP_SQL = {
    "postgresql": "metric_data ? '_rollup'",
    "sqlite": "json_type(metric_data, '$._rollup') IS NOT NULL",
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect in ROLLUP_SQL:
        op.create_index(
            "ix_metrics_snapshots_rollups",
            "metrics_snapshots",
            ["timestamp"],
            **{f"{dialect}_where": sa.text(ROLLUP_SQL[dialect])},  # type: ignore[arg-type]
        )


def downgrade() -> None:
    if op.get_bind().dialect.name in ROLLUP_SQL:
        op.drop_index("ix_metrics_snapshots_rollups", table_name="metrics_snapshots")
