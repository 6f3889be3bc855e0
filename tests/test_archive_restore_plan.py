"""Restore brings every archived sample back once; the dry run predicts the run (issue 15).

The expectations come from the generated history itself (which samples exist), never from
the code under test.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from metrics_toolkit.archive.restore import restore
from metrics_toolkit.archive.runner import run_archive
from metrics_toolkit.archive.store import ArchiveStore
from metrics_toolkit.cli import main
from metrics_toolkit.intervals import Interval
from metrics_toolkit.store.ingest import write_snapshots
from metrics_toolkit.store.models import MetricsSnapshot
from metrics_toolkit.store.policies import update_policy

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOSTS = ("h1", "h2")


def history(days: int, every: timedelta) -> list[tuple[datetime, str, dict[str, Any]]]:
    steps = int(timedelta(days=days) / every)
    return [
        (T0 + i * every, "aggregated", {"host": h, "cpu": {"usage_percent": float(i % 89)}})
        for h in HOSTS
        for i in range(steps)
    ]


def set_policy(engine: Engine, retention: int, after: int, interval: str) -> None:
    with Session(engine) as session, session.begin():
        update_policy(
            session=session,
            retention_days=retention,
            downsample_after_days=after,
            downsample_interval=interval,
            archive_enabled=True,
        )


def stored(engine: Engine) -> tuple[Counter[tuple[str, datetime]], list[tuple[datetime, Any]]]:
    """Raw samples in the database (host, time) with their multiplicity, and the rollups."""
    with Session(engine) as session:
        rows = session.execute(select(MetricsSnapshot.timestamp, MetricsSnapshot.metric_data))
        raw: Counter[tuple[str, datetime]] = Counter()
        rollups = []
        for ts, doc in rows:
            if "_rollup" in doc:
                rollups.append((ts, doc))
            else:
                raw[(doc["host"], ts)] += 1
    return raw, rollups


def archived(root: Path) -> Counter[tuple[str, datetime]]:
    found: Counter[tuple[str, datetime]] = Counter()
    if not root.exists():
        return found
    for batch in ArchiveStore(root).iter_rows():
        for row in batch:
            if "_rollup" not in row.document:
                found[(row.document["host"], row.timestamp)] += 1
    return found


def reset(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in ("archive_files", "archive_runs", "archive_policies", "metrics_snapshots"):
            connection.execute(text(f"DELETE FROM {table}"))


# --------------------------------------------------------------------------------------
# The reproduction


def test_a_retention_cut_inside_a_rolled_up_hour_restores_everything(
    engine: Engine, tmp_path: Path
) -> None:
    original = history(3, timedelta(minutes=1))
    write_snapshots(engine, original)
    set_policy(engine, 2, 1, "1h")
    run_archive(engine, now=T0 + timedelta(days=3, minutes=30), archive_path=tmp_path)
    _, rollups = stored(engine)
    assert rollups  # the hour straddling the cut is rolled up
    result = restore(
        engine,
        start=datetime(1900, 1, 1, tzinfo=UTC),
        end=datetime(9999, 12, 31, tzinfo=UTC),
        archive_path=tmp_path,
    )
    raw, rollups = stored(engine)
    want = Counter((doc["host"], ts) for ts, _, doc in original)
    assert raw == want  # every sample, exactly once
    assert rollups == [] and result.rollups_kept == 0 and result.rows_not_restored == 0


def test_the_dry_run_counts_are_the_runs(db_url: str, engine: Engine, tmp_path: Path) -> None:
    write_snapshots(engine, history(3, timedelta(minutes=1)))
    set_policy(engine, 2, 1, "1h")
    args = ["--database-url", db_url, "archive", "run", "--now", "2026-01-04T00:30", "--json"]
    planned = CliRunner().invoke(main, [*args, "--dry-run"])
    assert planned.exit_code == 0, planned.output
    done = CliRunner().invoke(main, [*args, "--archive-path", str(tmp_path)])
    assert done.exit_code == 0, done.output
    plan, run = json.loads(planned.output), json.loads(done.output)
    keys = ("rows_rolled_up", "rollups_written", "rows_deleted", "rows_archived", "chunks")
    assert {k: plan[k] for k in keys} == {k: run[k] for k in keys}
    # Independent figures: 2 hosts x 1440 samples a day; the cut is 00:30 on day 2.
    assert plan["rows_deleted"] == 2 * (1440 + 30)
    assert plan["rows_rolled_up"] == 2 * (1440 - 30)
    assert plan["rollups_written"] == 2 * 24
    assert plan["rows_archived"] == plan["rows_deleted"] + plan["rows_rolled_up"]


# --------------------------------------------------------------------------------------
# The property: any runs, any restore range


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    retention = draw(st.integers(2, 4))
    after = draw(st.integers(0, retention - 1))
    interval = draw(st.sampled_from(["15min", "1h", "2h", "1D"]))
    minutes = st.integers(24 * 60, 5 * 24 * 60)
    nows = sorted(draw(st.lists(minutes, min_size=1, max_size=3)))
    a = draw(st.integers(-24 * 60, 6 * 24 * 60))
    b = draw(st.integers(-24 * 60, 6 * 24 * 60))
    return {
        "policy": (retention, after, interval),
        "nows": [T0 + timedelta(minutes=m) for m in nows],
        "restore": (T0 + timedelta(minutes=min(a, b)), T0 + timedelta(minutes=max(a, b) + 1)),
    }


@pytest.mark.slow
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_restore_gives_back_every_archived_sample_once(
    engine: Engine, scenario: dict[str, Any]
) -> None:
    reset(engine)
    original = history(4, timedelta(minutes=15))
    write_snapshots(engine, original)
    set_policy(engine, *scenario["policy"])
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "archive"
        for now in scenario["nows"]:
            run_archive(engine, now=now, archive_path=root)
        raw, _ = stored(engine)
        every = Counter((doc["host"], ts) for ts, _, doc in original)
        assert raw + archived(root) == every  # held once, in the database or the archive
        if not root.exists():
            return
        start, end = scenario["restore"]
        result = restore(engine, start=start, end=end, archive_path=root)
        raw, rollups = stored(engine)
        assert max(raw.values(), default=1) == 1  # nothing doubled
        lo, hi = result.start, result.end
        assert {k for k in every if lo <= k[1] < hi} <= set(raw)  # all of the range is back
        width = Interval.parse(scenario["policy"][2]).timedelta
        assert not [ts for ts, _ in rollups if ts < hi and ts + width > lo]
        assert result.rollups_kept == 0 and result.rows_not_restored == 0
