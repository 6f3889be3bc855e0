"""The archive runner on real databases: policy timeline, verification, late rows, crashes."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from metrics_toolkit.archive import runner as archive
from metrics_toolkit.archive.store import ArchiveStore
from metrics_toolkit.errors import InvalidPolicy
from metrics_toolkit.frames.load import load_frame
from metrics_toolkit.rollup.rule import Row
from metrics_toolkit.store.ingest import write_snapshots
from metrics_toolkit.store.locks import JobBusy, exclusive
from metrics_toolkit.store.models import ArchivePolicy, ArchiveRun, MetricsSnapshot
from metrics_toolkit.store.policies import update_policy

T0 = datetime(2026, 2, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=6)
DELETE_BEFORE = NOW - timedelta(days=4)
DOWNSAMPLE_BEFORE = NOW - timedelta(days=1)
METRICS = ["cpu.usage_percent", "memory.used_bytes", "net.bytes_recv_per_s"]


def history(days: int = 6, step_minutes: int = 5, seed: int = 3) -> list[Row]:
    rng = random.Random(seed)
    rows: list[Row] = []
    for host in ("web-1", "db-1"):
        for i in range(days * 24 * 60 // step_minutes):
            doc: dict[str, Any] = {
                "host": host,
                "cpu": {"usage_percent": round(rng.uniform(0, 100), 2)},
                "memory": {"used_bytes": rng.randrange(10**6, 10**7)},
                "processes": {"top_cpu": [{"name": "x", "pid": 1, "cpu_percent": 1.0}]},
            }
            if i % 5:
                doc["net"] = {"bytes_recv_per_s": rng.uniform(0, 1e6)}
            rows.append((T0 + timedelta(minutes=step_minutes * i), "aggregated", doc))
    return rows


def set_policy(engine: Engine, *, archive_enabled: bool = True) -> None:
    with Session(engine) as session, session.begin():
        update_policy(
            session=session,
            retention_days=4,
            downsample_after_days=1,
            downsample_interval="1h",
            archive_enabled=archive_enabled,
        )


@pytest.fixture
def loaded(engine: Engine) -> list[Row]:
    rows = history()
    write_snapshots(engine, rows)
    set_policy(engine)
    return rows


def raw_identities(engine: Engine) -> list[tuple[str, datetime]]:
    with Session(engine) as session:
        docs = session.execute(select(MetricsSnapshot.timestamp, MetricsSnapshot.metric_data)).all()
    return [(doc["host"], ts) for ts, doc in docs if "_rollup" not in doc]


def archived_raw_identities(root: Path) -> list[tuple[str, datetime]]:
    return [
        (row.document["host"], row.timestamp)
        for batch in ArchiveStore(root).iter_rows()
        for row in batch
        if "_rollup" not in row.document
    ]


def expected_hourly(rows: list[Row]) -> pd.DataFrame:
    frame = pd.DataFrame(
        [
            {
                "timestamp": ts,
                "cpu.usage_percent": doc["cpu"]["usage_percent"],
                "memory.used_bytes": float(doc["memory"]["used_bytes"]),
                "net.bytes_recv_per_s": doc.get("net", {}).get("bytes_recv_per_s"),
            }
            for ts, _, doc in rows
        ]
    ).set_index("timestamp")
    frame = frame.astype(float)
    hourly = frame.resample("1h", origin="epoch", closed="left", label="left")
    return hourly.agg(["mean", "max", "count"]).astype(float)


def check_invariants(engine: Engine, root: Path, original: list[Row]) -> None:
    """Database + archive hold every original sample exactly once, and rollups are right."""
    in_db = raw_identities(engine)
    in_archive = archived_raw_identities(root)
    assert not [k for k, n in Counter(in_db + in_archive).items() if n > 1], "a sample is doubled"
    expected = {(doc["host"], ts) for ts, _, doc in original}
    assert set(in_db) | set(in_archive) == expected, "a sample is lost"
    assert {ts for _, ts in in_db} and min(ts for _, ts in in_db) >= DOWNSAMPLE_BEFORE
    kept = [r for r in original if DELETE_BEFORE <= r[0] < DOWNSAMPLE_BEFORE]
    got = load_frame(
        engine,
        DELETE_BEFORE,
        DOWNSAMPLE_BEFORE,
        metrics=METRICS,
        interval="1h",
        stats=("mean", "max", "count"),
    )
    want = expected_hourly(kept)
    want.columns = got.columns
    pd.testing.assert_frame_equal(got, want, check_freq=False, rtol=1e-9)
    assert ArchiveStore(root).pending_files() == []
    with Session(engine) as session:
        rollups = session.execute(
            select(MetricsSnapshot.metric_data).where(MetricsSnapshot.timestamp < DOWNSAMPLE_BEFORE)
        ).scalars()
        assert sum(doc["_rollup"]["samples"] for doc in rollups) == len(kept)


def test_run_applies_the_timeline(engine: Engine, loaded: list[Row], tmp_path: Path) -> None:
    before = load_frame(
        engine, DELETE_BEFORE, NOW, metrics=METRICS, interval="1h", stats=("mean", "max", "count")
    )
    result = archive.run_archive(engine, now=NOW, archive_path=tmp_path)
    assert result.status == "completed"
    assert result.total("rows_deleted") == sum(1 for r in loaded if r[0] < DELETE_BEFORE)
    assert result.total("rollups_written") == 2 * 24 * 3
    check_invariants(engine, tmp_path, loaded)
    after = load_frame(
        engine, DELETE_BEFORE, NOW, metrics=METRICS, interval="1h", stats=("mean", "max", "count")
    )
    pd.testing.assert_frame_equal(after, before, check_freq=False, rtol=1e-9)
    with Session(engine) as session:
        policy = session.execute(select(ArchivePolicy)).scalar_one()
        assert policy.last_archive_run == NOW
        run = session.execute(select(ArchiveRun)).scalar_one()
        assert (run.status, run.rows_deleted, run.watermark) == (
            "completed",
            result.total("rows_deleted"),
            DOWNSAMPLE_BEFORE,
        )
    # A second run finds nothing to do and changes nothing.
    again = archive.run_archive(engine, now=NOW, archive_path=tmp_path)
    assert again.chunks == []
    check_invariants(engine, tmp_path, loaded)


def test_a_retention_cut_inside_a_bucket(engine: Engine, loaded: list[Row], tmp_path: Path) -> None:
    """The first rolled-up bucket starts before the retention cut: its rows before the cut
    are deleted first, and the rollup (read only after the delete) holds the rest.

    Before the fix the rollup's read-ahead ran beside the delete and the run failed with
    "Expected to delete N rows but N-k were there" (seen in `make demo`).
    """
    now = NOW + timedelta(minutes=37)
    cut = now - timedelta(days=4)
    result = archive.run_archive(engine, now=now, archive_path=tmp_path)
    assert result.status == "completed"
    assert result.total("rows_deleted") == sum(1 for r in loaded if r[0] < cut)
    in_db = raw_identities(engine)
    in_archive = archived_raw_identities(tmp_path)
    assert sorted(in_db + in_archive) == sorted((doc["host"], ts) for ts, _, doc in loaded)
    with Session(engine) as session:
        docs = session.execute(select(MetricsSnapshot.timestamp, MetricsSnapshot.metric_data)).all()
    first = min(ts for ts, doc in docs if "_rollup" in doc)
    assert first < cut < first + timedelta(hours=1)
    kept = [r for r in loaded if cut <= r[0] < result.plan.downsample_before]
    rolled = sum(doc["_rollup"]["samples"] for _, doc in docs if "_rollup" in doc)
    assert rolled == len(kept)


def test_late_rows_are_merged_into_their_bucket(
    engine: Engine, loaded: list[Row], tmp_path: Path
) -> None:
    archive.run_archive(engine, now=NOW, archive_path=tmp_path)
    late_at = DELETE_BEFORE + timedelta(hours=5)
    late = [
        (
            late_at + timedelta(seconds=s),
            "aggregated",
            {"host": "web-1", "cpu": {"usage_percent": 99.0}, "memory": {"used_bytes": 1}},
        )
        for s in (7, 17, 3599)  # new samples between the 5-minute ticks
    ]
    write_snapshots(engine, late)
    archive.run_archive(engine, now=NOW, archive_path=tmp_path)
    check_invariants(engine, tmp_path, loaded + late)
    with Session(engine) as session:
        in_bucket = (
            session.execute(
                select(MetricsSnapshot.metric_data).where(MetricsSnapshot.timestamp == late_at)
            )
            .scalars()
            .all()
        )
    assert len(in_bucket) == 2  # one rollup per host, no raw straggler left
    web = next(d for d in in_bucket if d["host"] == "web-1")
    assert web["_rollup"]["samples"] == 12 + 3


def test_dry_run_changes_nothing(engine: Engine, loaded: list[Row], tmp_path: Path) -> None:
    the_plan, actions = archive.dry_run(engine, now=NOW)
    assert the_plan.delete_before == DELETE_BEFORE
    assert sum(a.rows for a in actions if "delete" in a.action) == sum(
        1 for r in loaded if r[0] < DELETE_BEFORE
    )
    assert sum(a.rows for a in actions if "rollup" in a.action) == sum(
        1 for r in loaded if DELETE_BEFORE <= r[0] < DOWNSAMPLE_BEFORE
    )
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(MetricsSnapshot)) == len(loaded)
        assert session.scalar(select(func.count()).select_from(ArchiveRun)) == 0
    assert not tmp_path.joinpath("metric_type=aggregated").exists()


def test_without_archive_nothing_is_written(engine: Engine, tmp_path: Path) -> None:
    write_snapshots(engine, history(days=3))
    set_policy(engine, archive_enabled=False)
    result = archive.run_archive(engine, now=NOW - timedelta(days=3), archive_path=tmp_path / "a")
    assert result.total("rows_archived") == 0 and result.total("rollups_written") > 0
    assert ArchiveStore(tmp_path / "a").files() == []


def test_invalid_policy_is_refused_before_anything(
    engine: Engine, loaded: list[Row], tmp_path: Path
) -> None:
    with engine.begin() as connection:  # bypass validation, as a hand edit of the table would
        connection.execute(update(ArchivePolicy).values(downsample_interval="7min"))
    with pytest.raises(InvalidPolicy, match="7min"):
        archive.run_archive(engine, now=NOW, archive_path=tmp_path)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(MetricsSnapshot)) == len(loaded)
        assert session.scalar(select(func.count()).select_from(ArchiveRun)) == 0


def test_two_runs_never_interleave(engine: Engine, loaded: list[Row], tmp_path: Path) -> None:
    with exclusive(engine, "archive"), pytest.raises(JobBusy, match="holds the lock"):
        archive.run_archive(engine, now=NOW, archive_path=tmp_path, wait_seconds=0.3)
    assert archive.run_archive(engine, now=NOW, archive_path=tmp_path).status == "completed"


FAULT_POINTS = [
    "locked",
    "before_archive_write",
    "after_archive_write",
    "after_archive_write@3",
    "after_delete",
    "after_delete@4",
    "after_insert",
    "before_commit",
    "before_commit@2",
    "after_commit",
    "after_commit@5",
]


@pytest.mark.slow
@pytest.mark.parametrize("point", FAULT_POINTS)
def test_killed_run_is_finished_by_the_next(
    db_url: str, engine: Engine, loaded: list[Row], tmp_path: Path, point: str
) -> None:
    command = [
        sys.executable,
        "-m",
        "metrics_toolkit",
        "--database-url",
        db_url,
        "archive",
        "run",
        "--now",
        NOW.isoformat(),
        "--archive-path",
        str(tmp_path),
    ]
    env = {**os.environ, archive.FAULT_ENV: point}
    killed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    check_invariants(engine, tmp_path, loaded)
    with Session(engine) as session:
        statuses = [
            r.status for r in session.execute(select(ArchiveRun).order_by(ArchiveRun.id)).scalars()
        ]
    assert statuses[-1] == "completed"
    assert "running" not in statuses


def test_restore_brings_back_raw_rows_without_doubling(
    engine: Engine, loaded: list[Row], tmp_path: Path
) -> None:
    from metrics_toolkit.archive.restore import restore

    before = load_frame(
        engine, T0, NOW, metrics=METRICS, interval="1h", stats=("mean", "count"), method="pandas"
    )
    archive.run_archive(engine, now=NOW, archive_path=tmp_path)
    # A range covering deleted rows (day 1) and rolled-up rows (day 3), mid-bucket edges.
    start, end = (
        T0 + timedelta(hours=20, minutes=30),
        DELETE_BEFORE + timedelta(hours=2, minutes=10),
    )
    result = restore(engine, start=start, end=end, archive_path=tmp_path)
    assert (result.start, result.end) == (start, DELETE_BEFORE + timedelta(hours=3))
    assert result.rollups_replaced == 2 * 3
    want = [(d["host"], ts) for ts, _, d in loaded if result.start <= ts < result.end]
    got = [k for k in raw_identities(engine) if result.start <= k[1] < result.end]
    assert sorted(got) == sorted(want)
    assert result.restored == len(want)
    after = load_frame(
        engine, T0, NOW, metrics=METRICS, interval="1h", stats=("mean", "count"), method="pandas"
    )
    restored_hours = after.loc[result.start : result.end - timedelta(seconds=1)]
    pd.testing.assert_frame_equal(
        restored_hours, before.loc[restored_hours.index], check_freq=False, rtol=1e-9
    )
    again = restore(engine, start=start, end=end, archive_path=tmp_path)
    assert again.restored == 0 and again.rollups_replaced == 0
