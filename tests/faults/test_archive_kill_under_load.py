"""Archive runs killed (SIGKILL) at random points while collectors write (issue #8).

Extends the archive's fault-point test (tests/test_archive.py) to concurrent writes:
collectors (real ``metrics-toolkit collect`` processes, 1 s) write into the very buckets
that ``archive run`` rolls up (it runs with ``--now`` a little in the future and a policy
that downsamples everything older than ``now`` to 10 s buckets), on top of a history. Runs
are killed at random moments and at the fault points inside a chunk's transaction; then
the collectors stop and one clean run finishes the job. Database + archive must hold every
sample exactly once and every rollup must account for exactly its bucket's samples.
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from metrics_toolkit.archive import runner as archive
from metrics_toolkit.archive.store import ArchiveStore
from metrics_toolkit.intervals import Interval, bucket_start
from metrics_toolkit.store.db import make_engine
from metrics_toolkit.store.ingest import write_snapshots
from metrics_toolkit.store.models import ArchiveRun
from metrics_toolkit.store.policies import update_policy
from tests.conftest import empty_postgres
from tests.faults.support import (
    Collector,
    Identity,
    cli,
    doubled,
    record_figures,
    stored_count,
    stored_documents,
    wait_for,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SEED = int(os.environ.get("METRICS_TOOLKIT_FAULT_SEED", str(random.randrange(10**6))))
WIDTH = Interval.parse("10s")
HISTORY_HOSTS = ("hist-1", "hist-2", "hist-3")
HISTORY_SECONDS = 2 * 3600
# Random moments, and the fault points inside a chunk (rows deleted, rollups inserted,
# the transaction about to commit, committed but the archive file not yet renamed).
SCHEDULE = ["random", "after_insert", "random", "before_commit", "random", "after_commit"]


def history(end: datetime) -> list[tuple[datetime, str, dict[str, Any]]]:
    rng = random.Random(SEED)
    start = end - timedelta(seconds=HISTORY_SECONDS)
    return [
        (
            start + timedelta(seconds=s),
            "aggregated",
            {"host": host, "cpu": {"usage_percent": round(rng.uniform(0, 100), 3)}},
        )
        for host in HISTORY_HOSTS
        for s in range(HISTORY_SECONDS)
    ]


def archive_command(url: str, now: datetime, root: Path) -> list[str]:
    return cli(
        "--database-url",
        url,
        "archive",
        "run",
        "--now",
        now.isoformat(),
        "--archive-path",
        str(root),
        "--wait",
        "30",
    )


def run_archive(command: list[str], point: str, rng: random.Random) -> dict[str, Any]:
    """One archive run, killed at ``point`` (a fault point, or a random moment)."""
    env = dict(os.environ)
    delay = None
    if point != "random":
        env[archive.FAULT_ENV] = point
    began = time.monotonic()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    if point == "random":
        delay = rng.uniform(1.0, 4.0)  # the interpreter starts in about 1 s
        try:
            process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            process.kill()
    _out, err = process.communicate(timeout=120)
    assert process.returncode in (0, -9), err  # finished before the kill, or killed
    return {
        "point": point,
        "delay_s": None if delay is None else round(delay, 2),
        "killed": process.returncode == -9,
        "seconds": round(time.monotonic() - began, 2),
    }


def archived_raw(root: Path) -> list[tuple[datetime, dict[str, Any]]]:
    return [
        (row.timestamp, row.document)
        for batch in ArchiveStore(root).iter_rows()
        for row in batch
        if "_rollup" not in row.document
    ]


def test_archive_killed_while_collectors_write(postgres_url: str, tmp_path: Path) -> None:
    empty_postgres(postgres_url)
    rng = random.Random(SEED)
    engine = make_engine(postgres_url)
    now = datetime.now(UTC).replace(microsecond=0)
    history_rows = history(now)
    write_snapshots(engine, history_rows)
    with Session(engine) as session, session.begin():
        update_policy(
            session=session,
            retention_days=30,
            downsample_after_days=0,
            downsample_interval=str(WIDTH),
            archive_enabled=True,
        )
    engine.dispose()
    policy_now = now + timedelta(minutes=3)  # the live buckets are inside the rollup range
    root = tmp_path / "archive"
    command = archive_command(postgres_url, policy_now, root)

    fleet = [
        Collector(postgres_url, f"live-{n}", tmp_path / f"spool-{n}.db").start() for n in range(3)
    ]
    runs: list[dict[str, Any]] = []
    try:
        base = len(history_rows)
        wait_for(lambda: stored_count(postgres_url) >= base + 6, 60, "the collectors")
        for point in SCHEDULE:
            runs.append(run_archive(command, point, rng))
    finally:
        codes = [member.stop() for member in fleet]
    assert codes == [0] * len(fleet), [member.err[-2000:] for member in fleet]
    assert any(run["killed"] for run in runs)

    began = time.monotonic()
    final = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    final_seconds = time.monotonic() - began

    expected: set[Identity] = {(doc["host"], ts) for ts, _, doc in history_rows}
    for member in fleet:
        summary = member.summary()
        assert summary["left"] == 0
        expected_before = len(expected)
        mine = {(h, ts) for h, ts in live_identities(postgres_url, root) if h == member.host}
        assert len(mine) == summary["ticks"], (member.host, len(mine), summary)
        stamps = sorted(ts for _, ts in mine)  # consecutive ticks: none lost in between
        span = summary["ticks"] - 1 + summary["skipped"]
        assert stamps[-1] - stamps[0] == timedelta(seconds=span)
        expected |= mine
        assert len(expected) == expected_before + summary["ticks"]
    check_invariants(postgres_url, root, expected, policy_now)
    engine = make_engine(postgres_url)
    with Session(engine) as session:
        statuses = [
            r.status for r in session.execute(select(ArchiveRun).order_by(ArchiveRun.id)).scalars()
        ]
    engine.dispose()
    assert statuses[-1] == "completed" and "running" not in statuses
    record_figures(
        "archive_kill_under_load",
        seed=SEED,
        runs=runs,
        final_run_seconds=round(final_seconds, 2),
        samples=len(expected),
        live_samples=len(expected) - len(history_rows),
        statuses=dict(Counter(statuses)),
    )


def live_identities(url: str, root: Path) -> list[Identity]:
    """Raw snapshots of the collectors in the database and in the archive."""
    in_db = [(doc["host"], ts) for ts, doc in stored_documents(url) if "_rollup" not in doc]
    in_archive = [(doc["host"], ts) for ts, doc in archived_raw(root)]
    return [key for key in in_db + in_archive if key[0].startswith("live-")]


def check_invariants(url: str, root: Path, expected: set[Identity], policy_now: datetime) -> None:
    documents = stored_documents(url)
    raw_db = [(doc["host"], ts) for ts, doc in documents if "_rollup" not in doc]
    archived = archived_raw(root)
    raw_archive = [(doc["host"], ts) for ts, doc in archived]
    assert not doubled(raw_db + raw_archive), (
        "a sample is in the database and the archive, or twice"
    )
    assert set(raw_db) | set(raw_archive) == expected, "a sample is lost"
    assert ArchiveStore(root).pending_files() == []
    downsample_before = bucket_start(policy_now, WIDTH)
    assert not [key for key in raw_db if key[1] < downsample_before], "raw rows left behind"
    # Each (host, bucket) has one rollup, accounting for exactly the samples archived for it.
    samples: dict[tuple[str, datetime], list[dict[str, Any]]] = defaultdict(list)
    for ts, doc in archived:
        samples[(doc["host"], bucket_start(ts, WIDTH))].append(doc)
    rollups: dict[tuple[str, datetime], dict[str, Any]] = {}
    for ts, doc in documents:
        if "_rollup" in doc:
            key = (doc["host"], ts)
            assert key not in rollups, f"two rollups for {key}"
            rollups[key] = doc["_rollup"]
    assert set(rollups) == set(samples)
    for key, docs in samples.items():
        stats = rollups[key]
        assert stats["samples"] == len(docs), key
        # (A collector's first tick has no CPU usage yet: a leaf counts where it is present.)
        values = [float(d["cpu"]["usage_percent"]) for d in docs if "usage_percent" in d["cpu"]]
        if not values:
            assert "usage_percent" not in stats["count"].get("cpu", {})
            continue
        assert stats["count"]["cpu"]["usage_percent"] == len(values), key
        assert stats["sum"]["cpu"]["usage_percent"] == pytest.approx(sum(values), rel=1e-9)
        assert stats["max"]["cpu"]["usage_percent"] == max(values)
        assert stats["min"]["cpu"]["usage_percent"] == min(values)
