"""The archive runner's columnar fast path gives what the general, document path gives.

Real databases (SQLite file and PostgreSQL), real runs: the same rows rolled up both ways
must give the same documents (leaf by leaf, floats within rounding), the same verification
counts, and the same archive contents.
"""

from __future__ import annotations

import copy
import json
import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from metrics_toolkit.archive import runner as archive
from metrics_toolkit.archive.fast import RawChunk, read_raw_chunk
from metrics_toolkit.archive.store import ArchiveStore
from metrics_toolkit.collect.generator import generate_history
from metrics_toolkit.documents import flatten, host_of, strip_metrics
from metrics_toolkit.errors import InvalidSnapshot, MetricsToolkitError
from metrics_toolkit.intervals import bucket_start
from metrics_toolkit.rollup.docs import gauge_documents
from metrics_toolkit.rollup.frame import ROW_METRIC, resample_stats
from metrics_toolkit.rollup.output import to_snapshot_docs
from metrics_toolkit.rollup.rule import Row, rollup_rows
from metrics_toolkit.store.ingest import write_snapshots
from metrics_toolkit.store.models import MetricsSnapshot
from metrics_toolkit.store.policies import update_policy

T0 = datetime(2026, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)
COLUMNS = (MetricsSnapshot.timestamp, MetricsSnapshot.metric_type, MetricsSnapshot.metric_data)


def generated(hours: int = 5, start: datetime = T0) -> list[Row]:
    """Generator documents (75 leaves, per-device maps, mount paths as keys), 2 hosts."""
    chunks = generate_history(
        start=start, end=start + timedelta(hours=hours), interval="1min", hosts=2, seed=5
    )
    return [row for chunk in chunks for row in chunk]


def edge_rows(start: datetime = T0) -> list[Row]:
    """Documents that exercise flatten's rules: gaps, ints, odd keys, labels, nulls."""
    rows: list[Row] = []
    for i in range(150):
        ts = start + timedelta(seconds=97 * i)
        doc: dict[str, Any] = {
            "host": "web-1" if i % 3 else "db-1",
            "cpu": {"usage_percent": (i * 7.31) % 100, "busy": i % 2 == 0},
            "memory": {"used_bytes": 10**9 + i * 12_345},  # ints become floats
            "big": {"n": 2**70 + i},  # wider than int64
            "a.b": {"c\\d": float(i)},  # keys that need escaping in paths
            "température": {"cœur": -1.5 * i},
            "processes": {"top_cpu": [{"name": f"p{i}", "pid": i, "cpu_percent": 1.0}]},
            "kernel": f"6.{i // 40}",  # a label that changes: the latest row's wins
            "id": i,  # a leaf named like an archive base column
        }
        if i % 4:
            doc["net"] = {"bytes_recv_per_s": i * 1000.5}  # a leaf missing from some rows
        elif i % 8 == 0:
            doc["net"] = None  # null: a label where other rows have a dict
        if i % 11 == 0:
            doc["cpu"]["usage_percent"] = None
        if i == 20:
            doc = {}  # no host, no leaves: still a sample
        rows.append((ts, "aggregated", doc))
    rows.append((start + timedelta(minutes=30), "custom", {"host": "web-1", "x": {"y": 1}}))
    return rows


def read_chunk(engine: Engine, lo: datetime, hi: datetime) -> tuple[RawChunk | None, list[Row]]:
    """The chunk read both ways: columnar, and as documents ordered by timestamp then id."""
    with Session(engine) as session:
        fast = read_raw_chunk(session.connection(), lo, hi)
        stmt = (
            select(
                MetricsSnapshot.timestamp, MetricsSnapshot.metric_type, MetricsSnapshot.metric_data
            )
            .where(MetricsSnapshot.timestamp >= lo, MetricsSnapshot.timestamp < hi)
            .order_by(MetricsSnapshot.timestamp, MetricsSnapshot.id)
        )
        rows = [(ts, mt, doc) for ts, mt, doc in session.execute(stmt)]
        session.rollback()
    return fast, rows


def assert_close(got: Any, want: Any, where: str = "doc", shift: float = 0.0) -> None:
    """Equal documents, floats within rounding; ``got``'s times are ``shift`` seconds later."""
    _close(got, want, where, shift, in_times=False)


def _close(got: Any, want: Any, where: str, shift: float, in_times: bool) -> None:
    if isinstance(want, dict):
        assert isinstance(got, dict), where
        assert sorted(got) == sorted(want), where
        for key in want:
            times = in_times or key in ("first_time", "last_time")
            _close(got[key], want[key], f"{where}.{key}", shift, times)
        return
    assert type(got) is type(want), f"{where}: {got!r} vs {want!r}"
    if isinstance(want, float):
        moved = got - shift if in_times else got
        assert math.isclose(moved, want, rel_tol=1e-12, abs_tol=1e-9), where
    else:
        assert got == want, where


