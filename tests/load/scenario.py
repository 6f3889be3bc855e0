"""One load scenario: a fleet writes while the archive runs twice and the explorer loops.

:func:`run` sets a policy whose rolled-up range covers the rows being written right now
(``--downsample-after-days 0``, ``--now`` two buckets ahead): the first ``archive run``
(at a third of the run) rolls up rows still arriving, the ones that arrive after it are
late rows in rolled-up buckets, and the second run (at two thirds) must merge them. All the
while the explorer's main query runs in a loop in its own process. Then the fleet stops
(SIGTERM) and :class:`Outcome` holds what each collector took and what the database and the
archive hold, plus the figures. Checks are the caller's.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from metrics_toolkit.intervals import Interval
from metrics_toolkit.store.db import make_engine
from tests.load import store
from tests.load.fleet import CLI, FleetConfig, FleetResult, running

REPOSITORY = Path(__file__).resolve().parents[2]
STUCK_SECONDS = 180.0  # an archive run (or the explorer loop) longer than this is stuck


def cli(url: str, *args: str, timeout: float = STUCK_SECONDS) -> subprocess.CompletedProcess[str]:
    """``metrics-toolkit --database-url URL ARGS...`` as a user runs it."""
    env = {k: v for k, v in os.environ.items() if k != "METRICS_TOOLKIT_DATABASE_URL"}
    return subprocess.run(
        [CLI, "--database-url", url, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def write_failures(result: FleetResult) -> int:
    """Flushes that failed (each logs one of these lines); the spool kept their snapshots."""
    return sum(
        m.stderr.count("Spooling snapshots") + m.stderr.count("Still failing")
        for m in result.members
    )


@dataclass
class Outcome:
    """What a scenario run left: the fleet's word, the database, the archive, the figures."""

    fleet: FleetResult
    raw: list[store.Sample]  # raw rows still in the database
    archived: list[store.Sample]  # raw rows the archive runner replaced (from Parquet)
    rollups_merged: int  # rollup rows a later run replaced, merging late rows into them
    rollups: Counter[tuple[str, datetime]]  # per (host, bucket), samples of rollup rows
    width: Interval  # the rollup width
    archive_runs: list[dict[str, Any]]
    explorer: dict[str, Any]
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def samples(self) -> list[store.Sample]:
        """Every raw snapshot that was ever stored: in the database or archived."""
        return self.raw + self.archived

    @property
    def rolled_up(self) -> dict[str, int]:
        """Per host, the samples counted by rollup rows."""
        return store.per_host(self.rollups)

    @property
    def tally(self) -> store.Tally:
        return store.tally(self.fleet.expected, self.samples)

    def latency_gaps(self) -> Counter[str]:
        """Per host, stored snapshots without a write latency (only a host's first may lack it,
        plus one per failed flush)."""
        return Counter(s.host for s in self.samples if s.latency_ms is None)


def _archive_run(url: str, width: Interval, root: Path) -> dict[str, Any]:
    # The policy's "now" two buckets ahead: the rows being written right now are in the
    # rolled-up range, and rows written after the run are late rows there.
    now = datetime.now(UTC) + 2 * width.timedelta
    began = time.monotonic()
    done = cli(url, "archive", "run", "--now", now.isoformat(), "--archive-path", str(root),
               "--wait", "60")  # fmt: skip
    rolled = re.search(r"completed: ([\d,]+) rows rolled up", done.stdout)
    return {
        "seconds": time.monotonic() - began,
        "returncode": done.returncode,
        "rows_rolled_up": int(rolled[1].replace(",", "")) if rolled else None,
        "output": (done.stdout + done.stderr).strip()[-600:],
    }


def _early_in_a_bucket(width: Interval) -> None:
    """Sleep until the wall clock is between 1 s and half a bucket into a bucket.

    The first run then rolls up a bucket that still has ticks to come, so rows arrive late
    in it and the second run has rollup rows to merge them into, wherever the run falls on
    the clock (a run at a bucket's last second would leave nothing late).
    """
    offset = time.time() % width.seconds
    if offset < 1 or offset > width.seconds / 2:
        time.sleep((width.seconds - offset + 1) % width.seconds)


