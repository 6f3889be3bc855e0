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

from alembic import op

from metrics_toolkit.store.migrations.steps import lz4_supported, mark_tiered_days, use_lz4

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    use_lz4("metrics_tiers", ("metric_data",))
    mark_tiered_days()


def downgrade() -> None:
    if lz4_supported(op.get_bind()):
        op.execute("ALTER TABLE metrics_tiers ALTER COLUMN metric_data SET COMPRESSION default")
    op.execute("DELETE FROM metrics_tiers WHERE width_seconds = 7200")
