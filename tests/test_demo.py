"""``make demo`` twice leaves the same data, and its report never claims too many samples.

Runs the Makefile's real ``demo`` recipe (the project's CLI on a scratch copy, a few days
of history so that the archive policy rolls some of it up) twice, and counts the samples
by hand in the SQLite file after each run: raw rows plus the samples of rolled-up rows.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _samples(database: Path) -> tuple[int, int]:
    """(raw rows, samples merged into rolled-up rows), read with plain SQL."""
    with sqlite3.connect(database) as connection:
        raw, rolled = connection.execute(
            "SELECT sum(json_type(metric_data, '$._rollup') IS NULL), "
            "coalesce(sum(json_extract(metric_data, '$._rollup.samples')), 0) "
            "FROM metrics_snapshots"
        ).fetchone()
    return int(raw), int(rolled)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_demo_twice_leaves_the_same_data(tmp_path: Path) -> None:
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    command = [
        "make", "--no-print-directory", "-o", "install", "demo",
        f"BIN={Path(sys.executable).parent}", "DEMO_DAYS=5",
    ]  # fmt: skip
    counts = []
    for _ in range(2):
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "resetting demo/" in done.stdout
        counts.append(_samples(tmp_path / "demo" / "metrics.db"))
        report = json.loads(next((tmp_path / "reports").rglob("*.json")).read_text())
        assert all(c["received"] <= c["expected"] for c in report["completeness"])
        (live,) = report["sparse_hosts"]  # the 3 live snapshots (the first lacks some rates)
        assert 0 < live["samples"] <= 3
    # The same samples each time (where "now" puts the rollup boundary may move a few of
    # them from raw rows into rollups between the runs, not change their number).
    assert sum(counts[0]) == sum(counts[1])
    assert all(rolled > 0 for _, rolled in counts)  # the policy rolled the older days up
    # 5 days a minute for 2 hosts less their outages, plus 3 live snapshots
    assert sum(counts[0]) <= 5 * 1440 * 2 + 3
