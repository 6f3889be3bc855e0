"""The series catalog (docs/design.md §8) equals what the snapshots say, after every writer.

The oracle is computed in Python from every stored row; ``list_hosts`` is compared with the
full scan it replaced (``scan_hosts`` below), on ranges that cut series, fall in gaps and
sit on row boundaries.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, delete, func, insert, select, text
from sqlalchemy.orm import Session

from metrics_toolkit.archive import runner as archive
from metrics_toolkit.archive.restore import restore
from metrics_toolkit.errors import InvalidSnapshot
from metrics_toolkit.frames.load import list_hosts
from metrics_toolkit.intervals import as_utc
from metrics_toolkit.rollup.rule import Row
from metrics_toolkit.store import migrate, series
from metrics_toolkit.store.ingest import write_snapshots
from metrics_toolkit.store.models import MetricsSeries, MetricsSnapshot
from metrics_toolkit.store.policies import update_policy
from tests.helpers import make_snapshot

T0 = datetime(2026, 2, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=6)
Key = tuple[str, str]


def catalog(engine: Engine) -> dict[Key, tuple[datetime, datetime]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                MetricsSeries.metric_type,
                MetricsSeries.host,
                MetricsSeries.first_seen,
                MetricsSeries.last_seen,
            )
        ).all()
    return {(mt, host): (as_utc(first), as_utc(last)) for mt, host, first, last in rows}


def truth(engine: Engine) -> dict[Key, tuple[datetime, datetime]]:
    """The catalog computed in Python from every stored snapshot."""
    found: dict[Key, list[datetime]] = {}
    with engine.connect() as connection:
        stmt = select(
            MetricsSnapshot.metric_type, MetricsSnapshot.metric_data, MetricsSnapshot.timestamp
        )
        for mt, doc, ts in connection.execute(stmt):
            key = (mt, doc.get("host") or "")
            ts = as_utc(ts)
            seen = found.setdefault(key, [ts, ts])
            seen[0], seen[1] = min(seen[0], ts), max(seen[1], ts)
    return {key: (lo, hi) for key, (lo, hi) in found.items()}


def scan_hosts(
    engine: Engine,
    metric_type: str | None = "aggregated",
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[str]:
    """``list_hosts`` as it was: a DISTINCT over the snapshots table (the oracle)."""
    host = func.coalesce(MetricsSnapshot.metric_data["host"].as_string(), "")
    stmt = select(host).distinct()
    if metric_type is not None:
        stmt = stmt.where(MetricsSnapshot.metric_type == metric_type)
    if start is not None:
        stmt = stmt.where(MetricsSnapshot.timestamp >= start)
    if end is not None:
        stmt = stmt.where(MetricsSnapshot.timestamp < end)
    with engine.connect() as connection:
        return sorted(str(h) for (h,) in connection.execute(stmt) if h)


def doc(host: str | None, value: float = 1.0) -> dict[str, Any]:
    found: dict[str, Any] = {"cpu": {"usage_percent": value}}
    if host is not None:
        found["host"] = host
    return found


def gappy_rows() -> list[Row]:
    """Hosts that start late, stop early, have a gap, or carry no label; two metric types."""
    rows: list[Row] = []
    step = timedelta(minutes=10)
    for i in range(6 * 24 * 6):  # 6 days every 10 min
        ts = T0 + i * step
        rows.append((ts, "aggregated", doc("web-1", i)))
        if not (2 * 144 <= i < 4 * 144):
            rows.append((ts, "aggregated", doc("db-1", i)))  # a two-day gap
        if i >= 5 * 144:
            rows.append((ts, "aggregated", doc("new-1", i)))  # the last day only
        if i < 144:
            rows.append((ts, "aggregated", doc("old-1", i)))  # the first day only
        if i % 7 == 0:
            rows.append((ts, "other", doc("web-1" if i % 2 else "odd-1", i)))
        if i % 50 == 0:
            rows.append((ts, "aggregated", doc(None, i)))  # no host label
    return rows


def ranges(rng: random.Random, count: int) -> list[tuple[datetime | None, datetime | None]]:
    """Open ends, row boundaries (start inclusive, end exclusive), gaps, random cuts."""
    day = timedelta(days=1)
    found: list[tuple[datetime | None, datetime | None]] = [
        (None, None),
        (T0, None),
        (None, T0),
        (None, T0 + timedelta(minutes=10)),  # exactly the first tick of every host
        (T0 + 2 * day, T0 + 4 * day),  # db-1's gap, exactly
        (T0 + 2 * day + timedelta(minutes=10), T0 + 4 * day - timedelta(minutes=10)),
        (T0 + 4 * day - timedelta(minutes=10), T0 + 4 * day),  # db-1's last tick before
        (T0 + day - timedelta(minutes=10), T0 + day),  # old-1's very last row
        (T0 + day, T0 + 5 * day),  # between old-1 and new-1
        (T0 + 5 * day, None),
        (T0 + 7 * day, None),  # after everything
        (T0 - day, T0),  # before everything
    ]
    for _ in range(count):
        a, b = sorted(T0 - day + timedelta(minutes=rng.randrange(0, 8 * 24 * 60)) for _ in "ab")
        found.append((a, b))
        found.append((a, a + timedelta(minutes=rng.choice([1, 10, 30, 600]))))
    return found


def assert_hosts_equal_scan(engine: Engine, seed: int = 7, count: int = 25) -> None:
    for start, end in ranges(random.Random(seed), count):
        for metric_type in ("aggregated", "other", "none-such", None):
            got = list_hosts(engine, metric_type=metric_type, start=start, end=end)
            assert got == scan_hosts(engine, metric_type, start, end), (metric_type, start, end)


def set_policy(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        update_policy(
            session=session,
            retention_days=4,
            downsample_after_days=1,
            downsample_interval="1h",
            archive_enabled=True,
        )


# --- writers ----------------------------------------------------------------------------


def test_bulk_ingest_keeps_the_catalog(engine: Engine) -> None:
    rows = gappy_rows()
    random.Random(1).shuffle(rows)
    write_snapshots(engine, rows[: len(rows) // 2], batch_size=700)
    assert catalog(engine) == truth(engine)
    # Replay with duplicates (PostgreSQL's staged path), plus late and early rows.
    extra = [
        (T0 - timedelta(days=3), "aggregated", doc("web-1")),
        (NOW + timedelta(days=2), "aggregated", doc("db-1")),
        (T0 + timedelta(hours=1, seconds=1), "cold", doc("z-1")),
    ]
    write_snapshots(engine, [*rows, *extra], batch_size=900)
    assert catalog(engine) == truth(engine)
    assert catalog(engine)[("aggregated", "web-1")][0] == T0 - timedelta(days=3)
    assert ("aggregated", "") in catalog(engine)
    # A rejected batch notes nothing.
    bad: list[Any] = [(NOW + timedelta(days=9), "aggregated", doc("web-1")), ("not a row",)]
    with pytest.raises(InvalidSnapshot):
        write_snapshots(engine, bad)
    assert catalog(engine) == truth(engine)


def test_orm_writes_keep_the_catalog(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        session.add_all(
            [make_snapshot(T0 + timedelta(minutes=i), host=f"h-{i % 3}") for i in range(30)]
        )
        session.add(make_snapshot(T0, host="solo", metric_type="other"))
    assert catalog(engine) == truth(engine)
    assert len(catalog(engine)) == 4
    with Session(engine) as session, session.begin():  # an early row, in a later flush
        session.add(make_snapshot(T0 - timedelta(days=1), host="h-1"))
        session.flush()
        session.add(make_snapshot(T0 + timedelta(days=1), host="h-1"))
    assert catalog(engine)[("aggregated", "h-1")] == (
        T0 - timedelta(days=1),
        T0 + timedelta(days=1),
    )
    with Session(engine) as session, session.begin():  # ORM deletes narrow it again
        h1 = session.scalars(
            select(MetricsSnapshot).order_by(MetricsSnapshot.timestamp, MetricsSnapshot.id)
        ).all()
        for obj in h1:
            if obj.metric_data["host"] == "h-1" and obj.timestamp.day != T0.day:
                session.delete(obj)
            if obj.metric_data["host"] == "solo":
                session.delete(obj)
    assert catalog(engine) == truth(engine)
    assert ("other", "solo") not in catalog(engine)


def test_archive_run_retention_and_rollups_keep_the_catalog(engine: Engine, tmp_path: Path) -> None:
    write_snapshots(engine, gappy_rows())
    set_policy(engine)
    before = catalog(engine)
    result = archive.run_archive(engine, now=NOW, archive_path=tmp_path)
    assert result.status == "completed"
    after = catalog(engine)
    assert after == truth(engine)
    # old-1 lived on day 1 only: the retention deleted its last rows, so it is gone.
    assert ("aggregated", "old-1") in before and ("aggregated", "old-1") not in after
    # The rollups moved first_seen to the retention cut (a bucket start).
    assert after[("aggregated", "web-1")][0] == NOW - timedelta(days=4)
    assert_hosts_equal_scan(engine, count=10)
    # Restoring the deleted day brings old-1 back, and replacing rollups by raw rows
    # moves the spans again.
    restored = restore(engine, start=T0, end=NOW, archive_path=tmp_path)
    assert restored.restored > 0 and restored.rollups_replaced > 0
    assert catalog(engine) == truth(engine)
    assert ("aggregated", "old-1") in catalog(engine)
    assert_hosts_equal_scan(engine, count=10)


def test_restore_of_rollups_only_narrows_to_raw_rows(engine: Engine, tmp_path: Path) -> None:
    # One host, rolled up entirely (nothing deleted by retention), then restored bucket
    # by bucket (the path that deletes a rollup and inserts its raw rows).
    rows = [
        (NOW - timedelta(days=3) + timedelta(minutes=7 + 10 * i), "aggregated", doc("r-1", i))
        for i in range(12 * 6)
    ]
    write_snapshots(engine, rows)
    set_policy(engine)
    archive.run_archive(engine, now=NOW, archive_path=tmp_path)
    rolled = catalog(engine)[("aggregated", "r-1")]
    assert rolled[0] == NOW - timedelta(days=3)  # the first bucket's start, not a raw time
    assert rolled == truth(engine)[("aggregated", "r-1")]
    restore(engine, start=NOW - timedelta(days=4), end=NOW, archive_path=tmp_path)
    assert catalog(engine)[("aggregated", "r-1")] == (rows[0][0], rows[-1][0])
    assert catalog(engine) == truth(engine)


# --- the reader -------------------------------------------------------------------------


def test_list_hosts_equals_the_scan(engine: Engine) -> None:
    write_snapshots(engine, gappy_rows())
    assert list_hosts(engine) == ["db-1", "new-1", "old-1", "web-1"]
    assert list_hosts(engine, metric_type=None) == ["db-1", "new-1", "odd-1", "old-1", "web-1"]
    assert_hosts_equal_scan(engine)


def test_list_hosts_stays_exact_when_a_deletion_skips_the_catalog(engine: Engine) -> None:
    write_snapshots(engine, gappy_rows())
    with engine.begin() as connection:  # Core deletes: no listener, no refresh
        connection.execute(
            delete(MetricsSnapshot).where(MetricsSnapshot.timestamp < T0 + timedelta(days=1))
        )
        connection.execute(
            delete(MetricsSnapshot).where(MetricsSnapshot.timestamp >= T0 + timedelta(days=5))
        )
    assert ("aggregated", "old-1") in catalog(engine)  # stale: wider than the rows
    assert "old-1" not in list_hosts(engine) and "new-1" not in list_hosts(engine)
    assert_hosts_equal_scan(engine, count=10)
    with engine.begin() as connection:
        assert series.refresh_range(connection, "aggregated", "old-1") is None
        assert series.refresh_range(connection, "aggregated", "web-1") == (
            T0 + timedelta(days=1),
            T0 + timedelta(days=5) - timedelta(minutes=10),
        )
        series.rebuild(connection)
    assert catalog(engine) == truth(engine)


def test_refresh_range_recreates_a_missing_row(engine: Engine) -> None:
    write_snapshots(engine, gappy_rows()[:50])
    want = truth(engine)
    with engine.begin() as connection:
        connection.execute(delete(MetricsSeries))
        for metric_type, host in sorted(want):
            series.refresh_range(connection, metric_type, host)
    assert catalog(engine) == want


# --- the migration ----------------------------------------------------------------------


def _insert_raw(connection: Connection, rows: list[Row]) -> None:
    """Rows written below the models' listeners (as an older version of the code did)."""
    connection.execute(
        insert(MetricsSnapshot),
        [{"timestamp": ts, "metric_type": mt, "metric_data": d} for ts, mt, d in rows],
    )


def test_migration_backfills_the_catalog(engine: Engine) -> None:
    migrate.downgrade(engine, "0005")
    with engine.connect() as connection:
        tables = connection.execute(
            text(
                "SELECT count(*) FROM information_schema.tables WHERE table_name='metrics_series'"
                if engine.dialect.name == "postgresql"
                else "SELECT count(*) FROM sqlite_master WHERE name='metrics_series'"
            )
        ).scalar_one()
    assert tables == 0
    with engine.begin() as connection:
        _insert_raw(connection, gappy_rows()[::5])
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    want = truth(engine)
    assert len(want) >= 6
    assert catalog(engine) == want
    assert_hosts_equal_scan(engine, count=5)