def assert_same_rollups(got: list[Row], want: list[Row], shift: timedelta = timedelta()) -> None:
    def key(row: Row) -> tuple[str, str, datetime]:
        return (host_of(row[2]), row[1], row[0])

    got, want = sorted(got, key=key), sorted(want, key=key)
    assert [(h, mt, ts - shift) for h, mt, ts in map(key, got)] == list(map(key, want))
    for (ts, _, doc), (_, _, expected) in zip(got, want, strict=True):
        assert_close(doc, expected, f"{ts:%H:%M}", shift.total_seconds())


def expected_counts(rows: list[Row], interval: str) -> dict[Any, tuple[int, dict[str, float]]]:
    """Samples and per-leaf counts per bucket, straight from the documents."""
    out: dict[Any, tuple[int, dict[str, float]]] = {}
    for ts, mt, doc in rows:
        key = (host_of(doc), mt, bucket_start(ts, interval))
        samples, leaves = out.get(key, (0, {}))
        for path in flatten(doc):
            leaves[path] = leaves.get(path, 0.0) + 1.0
        out[key] = (samples + 1, leaves)
    return out


@pytest.mark.parametrize("interval", ["1h", "15min", "1D"])
def test_generated_rows_roll_up_as_the_rule_does(engine: Engine, interval: str) -> None:
    rows = generated()
    write_snapshots(engine, rows)
    fast, stored = read_chunk(engine, T0, T0 + DAY)
    assert fast is not None, "generated documents take the fast path"
    assert len(fast) == len(rows) == len(stored)
    assert_same_rollups(fast.rollups(interval), rollup_rows(stored, interval))
    assert fast.expected_counts(interval) == expected_counts(stored, interval)


def test_edge_documents_roll_up_as_the_rule_does(engine: Engine) -> None:
    rows = edge_rows()
    write_snapshots(engine, rows)
    fast, stored = read_chunk(engine, T0, T0 + DAY)
    assert fast is not None
    got = fast.rollups("1h")
    assert_same_rollups(got, rollup_rows(stored, "1h"))
    assert fast.expected_counts("1h") == expected_counts(stored, "1h")
    last = max((r for r in got if r[2].get("host") == "web-1"), key=lambda r: r[0])
    in_last = [d["a.b"]["c\\d"] for ts, _, d in rows if d.get("host") == "web-1" and ts >= last[0]]
    assert last[2]["kernel"] == "6.3"  # the label of the bucket's latest row
    assert last[2]["a.b"] == {"c\\d": pytest.approx(sum(in_last) / len(in_last))}
    no_host = [doc for _, _, doc in got if "host" not in doc]
    assert no_host and no_host[0]["_rollup"] == {"interval": "1h", "samples": 1, "count": {}}


def test_archive_tables_match_the_general_writer(engine: Engine, tmp_path: Path) -> None:
    write_snapshots(engine, edge_rows())
    fast, stored = read_chunk(engine, T0, T0 + DAY)
    assert fast is not None
    with Session(engine) as session:
        ids = session.execute(
            select(MetricsSnapshot.id).order_by(MetricsSnapshot.timestamp, MetricsSnapshot.id)
        ).scalars()
        general = [
            archive.ArchiveRow(i, ts, mt, doc) for i, (ts, mt, doc) in zip(ids, stored, strict=True)
        ]
    store = ArchiveStore(tmp_path)
    slow_files = store.write_pending(general, stem="slow")
    fast_files = store.write_pending_tables(fast.archive_tables(), stem="fast")
    assert len(slow_files) == len(fast_files) == 2  # two metric types
    for slow_file, fast_file in zip(slow_files, fast_files, strict=True):
        slow, quick = pq.read_table(slow_file), pq.read_table(fast_file)
        assert quick.schema == slow.schema
        for name in slow.column_names:
            if name == "document":  # the text as stored, not re-serialised: equal as JSON
                got = [json.loads(d) for d in quick[name].to_pylist()]
                assert got == [json.loads(d) for d in slow[name].to_pylist()]
            else:
                assert quick[name].to_pylist() == slow[name].to_pylist(), name


def _insert(engine: Engine, rows: list[Row]) -> None:
    with Session(engine) as session, session.begin():
        session.execute(
            insert(MetricsSnapshot),
            [{"timestamp": ts, "metric_type": mt, "metric_data": doc} for ts, mt, doc in rows],
        )


