"""load_frame over the Parquet archive equals load_frame over the database (same rows).

The archive is filled by real policy runs, so it holds what a real one holds: raw rows,
rollups whose raw rows were never archived, and spans that are there twice (raw rows and
the rollup that replaced them, archived when retention deleted it).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from metrics_toolkit.archive import runner as archive
from metrics_toolkit.archive.location import is_archive_source
from metrics_toolkit.archive.store import ArchiveStore
from metrics_toolkit.errors import InvalidInterval, UnknownMetric
from metrics_toolkit.frames.archive import ArchiveQuery, select_partitions
from metrics_toolkit.frames.load import load_frame
from metrics_toolkit.rollup.rule import Row
from metrics_toolkit.store.ingest import write_snapshots
from metrics_toolkit.store.models import MetricsSnapshot
from metrics_toolkit.store.policies import update_policy

T0 = datetime(2026, 3, 2, tzinfo=UTC)
DAYS = 4
END = T0 + timedelta(days=DAYS)
METRICS = ["cpu.usage_percent", "memory.used_bytes", "net.bytes_recv_per_s"]
ALL_STATS = ("mean", "min", "max", "sum", "count", "first", "last")


def history(days: int = DAYS, step_minutes: int = 5, seed: int = 11) -> list[Row]:
    """Two hosts every ``step_minutes``; ``net`` missing from every 4th row, a counter."""
    rng = random.Random(seed)
    rows: list[Row] = []
    for host in ("web-1", "db-1"):
        total = 0
        for i in range(days * 24 * 60 // step_minutes):
            total = 0 if i % 500 == 499 else total + rng.randrange(0, 1000)  # a reset
            doc: dict[str, Any] = {
                "host": host,
                "cpu": {"usage_percent": round(rng.uniform(0, 100), 2)},
                "memory": {"used_bytes": rng.randrange(10**6, 10**7)},
                "disk": {"ops_total": total},
            }
            if i % 4:
                doc["net"] = {"bytes_recv_per_s": rng.uniform(0, 1e6)}
            rows.append((T0 + timedelta(minutes=step_minutes * i), "aggregated", doc))
    return rows


def set_policy(engine: Engine, **values: Any) -> None:
    with Session(engine) as session, session.begin():
        update_policy(session=session, **values)


def fill_archive(engine: Engine, root: Path) -> dict[str, pd.DataFrame]:
    """Load the history, roll day 0 up without archiving, then archive everything.

    Returns the database's frames taken just before everything moved to the archive.
    """
    write_snapshots(engine, history())
    set_policy(
        engine,
        retention_days=30,
        downsample_after_days=1,
        downsample_interval="1h",
        archive_enabled=False,
    )
    archive.run_archive(engine, now=T0 + timedelta(days=2), archive_path=root)  # day 0 rolled
    reference = {name: load_frame(engine, T0, END, **kwargs) for name, kwargs in CASES.items()}
    set_policy(engine, retention_days=2, archive_enabled=True)
    archive.run_archive(engine, now=END, archive_path=root)  # days 0-1 out, day 2 rolled
    archive.run_archive(engine, now=END + timedelta(days=3), archive_path=root)  # all out
    with Session(engine) as session:
        assert session.execute(select(func.count(MetricsSnapshot.id))).scalar_one() == 0
    return reference


CASES: dict[str, dict[str, Any]] = {
    "hourly all stats": {"metrics": METRICS, "interval": "1h", "stats": ALL_STATS, "by_host": True},
    # hosts pooled at equal timestamps: first/last ties go by host label on every path
    "hourly all stats pooled": {"metrics": METRICS, "interval": "1h", "stats": ALL_STATS},
    "hourly pooled": {"metrics": METRICS, "interval": "1h", "stats": ("mean", "min", "sum")},
    "daily mean by host": {"metrics": METRICS, "interval": "1D", "by_host": True},
    "3h one host": {"metrics": METRICS, "interval": "3h", "host": "db-1", "stats": ("max",)},
    "finer than stored": {
        "metrics": ["cpu.usage_percent"],
        "interval": "30min",
        "stats": ("mean", "count"),
    },
    "counter by host": {
        "metrics": ["disk.ops_total"],
        "interval": "6h",
        "by_host": True,
        "stats": ("increase", "resets", "first", "last"),
    },
    "counter pooled": {
        "metrics": ["disk.ops_total"],
        "interval": "6h",
        "stats": ("increase", "resets", "max_rate", "first", "last"),
    },
    "full resolution": {"metrics": METRICS, "stats": ("mean", "count"), "by_host": True},
    "every metric, auto": {"interval": "auto", "point_budget": 50},
}


@pytest.fixture
def filled(engine: Engine, tmp_path: Path) -> tuple[Path, dict[str, pd.DataFrame]]:
    root = tmp_path / "archive"
    return root, fill_archive(engine, root)


def assert_same(got: pd.DataFrame, want: pd.DataFrame, name: str = "frame") -> None:
    # The database's own paths disagree on the host level's dtype (object from SQL,
    # str from its pandas path for counters): compare values, not that dtype.
    pd.testing.assert_frame_equal(
        _sorted(got), _sorted(want), check_freq=False, rtol=1e-9, obj=name,
        check_index_type=False,
    )  # fmt: skip


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    # The database orders rows of equal timestamps (two hosts) arbitrarily.
    return frame.sort_index(kind="stable") if frame.index.nlevels > 1 else frame


def test_archive_frames_equal_database_frames(
    filled: tuple[Path, dict[str, pd.DataFrame]],
) -> None:
    root, reference = filled
    for name, kwargs in CASES.items():
        got = load_frame(root, T0, END, **kwargs)
        want = reference[name]
        assert len(want), name
        assert_same(got, want, name)
        assert got.attrs["interval"] == want.attrs["interval"], name
        assert got.attrs["stored_intervals"] == want.attrs["stored_intervals"], name
        assert got.attrs["notes"] == want.attrs["notes"], name


def test_archive_holds_duplicate_versions_that_are_read_once(
    filled: tuple[Path, dict[str, pd.DataFrame]],
) -> None:
    root, _ = filled
    table = ArchiveStore(root).dataset().to_table(columns=["timestamp", "rollup_interval"])
    frame = table.to_pandas()
    day2 = frame[
        (frame.timestamp >= T0 + timedelta(days=2)) & (frame.timestamp < T0 + timedelta(days=3))
    ]
    # Day 2 is in the archive twice: raw rows and the hourly rollups that replaced them.
    assert day2.rollup_interval.isna().sum() == 2 * 288
    assert (day2.rollup_interval == "1h").sum() == 2 * 24
    counts = load_frame(
        root, T0, END, metrics=["cpu.usage_percent"], interval="1D", stats=("count",)
    )
    assert counts["cpu.usage_percent"].tolist() == [576.0] * DAYS


def test_string_urls_and_stores_are_sources(
    filled: tuple[Path, dict[str, pd.DataFrame]],
) -> None:
    root, reference = filled
    want = reference["daily mean by host"]
    for source in (str(root), f"file://{root}", ArchiveStore(root)):
        got = load_frame(source, T0, END, **CASES["daily mean by host"])
        assert_same(got, want)


def test_reads_only_the_partitions_it_needs(
    filled: tuple[Path, dict[str, pd.DataFrame]],
) -> None:
    root, _ = filled
    store = ArchiveStore(root)
    query = ArchiveQuery("aggregated", T0 + timedelta(days=1), T0 + timedelta(days=2), None, ())
    assert [d.isoformat() for d in select_partitions(store, query)] == ["2026-03-03"]
    other = ArchiveQuery("other", None, None, None, ())
    assert select_partitions(store, other) == {}
    # A pruned partition is never opened: make every other file unreadable.
    for path in store.files():
        if "date=2026-03-03" not in str(path):
            path.write_bytes(b"not parquet")
    got = load_frame(
        root, T0 + timedelta(days=1), T0 + timedelta(days=2), metrics=METRICS, interval="1h"
    )
    assert len(got) == 24 and got.notna().all().all()


def test_columns_are_projected(filled: tuple[Path, dict[str, pd.DataFrame]]) -> None:
    root, _ = filled
    # A file holding only the requested columns is enough (others would be read as nulls).
    store = ArchiveStore(root)
    for path in store.files():
        table = pq.read_table(path)
        keep = ["id", "timestamp", "host", "rollup_interval", "document", "cpu.usage_percent"]
        pq.write_table(table.select([c for c in keep if c in table.column_names]), path)
    got = load_frame(root, T0, END, metrics=["cpu.usage_percent"], interval="1D")
    assert len(got) == DAYS and got["cpu.usage_percent"].between(0, 100).all()


def test_empty_and_invalid_requests(tmp_path: Path) -> None:
    empty = load_frame(tmp_path, T0, END, metrics=METRICS, interval="1h", stats=("mean", "count"))
    assert empty.empty and list(empty.columns.get_level_values(0)) == [
        m for m in METRICS for _ in (0, 1)
    ]
    assert load_frame(tmp_path, T0, END).empty
    with pytest.raises(InvalidInterval, match="auto"):
        load_frame(tmp_path, T0, END, metrics=METRICS, interval="7min")
    with pytest.raises(UnknownMetric):
        load_frame(tmp_path, T0, END, metrics=["_rollup.count"])


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("/var/lib/metrics/archive", True),
        ("relative/archive", True),
        ("s3://bucket/prefix", True),
        ("file:///tmp/archive", True),
        ("memory://archive", True),
        ("sqlite:///metrics.db", False),
        ("postgresql+psycopg://u@h/db", False),
        ("postgres://u@h/db", False),
        (Path("/tmp/a"), True),
        (42, False),
    ],
)
def test_is_archive_source(source: object, expected: bool) -> None:
    assert is_archive_source(source) is expected