def run(url: str, collectors: int, seconds: float, width: Interval, workdir: Path) -> Outcome:
    """Run the scenario on the migrated database ``url``; see the module docstring."""
    policy = ("--retention-days", "7", "--downsample-after-days", "0", "--interval", str(width))
    done = cli(url, "policy", "set", *policy, "--archive")
    assert done.returncode == 0, done.stderr
    archive_root = workdir / "archive"
    explorer_out = workdir / "explorer.json"
    engine = make_engine(url)
    load_before = os.getloadavg()[0]
    try:
        size_before = store.database_bytes(engine)
        config = FleetConfig(url, workdir / "fleet", collectors, max_seconds=seconds + 600)
        runs: list[dict[str, Any]] = []
        with running(config) as fleet:
            started = time.monotonic()
            fleet.mark()
            explorer = subprocess.Popen(
                [sys.executable, "-m", "tests.load.explorer_loop", url, str(seconds), explorer_out],
                cwd=REPOSITORY,
            )
            try:
                for fraction in (1 / 3, 2 / 3):
                    sleep_until(started + fraction * seconds)
                    if not runs:
                        _early_in_a_bucket(width)
                    runs.append(_archive_run(url, width, archive_root))
                sleep_until(started + seconds)
                result = fleet.stop()
            except BaseException:
                explorer.kill()
                raise
            finally:
                explorer.wait(timeout=STUCK_SECONDS)
        archived, merged = store.read_archive(archive_root)
        outcome = Outcome(
            fleet=result,
            raw=store.raw_samples(engine),
            archived=archived,
            rollups_merged=merged,
            rollups=store.rollup_buckets(engine),
            width=width,
            archive_runs=runs,
            explorer=json.loads(explorer_out.read_text("utf-8")),
        )
        outcome.figures = _figures(outcome, fleet.start_seconds, width)
        growth = store.database_bytes(engine) - size_before
    finally:
        engine.dispose()
    outcome.figures["load_average_1min_before"] = load_before
    expected = outcome.figures["expected"]
    outcome.figures["db_growth_bytes"] = growth
    outcome.figures["db_growth_bytes_per_snapshot"] = growth / expected if expected else None
    return outcome


def _figures(outcome: Outcome, start_seconds: float, width: Interval) -> dict[str, Any]:
    result, tally, explorer = outcome.fleet, outcome.tally, outcome.explorer
    latencies = [s.latency_ms for s in outcome.samples if s.latency_ms is not None]
    return {
        "collectors": len(result.members),
        "seconds": result.window_seconds,
        "start_up_seconds": start_seconds,
        "expected": tally.expected,
        "stored": tally.stored,
        "missing": tally.missing,
        "doubled": tally.doubled,
        "skipped_slots": sum(m.summary.skipped_slots for m in result.members if m.summary),
        "write_failures": write_failures(result),
        "latency_batches": len(latencies),
        "latency_p50_ms": store.percentile(latencies, 0.50),
        "latency_p99_ms": store.percentile(latencies, 0.99),
        "latency_max_ms": max(latencies, default=float("nan")),
        "collector_cpu_percent": result.cpu_percent_per_collector(),
        "collector_cpu_seconds_total": sum(m.cpu_seconds for m in result.members),
        "rollup_interval": str(width),
        "raw_rows_left": len(outcome.raw),
        "raw_rows_archived": len(outcome.archived),
        "rolled_up_samples": sum(outcome.rollups.values()),
        "rollup_rows": len(outcome.rollups),
        "rollups_merged": outcome.rollups_merged,
        "archive_runs": outcome.archive_runs,
        "explorer_views": explorer["views"],
        "explorer_view_p50_s": store.percentile(explorer["seconds"], 0.5),
        "explorer_view_max_s": max(explorer["seconds"], default=None),
        "explorer_errors": explorer["errors"][:5],
        "load_average_1min": os.getloadavg()[0],
        "cpus": os.cpu_count(),
    }
