from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq

from metrics_toolkit.archive.store import ArchiveRow, ArchiveStore

T0 = datetime(2026, 1, 5, 23, 58, tzinfo=UTC)


def _rows(n: int, metric_type: str = "aggregated") -> list[ArchiveRow]:
    return [
        ArchiveRow(
            id=i + 1,
            timestamp=T0 + timedelta(minutes=i),
            metric_type=metric_type,
            document={"host": f"h{i % 2}", "cpu": {"usage_percent": float(i)}, "tag": "x"},
        )
        for i in range(n)
    ]


def test_pending_files_are_invisible_until_finalized(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path / "archive")
    pending = store.write_pending(_rows(4), stem="run1")
    # Two UTC dates (23:58, 23:59 | 00:00, 00:01) -> two partitions.
    assert len(pending) == 2
    assert store.files() == []
    assert list(store.iter_rows()) == []
    assert ds.dataset(str(store.root), format="parquet").files == []
    store.finalize(pending)
    store.finalize(pending)  # idempotent
    assert [p.name for p in store.files()] == ["part-run1.parquet", "part-run1.parquet"]
    assert store.pending_files() == []


def test_round_trip_and_partition_pruning(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path)
    rows = _rows(6)
    store.finalize(store.write_pending(rows, stem="a"))
    back = [row for batch in store.iter_rows() for row in batch]
    assert sorted(back, key=lambda r: r.id) == rows
    later = [
        row
        for batch in store.iter_rows(start=T0 + timedelta(minutes=2), end=T0 + timedelta(minutes=4))
        for row in batch
    ]
    assert [r.id for r in later] == [3, 4]
    parts = store.partitions()
    assert [(p.metric_type, p.date.isoformat(), p.rows) for p in parts] == [
        ("aggregated", "2026-01-05", 2),
        ("aggregated", "2026-01-06", 4),
    ]
    table = pq.read_table(store.files()[0])
    assert "cpu.usage_percent" in table.column_names
    assert table.column("host").to_pylist() == ["h0", "h1"]


def test_discard_pending_keeps_only_named(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path)
    first = store.write_pending(_rows(1), stem="keep")
    second = store.write_pending(_rows(1), stem="drop")
    removed = store.discard_pending(keep=first)
    assert removed == second
    assert store.pending_files() == first


def test_hostile_metric_type_stays_inside_the_archive(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path / "a")
    rows = _rows(1, metric_type="../../etc/x y")
    store.finalize(store.write_pending(rows, stem="z"))
    assert all(tmp_path / "a" in p.parents for p in store.files())
    assert [r.metric_type for b in store.iter_rows() for r in b] == ["../../etc/x y"]
