"""The durable spool: FIFO, restarts, the cap, damaged files, and replay into real databases."""

from __future__ import annotations

import logging
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from metrics_toolkit.collect.spool import Spool, replay
from metrics_toolkit.errors import DatabaseError, InvalidSnapshot, SpoolError
from metrics_toolkit.store.db import make_engine
from metrics_toolkit.store.ingest import SnapshotRow, write_snapshots
from metrics_toolkit.store.models import MetricsSnapshot

T0 = datetime(2026, 2, 1, tzinfo=UTC)


def rows_for(start: int, count: int, *, padding: int = 0) -> list[SnapshotRow]:
    return [
        (
            T0 + timedelta(seconds=10 * i),
            "aggregated",
            {"host": "h", "seq": i, "cpu": {"usage_percent": i / 3}, "pad": "x" * padding},
        )
        for i in range(start, start + count)
    ]


def seqs(spool: Spool, n: int = 10_000) -> list[int]:
    return [entry.metric_data["seq"] for entry in spool.peek(n)]


def stored_seqs(engine: Engine) -> list[int]:
    with Session(engine) as session:
        docs = session.scalars(select(MetricsSnapshot.metric_data).order_by(MetricsSnapshot.id))
        return [doc["seq"] for doc in docs]


def test_fifo_peek_and_ack(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.db") as spool:
        assert spool.depth() == 0 and spool.peek(5) == []
        spool.append(rows_for(0, 3))
        spool.append(rows_for(3, 4))
        assert spool.depth() == 7
        first = spool.peek(3)
        assert [e.metric_data["seq"] for e in first] == [0, 1, 2]
        assert first[0].row == rows_for(0, 1)[0]
        assert first[0].timestamp.tzinfo is not None
        assert spool.ack(e.id for e in first) == 3
        assert spool.depth() == 4
        assert seqs(spool) == [3, 4, 5, 6]
        assert spool.ack([first[0].id]) == 0  # acking twice is harmless


def test_contents_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    with Spool(path) as spool:
        spool.append(rows_for(0, 5))
        spool.ack([spool.peek(1)[0].id])
    with Spool(path) as spool:
        assert spool.depth() == 4
        assert [e.row for e in spool.peek(10)] == rows_for(1, 4)
        spool.append(rows_for(5, 1))
        assert seqs(spool) == [1, 2, 3, 4, 5]
        assert spool.recovery is None


def test_the_cap_drops_the_oldest_and_counts_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "spool.db"
    with Spool(path, max_rows=5) as spool:
        assert spool.append(rows_for(0, 3)) == 0
        with caplog.at_level(logging.WARNING, logger="metrics_toolkit.collect.spool"):
            assert spool.append(rows_for(3, 4)) == 2
        assert spool.depth() == 5 and spool.dropped() == 2
        assert seqs(spool) == [2, 3, 4, 5, 6]
        assert spool.append(rows_for(7, 8)) == 8  # more than the cap in one append
        assert seqs(spool) == [10, 11, 12, 13, 14]
        assert spool.dropped() == 10
    message = caplog.records[0].getMessage()
    assert "is full (max 5 snapshots): dropped the 2 oldest" in message
    assert "from 2026-02-01T00:00:00+00:00 to 2026-02-01T00:00:10+00:00" in message
    with Spool(path, max_rows=5) as spool:
        assert spool.dropped() == 10 and spool.depth() == 5


def test_an_invalid_row_adds_nothing(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.db") as spool:
        bad = (T0, "aggregated", {"host": "h", "v": float("nan")})
        with pytest.raises(InvalidSnapshot, match="Snapshot #2"):
            spool.append([rows_for(0, 1)[0], bad])
        assert spool.depth() == 0


def test_replay_moves_everything_in_order_and_is_idempotent(tmp_path: Path, db_url: str) -> None:
    engine = make_engine(db_url)
    with Spool(tmp_path / "spool.db") as spool:
        spool.append(rows_for(0, 25))
        # A crash after the write but before the ack: the rows are stored and still spooled.
        write_snapshots(engine, [e.row for e in spool.peek(10)])
        result = replay(spool, engine, batch_size=7)
        assert (result.inserted, result.duplicates) == (15, 10)
        assert spool.depth() == 0
    assert stored_seqs(engine) == list(range(25))
    engine.dispose()


def test_replay_stops_at_the_deadline_after_one_batch(tmp_path: Path, sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with Spool(tmp_path / "spool.db") as spool:
        spool.append(rows_for(0, 10))
        result = replay(spool, engine, batch_size=4, deadline=0.0)
        assert result.inserted == 4 and spool.depth() == 6
    engine.dispose()


def test_a_failed_replay_keeps_the_batch(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'no-schema.db'}")
    with Spool(tmp_path / "spool.db") as spool:
        spool.append(rows_for(0, 3))
        with pytest.raises(DatabaseError, match="no such table"):
            replay(spool, engine)
        assert seqs(spool) == [0, 1, 2]
    engine.dispose()


def test_a_truncated_file_is_recovered(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "spool.db"
    originals = rows_for(0, 2000, padding=900)
    with Spool(path) as spool:
        spool.append(originals[:1000])
        spool.append(originals[1000:])
        spool.ack(e.id for e in spool.peek(100))  # 100 rows already delivered
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.truncate(int(size * 0.6))
    with caplog.at_level(logging.WARNING, logger="metrics_toolkit.collect.spool"):
        spool = Spool(path)
    with spool:
        recovery = spool.recovery
        assert recovery is not None
        assert 0 < recovery.kept < 1900
        assert recovery.lost == 1900 - recovery.kept
        assert recovery.moved_to.exists() and recovery.moved_to.name.startswith("spool.db.corrupt-")
        kept = [e.row for e in spool.peek(5000)]
        assert len(kept) == spool.depth() == recovery.kept
        # Every kept row is an original one, in the original order.
        positions = [row[2]["seq"] for row in kept]
        assert positions == sorted(positions) and positions[0] >= 100
        assert all(row == originals[row[2]["seq"]] for row in kept)
        spool.append(rows_for(5000, 1))  # the rebuilt spool works
        assert spool.depth() == recovery.kept + 1
    assert any(
        "was damaged" in r.getMessage() and "could not be read" in r.getMessage()
        for r in caplog.records
    )


def test_a_file_that_is_not_a_database_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    path.write_bytes(b"this is not sqlite" * 500)
    with Spool(path) as spool:
        assert spool.recovery is not None
        assert (spool.recovery.kept, spool.recovery.lost) == (0, None)
        assert "an unknown number could not be read" in spool.recovery.describe()
        spool.append(rows_for(0, 2))
        assert spool.depth() == 2
    assert spool.recovery.moved_to.read_bytes().startswith(b"this is not sqlite")


def test_a_torn_write_ahead_log_loses_only_the_unfinished_append(tmp_path: Path) -> None:
    live = tmp_path / "live"
    copy = tmp_path / "copy"
    copy.mkdir()
    spool = Spool(live / "spool.db")
    for start in range(0, 50, 10):
        spool.append(rows_for(start, 10))
    # What a power loss during the last append would leave: the WAL cut inside its frames.
    shutil.copyfile(live / "spool.db", copy / "spool.db")
    wal = (live / "spool.db-wal").read_bytes()
    (copy / "spool.db-wal").write_bytes(wal[: len(wal) - 100])
    spool.close()
    with Spool(copy / "spool.db") as recovered:
        assert recovered.recovery is None
        assert seqs(recovered) == list(range(40))


def test_undecodable_rows_are_dropped_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "spool.db"
    with Spool(path) as spool:
        spool.append(rows_for(0, 3))
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE spool SET metric_data = '{broken' WHERE id = 2")
    connection.close()
    with (
        Spool(path) as spool,
        caplog.at_level(logging.ERROR, logger="metrics_toolkit.collect.spool"),
    ):
        assert seqs(spool) == [0, 2]
        assert spool.dropped() == 1 and spool.depth() == 2
    assert "could not be decoded and were dropped (ids 2)" in caplog.text


def test_the_metrics_database_is_refused_as_a_spool(sqlite_url: str) -> None:
    path = sqlite_url.removeprefix("sqlite:///")
    with pytest.raises(SpoolError, match="is not a metrics-toolkit spool file") as caught:
        Spool(path)
    assert "metrics_snapshots" in str(caught.value)


def test_an_unwritable_path_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(SpoolError, match=r"Cannot use spool path .*a-file is a file, not a dir"):
        Spool(blocker / "spool.db")
    with pytest.raises(SpoolError, match=r"Cannot create the spool directory .*a-file/deeper"):
        Spool(blocker / "deeper" / "spool.db")
    with pytest.raises(SpoolError, match="is a directory"):
        Spool(tmp_path)
    with pytest.raises(SpoolError, match="max_rows"):
        Spool(tmp_path / "spool.db", max_rows=0)


def test_depth_matches_the_file_after_many_operations(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    with Spool(path, max_rows=50) as spool:
        for start in range(0, 200, 13):
            spool.append(rows_for(start, 13))
            spool.ack(e.id for e in spool.peek(5))
        depth = spool.depth()
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT count(*) FROM spool").fetchone()[0] == depth
    connection.close()
