"""Tier blocks: each leaf's tier statistics per UTC day as arrays (docs/design.md §9).

``metrics_tier_blocks`` holds, per width, metric_type, leaf, day and host, the count, sum,
min and max of the leaf in every tier bucket of the day (``rollup.blocks``), so a view
reads the few leaves it shows instead of decompressing whole tier documents. The refresh
writes them with the tier rows; here every (metric_type, host, UTC day) that has tier rows
is marked in the tier log over the whole day, so the refresh that ``metrics-toolkit db
upgrade`` runs next (progress bar, resumable) rebuilds those days with their blocks. Until
it has, readers read the snapshots there: views stay exact, only slower. PostgreSQL: the
arrays are compressed with lz4 where the server has it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from metrics_toolkit.store.migrations.steps import mark_tiered_days, use_lz4
from metrics_toolkit.store.sqltypes import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_ARRAYS = ("counts", "sums", "mins", "maxes")


def upgrade() -> None:
    op.create_table(
        "metrics_tier_blocks",
        sa.Column("width_seconds", sa.Integer(), nullable=False),
        sa.Column("metric_type", sa.String(length=50), nullable=False),
        sa.Column("path", sa.String(length=1000), nullable=False),
        sa.Column("day", UTCDateTime(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        *[sa.Column(name, sa.LargeBinary(), nullable=True) for name in _ARRAYS],
        sa.PrimaryKeyConstraint(
            "width_seconds", "metric_type", "path", "day", "host", name="pk_metrics_tier_blocks"
        ),
    )
    use_lz4("metrics_tier_blocks", _ARRAYS)
    mark_tiered_days()


def downgrade() -> None:
    op.drop_table("metrics_tier_blocks")