LATER = T0 + timedelta(hours=2)
FALLBACKS = {
    "rolled-up row": lambda: rollup_rows(generated(hours=1, start=LATER), "1h"),
    "counter leaf": lambda: [(LATER, "aggregated", {"host": "web-1", "net": {"errors_total": 3}})],
    "number then text": lambda: [(LATER, "aggregated", {"host": "web-1", "cpu": {"load1": "x"}})],
    "a list document": lambda: [(LATER, "aggregated", [1, 2])],
}


@pytest.mark.parametrize("case", sorted(FALLBACKS))
def test_other_chunks_take_the_general_path(engine: Engine, tmp_path: Path, case: str) -> None:
    write_snapshots(engine, generated(hours=2))
    _insert(engine, FALLBACKS[case]())
    fast, _ = read_chunk(engine, T0, T0 + DAY)
    assert fast is None
    with Session(engine) as session, session.begin():
        update_policy(
            session=session,
            retention_days=30,
            downsample_after_days=1,
            downsample_interval="1h",
            archive_enabled=True,
        )
    result = archive.run_archive(engine, now=T0 + 2 * DAY, archive_path=tmp_path)
    assert result.status == "completed" and result.total("rollups_written") > 0


def test_run_gives_what_the_general_path_gives(engine: Engine, tmp_path: Path) -> None:
    """Day 0 rolled up the general way, day 2 (the same rows, two days later) as columns."""
    shift = 2 * DAY
    first = generated(hours=6) + edge_rows(T0 + timedelta(hours=8))
    second = [(ts + shift, mt, doc) for ts, mt, doc in first]
    write_snapshots(engine, first + second)
    with Session(engine) as session, session.begin():
        update_policy(
            session=session,
            retention_days=30,
            downsample_after_days=1,
            downsample_interval="1h",
            archive_enabled=True,
        )
    general = archive.run_archive(engine, now=T0 + 2 * DAY, archive_path=tmp_path, columnar=False)
    columnar = archive.run_archive(engine, now=T0 + 4 * DAY, archive_path=tmp_path)
    for name in ("rows_replaced", "rows_archived", "rollups_written"):
        assert columnar.total(name) == general.total(name) > 0
    with Session(engine) as session:
        stored = session.execute(
            select(
                MetricsSnapshot.timestamp, MetricsSnapshot.metric_type, MetricsSnapshot.metric_data
            )
        ).all()
    rollups: dict[bool, list[Row]] = defaultdict(list)
    for ts, mt, doc in stored:
        assert "_rollup" in doc, "every row was rolled up"
        rollups[ts >= T0 + shift].append((ts, mt, doc))
    assert_same_rollups(rollups[True], rollups[False], shift)
    # The archive holds the same rows, documents and columns for both days.
    archived: dict[bool, list[Any]] = defaultdict(list)
    for batch in ArchiveStore(tmp_path).iter_rows():
        for row in batch:
            archived[row.timestamp >= T0 + shift].append(
                (
                    row.timestamp - (shift if row.timestamp >= T0 + shift else timedelta()),
                    row.metric_type,
                    row.document,
                )
            )
    assert sorted(archived[True], key=repr) == sorted(archived[False], key=repr)
    assert len(archived[True]) == len(first)
    files = {(p.parent.parent.name, p.parent.name): p for p in ArchiveStore(tmp_path).files()}
    assert len(files) == 4  # two metric types, two days
    for metric_type in ("metric_type=aggregated", "metric_type=custom"):
        old = pq.read_table(files[metric_type, f"date={T0.date()}"])
        new = pq.read_table(files[metric_type, f"date={(T0 + shift).date()}"])
        assert new.schema == old.schema
        assert new.drop_columns(["id", "timestamp", "document"]).equals(
            old.drop_columns(["id", "timestamp", "document"])
        )


def test_gauge_documents_equal_to_snapshot_docs() -> None:
    rows = edge_rows()
    stats = resample_stats(rows, "1h")
    labels = copy.deepcopy(list(stats[ROW_METRIC, "labels"]))
    assert gauge_documents(stats, labels) == to_snapshot_docs(stats)
    counters = resample_stats([(T0, "aggregated", {"host": "a", "n": {"x_total": 1.0}})], "1h")
    with pytest.raises(MetricsToolkitError, match="to_snapshot_docs"):
        gauge_documents(counters, [strip_metrics({"host": "a"})])
    huge = [(T0 + timedelta(minutes=i), "aggregated", {"host": "a", "x": 1e308}) for i in (1, 2)]
    overflow = resample_stats(huge, "1h")
    with pytest.raises(InvalidSnapshot, match="overflow"):
        to_snapshot_docs(overflow)
    with pytest.raises(InvalidSnapshot, match="overflow"):
        gauge_documents(overflow, [{"host": "a"}])
