"""PostgreSQL restarted, then stopped for 30 s, while several collectors run (issue #8).

Real ``metrics-toolkit collect`` processes (interval 1 s, each with its own host label and
spool) write into a private cluster that the test restarts and stops with ``pg_ctl``. After
recovery every snapshot taken meanwhile is stored exactly once, each collector's log tells
the story in one line per event, and the recovery time (database back -> spool empty) is
measured. ``METRICS_TOOLKIT_FAULT_OUTAGE_SECONDS`` and ``..._COLLECTORS`` change the sizes.
"""

from __future__ import annotations

import math
import os
import re
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.faults.pgcluster import PrivateCluster
from tests.faults.support import (
    Collector,
    doubled,
    record_figures,
    spool_depth,
    stored_documents,
    stored_identities,
    wait_for,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

OUTAGE_SECONDS = float(os.environ.get("METRICS_TOOLKIT_FAULT_OUTAGE_SECONDS", "30"))
COLLECTORS = int(os.environ.get("METRICS_TOOLKIT_FAULT_COLLECTORS", "4"))

DOWN = re.compile(r"Spooling snapshots \((\d+) waiting\); retrying in")
STILL = re.compile(r"Still failing since")
BACK = re.compile(r"reachable again after (?P<seconds>[\d.]+) s .*replaying (?P<n>\d+) spooled")
REPLAYED = re.compile(r"Replayed (?P<n>\d+) snapshot\(s\) from the spool")


def rows_of(url: str, host: str) -> int:
    try:
        return sum(1 for h, _ in stored_identities(url) if h == host)
    except Exception:  # the server may be restarting
        return 0


def test_restart_and_30s_stop_lose_and_double_nothing(
    private_cluster: PrivateCluster, private_db: str, tmp_path: Path
) -> None:
    fleet = [
        Collector(private_db, f"fault-{n}", tmp_path / f"spool-{n}.db", verbose=True).start()
        for n in range(COLLECTORS)
    ]
    try:
        hosts = {member.host for member in fleet}
        wait_for(lambda: all(rows_of(private_db, h) >= 3 for h in hosts), 60, "the first writes")

        # 1. A restart: the daemons lose their connections for a moment.
        private_cluster.restart()
        time.sleep(4)

        # 2. A stop for OUTAGE_SECONDS: every tick meanwhile waits in the spools.
        private_cluster.stop()
        stopped_at = datetime.now(UTC)
        time.sleep(OUTAGE_SECONDS)
        for member in fleet:
            assert member.process is not None and member.process.poll() is None
            assert spool_depth(member.spool) >= OUTAGE_SECONDS - 3, "ticks were not spooled"
        private_cluster.start()
        back = time.monotonic()
        started_at = datetime.now(UTC)
        recovery = replay_times(fleet, back, timeout=90)
        time.sleep(2)  # a couple of ordinary ticks after recovery
    finally:
        codes = [member.stop() for member in fleet]
    assert codes == [0] * len(fleet), [member.err[-2000:] for member in fleet]
    figures = sorted(recovery.values())
    documents = stored_documents(private_db)
    everything = [(doc["host"], ts) for ts, doc in documents]
    assert not doubled(everything), "a snapshot was stored twice"
    replayed: list[int] = []
    noticed: list[int] = []
    in_window = ticks = 0
    for member in fleet:
        summary = member.summary()
        stamps = sorted(ts for host, ts in everything if host == member.host)
        # Every tick taken is stored, and the ticks are consecutive (or skipped, and said so).
        assert len(stamps) == summary["ticks"], member.out
        assert summary["left"] == 0
        span = summary["ticks"] - 1 + summary["skipped"]
        assert stamps[-1] - stamps[0] == timedelta(seconds=span)
        window = [
            doc
            for ts, doc in documents
            if doc["host"] == member.host and stopped_at + timedelta(seconds=2) <= ts < started_at
        ]
        assert len(window) >= OUTAGE_SECONDS - 5, "the outage window is not stored"
        assert all(doc["collector"]["spool_depth_count"] > 0 for doc in window)
        most, outages = check_log(member.err)
        replayed.append(most)
        noticed.append(outages)
        in_window += len(window)
        ticks += summary["ticks"]
    record_figures(
        "postgres_outage",
        collectors=len(fleet),
        outage_seconds=OUTAGE_SECONDS,
        recovery_median_s=round(statistics.median(figures), 2),
        recovery_max_s=round(figures[-1], 2),
        snapshots_taken=ticks,
        snapshots_stored=len(everything),
        stored_from_the_outage_window=in_window,
        replayed_per_collector=replayed,
        outages_logged_per_collector=noticed,
    )


def replay_times(fleet: list[Collector], back: float, timeout: float) -> dict[str, float]:
    """Seconds from ``back`` (monotonic) until each collector's spool is empty."""
    done: dict[str, float] = {}
    while len(done) < len(fleet):
        for member in fleet:
            if member.host not in done and spool_depth(member.spool) == 0:
                done[member.host] = time.monotonic() - back
        elapsed = time.monotonic() - back
        assert elapsed < timeout, f"spools not empty {elapsed:.0f} s after recovery: {done}"
        time.sleep(0.05)
    return done


def check_log(log: str) -> tuple[int, int]:
    """One line per event: down, still failing (rate-limited), back after N s, replayed K.

    Returns the most snapshots one replay moved and the number of outages logged.
    """
    assert "Traceback" not in log
    lines = [line for line in log.splitlines() if "metrics_toolkit.collect.daemon" in line]
    downs = [line for line in lines if DOWN.search(line)]
    backs = [match for line in lines if (match := BACK.search(line))]
    replays = [match for line in lines if (match := REPLAYED.search(line))]
    stills = [line for line in lines if STILL.search(line)]
    # The stop is one outage; the restart is a second one if a write fell into it.
    assert 1 <= len(downs) <= 2 and len(backs) == len(downs) == len(replays), lines
    longest = max(backs, key=lambda match: float(match["seconds"]))
    assert float(longest["seconds"]) >= OUTAGE_SECONDS - 1.5
    assert int(longest["n"]) >= OUTAGE_SECONDS - 5
    most = max(int(match["n"]) for match in replays)
    assert most >= OUTAGE_SECONDS - 5
    # Rate-limited: about 30 ticks failed, but the retries back off (1, 2, 4, 8, 16 s),
    # and only a retry says "still failing" (a warning when the reason changes, else INFO).
    retries = 2 + math.ceil(math.log2(OUTAGE_SECONDS + 1))
    assert 1 <= len(stills) <= retries * len(downs), stills
    warnings = [line for line in stills if " WARNING " in line]
    assert len(warnings) <= 2 * len(downs), warnings
    return most, len(downs)
