"""Steps more than one migration takes, written once (docs/design.md §9).

Each is frozen as the migrations that call it: a later change of the library's own code
(``store.tier_log``, say) must not change what an old migration did, so these are plain
SQL, not calls into the library.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

_LAST = {  # the day's last moment, from the day's start (a 1-day tier row's timestamp)
    "postgresql": "timestamp + interval '86399.999999 seconds'",
    "sqlite": "substr(timestamp, 1, 10) || ' 23:59:59.999999'",
}
_LEAST = {"postgresql": ("least", "greatest"), "sqlite": ("min", "max")}


def mark_tiered_days() -> None:
    """Mark every (metric_type, host, UTC day) that has tier rows in the tier log over the
    whole day, so the refresh that ``db upgrade`` runs next recomputes those days at every
    width (and, until it has, readers read the snapshots there)."""
    dialect = op.get_bind().dialect.name
    if dialect not in _LAST:
        return
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


def lz4_supported(bind: sa.Connection) -> bool:
    """PostgreSQL 14+ (column compression methods exist)."""
    if bind.dialect.name != "postgresql":
        return False
    return int(bind.execute(sa.text("SHOW server_version_num")).scalar_one()) >= 140000


def use_lz4(table: str, columns: tuple[str, ...]) -> None:
    """Compress ``columns`` of ``table`` with lz4 where the server has it (PostgreSQL 14+,
    built with lz4); elsewhere the default (pglz) stays."""
    bind = op.get_bind()
    if not lz4_supported(bind):
        return
    try:
        with bind.begin_nested():
            for column in columns:
                bind.execute(
                    sa.text(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION lz4")
                )
    except sa.exc.DBAPIError:  # not built with lz4: pglz stays
        pass
