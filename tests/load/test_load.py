"""Load (issue #8): many real collectors into one database; nothing lost, nothing doubled.

Both scenarios run :func:`tests.load.scenario.run`: a fleet of collectors (1 s interval)
while ``archive run`` executes twice with a policy that rolls up the very rows being
written (late rows land in rolled-up buckets, so the second run must merge them) and the
explorer's main query runs in a loop. PostgreSQL: no write may fail (a deadlock would).
SQLite, one WAL file: busy timeouts and the spool must absorb the contention (a failed
write is retried from the spool; nothing may be lost).

Each checks, per host and per tick, what the collectors said they took against the raw
rows in the database plus those the archive runner moved to Parquet, and that the rollups
count every sample exactly once. Figures: ``figures.py``; sizes: ``modes.py`` (smoke by
default, ``make load`` = full).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from metrics_toolkit.intervals import Interval
from tests.load import figures, modes, scenario, store

MODE = modes.current()
pytestmark = [pytest.mark.load, pytest.mark.slow, pytest.mark.timeout(MODE.timeout)]
#: Issue #8's target for one database write (one batch, one transaction), PostgreSQL.
P99_TARGET_MS = 100.0


def check(outcome: scenario.Outcome) -> None:
    result, tally = outcome.fleet, outcome.tally
    assert not result.failures(), "\n".join(result.failures())
    assert all(m.ticks > 0 for m in result.members), result.expected
    assert not tally.problems(), "\n".join(tally.problems()[:20])
    problems = store.rollup_problems(result.expected, outcome.raw, outcome.rolled_up)
    assert not problems, "\n".join(problems[:20])
    problems = store.bucket_problems(outcome.rollups, outcome.archived, outcome.width.seconds)
    assert not problems, "\n".join(problems[:20])
    runs = outcome.archive_runs
    assert [run["returncode"] for run in runs] == [0, 0], runs
    assert outcome.rolled_up and outcome.archived, "the archive runs rolled nothing up"
    # The second run merged rows that arrived after the first one into its rollup rows.
    assert runs[1]["rows_rolled_up"] and outcome.rollups_merged, runs[1]["output"]
    assert not outcome.explorer["errors"], outcome.explorer["errors"][:3]
    assert outcome.explorer["views"] >= 1
    assert all(s.latency_ms > 0 for s in outcome.samples if s.latency_ms is not None)
    allowed = 1 + outcome.figures["write_failures"]
    gaps = outcome.latency_gaps()
    assert all(n <= allowed for n in gaps.values()), f"snapshots without a latency: {gaps}"


def test_postgres_fleet_with_archive_runs_and_explorer_loop(
    load_mode: modes.LoadMode, load_postgres_url: str, tmp_path: Path
) -> None:
    outcome = scenario.run(
        load_postgres_url,
        load_mode.postgres_collectors,
        load_mode.postgres_seconds,
        Interval.parse(load_mode.rollup_interval),
        tmp_path,
    )
    figures.record(load_mode.name, "postgresql", outcome.figures)
    check(outcome)
    assert outcome.figures["write_failures"] == 0, "a write failed (a deadlock?): see the logs"
    if load_mode.name == "full":
        assert outcome.figures["latency_p99_ms"] < P99_TARGET_MS, outcome.figures


def test_sqlite_fleet_on_one_file_with_archive_runs_and_explorer_loop(
    load_mode: modes.LoadMode, load_sqlite_url: str, tmp_path: Path
) -> None:
    outcome = scenario.run(
        load_sqlite_url,
        load_mode.sqlite_collectors,
        load_mode.sqlite_seconds,
        Interval.parse(load_mode.rollup_interval),
        tmp_path,
    )
    figures.record(load_mode.name, "sqlite", outcome.figures)
    check(outcome)
