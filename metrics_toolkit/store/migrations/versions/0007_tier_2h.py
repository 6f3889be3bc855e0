"""Rollup tiers: a 2-hour width, and tier documents that are quicker to read (PostgreSQL).

- The 2-hour width (``archive.tiers.TIER_WIDTHS``) serves the 30-day view at 2 h (and 6 h,
  12 h): it reads half the rows the 1-hour width did. The refresh makes it; here every
  (metric_type, host, UTC day) that has tier rows is marked in the tier log over the whole
  day, so the refresh that ``metrics-toolkit db upgrade`` runs next (progress bar,
  resumable, as after 0005) recomputes those days at every width. Until it has, readers
  read the snapshots there: views stay exact, only slower.
- PostgreSQL: ``metrics_tiers.metric_data`` is compressed with lz4 (about 4x quicker to
  decompress than the default pglz; a tier read decompresses whole documents) where the
  server supports it. The recomputed rows are written with it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_LAST = {  # the day's last moment, from the day's start (a 1-day tier row's timestamp)
    "postgresql": "timestamp + interval '86399.999999 seconds'",
    "sqlite": "substr(timestamp, 1, 10) || ' 23:59:59.999999'",
}
_LEAST = {"postgresql": ("least", "greatest"), "sqlite": ("min", "max")}


def upgrade() -> None:
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
    """lz4 for the tier documents, when the server has it (PostgreSQL 14+, built with it)."""
    if int(bind.execute(sa.text("SHOW server_version_num")).scalar_one()) < 140000:
        return
    try:
        with bind.begin_nested():
            bind.execute(
                sa.text("ALTER TABLE metrics_tiers ALTER COLUMN metric_data SET COMPRESSION lz4")
            )
    except sa.exc.DBAPIError:  # not built with lz4: pglz stays
        pass


def downgrade() -> None:
    bind = op.get_bind()
    if (
        bind.dialect.name == "postgresql"
        and int(bind.execute(sa.text("SHOW server_version_num")).scalar_one()) >= 140000
    ):
        op.execute("ALTER TABLE metrics_tiers ALTER COLUMN metric_data SET COMPRESSION default")
    op.execute("DELETE FROM metrics_tiers WHERE width_seconds = 7200")
