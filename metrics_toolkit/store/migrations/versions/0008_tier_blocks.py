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

from metrics_toolkit.store.sqltypes import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_ARRAYS = ("counts", "sums", "mins", "maxes")
_LAST = {  # the day's last moment, from the day's start (a 1-day tier row's timestamp)
    "postgresql": "timestamp + interval '86399.999999 seconds'",
    "sqlite": "substr(timestamp, 1, 10) || ' 23:59:59.999999'",
}
_LEAST = {"postgresql": ("least", "greatest"), "sqlite": ("min", "max")}


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
    bind = op.get_bind()
    dialect = bind.dialect.name
    if dialect == "postgresql":
        _lz4(bind)
    if dialect in _LAST:
        least, greatest = _LEAST[dialect]
        op.execute(
            "INSERT INTO metrics_tier_dirty (metric_type, host, day, first_ts, last_ts, seq) "
            f"SELECT metric_type, host, timestamp, timestamp, {_LAST[dialect]}, 1 "
            "FROM metrics_tiers WHERE width_seconds = 86400 "
            "ON CONFLICT (metric_type, host, day) DO UPDATE SET "
            f"first_ts = {least}(metrics_tier_dirty.first_ts, excluded.first_ts), "
            f"last_ts = {greatest}(metrics_tier_dirty.last_ts, excluded.last_ts), "
            "seq = metrics_tier_dirty.seq + 1"
        )


def _lz4(bind: sa.Connection) -> None:
    """lz4 for the arrays, when the server has it (PostgreSQL 14+, built with it)."""
    if int(bind.execute(sa.text("SHOW server_version_num")).scalar_one()) < 140000:
        return
    try:
        with bind.begin_nested():
            for name in _ARRAYS:
                bind.execute(
                    sa.text(
                        f"ALTER TABLE metrics_tier_blocks ALTER COLUMN {name} SET COMPRESSION lz4"
                    )
                )
    except sa.exc.DBAPIError:  # not built with lz4: pglz stays
        pass


def downgrade() -> None:
    op.drop_table("metrics_tier_blocks")
