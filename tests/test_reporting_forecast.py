"""Forecasts of when disks and memory run out, through build_report on both databases.

Seven days of snapshots every 10 minutes: a mount filling at 3 points a day from 50 %, the
same with one spike, a flat mount, a sawtooth (a log filling a mount and rotated every day)
and memory under a configured limit. The expected days are computed from how the data was
made, not by the code under test. Then the archive policy rolls the older days up to 1 h
and the verdicts must hold.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from metrics_toolkit.analysis.forecast import find_drops, forecast, theil_sen
from metrics_toolkit.archive.runner import run_archive
from metrics_toolkit.reporting import build_report, render_json
from metrics_toolkit.store.config import set_config
from metrics_toolkit.store.ingest import write_snapshots
from metrics_toolkit.store.policies import update_policy

END = datetime(2026, 3, 8, tzinfo=UTC)
DAYS = 7
START = END - timedelta(days=DAYS)
EVERY = timedelta(minutes=10)
RATE = 3.0  # points per day
FIELDS = {"host", "metric", "unit", "limit", "slope_per_day", "days_left", "full_at", "basis"}


def _filling(days: float) -> float:
    return 50.0 + RATE * days


def _sawtooth(days: float) -> float:
    return 40.0 + 30.0 * ((days + 0.3) % 1.0)  # rotated every day at 16:48 UTC


def _rows() -> list[tuple[datetime, str, dict[str, Any]]]:
    rng = np.random.default_rng(16)
    rows = []
    steps = int(timedelta(days=DAYS) / EVERY)
    spike_at = steps // 2
    for i in range(steps):
        ts = START + i * EVERY
        days = (ts - START) / timedelta(days=1)
        noise = rng.normal(0.0, 0.3, 5)
        mounts = {"/data": _filling(days) + noise[0], "/": 62.0 + noise[1]}
        spiked = _filling(days) + noise[2] + (45.0 if spike_at <= i < spike_at + 3 else 0.0)
        logs = _sawtooth(days) + noise[3]
        memory = 30.0 + 2.0 * days + noise[4]  # reaches a limit of 50 after 10 days
        for host, doc in (
            ("fill", {"disk": {"mounts": {k: {"usage_percent": v} for k, v in mounts.items()}}}),
            ("spike", {"disk": {"mounts": {"/data": {"usage_percent": spiked}}}}),
            ("saw", {"disk": {"mounts": {"/var/log": {"usage_percent": logs}}}}),
            ("mem", {"memory": {"usage_percent": memory}}),
        ):
            rows.append((ts, "aggregated", {"host": host, **doc}))
    return rows


def _by_key(data: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(f["host"], f["metric"]): f for f in data["forecasts"]}


def _check(data: dict[str, Any]) -> None:
    found = _by_key(data)
    assert all(set(f) == FIELDS for f in data["forecasts"])
    expected = (100.0 - _filling(DAYS)) / RATE  # 9.67 days after the end
    for host in ("fill", "spike"):
        entry = found[host, "disk.mounts./data.usage_percent"]
        assert entry["days_left"] == pytest.approx(expected, rel=0.05), entry
        assert entry["slope_per_day"] == pytest.approx(RATE, rel=0.05)
        full_at = datetime.fromisoformat(entry["full_at"])
        assert (
            abs((full_at - (END + timedelta(days=expected))) / timedelta(days=1)) < expected * 0.05
        )
        assert entry["limit"] == 100.0 and entry["unit"] == "percent"
    flat = found["fill", "disk.mounts./.usage_percent"]
    assert flat["days_left"] is None and flat["full_at"] is None
    saw = found["saw", "disk.mounts./var/log.usage_percent"]
    assert saw["days_left"] is None and saw["full_at"] is None, saw
    assert "peaks" in saw["basis"]
    memory = found["mem", "memory.usage_percent"]
    assert memory["limit"] == 50.0
    assert memory["days_left"] == pytest.approx((50.0 - (30.0 + 2.0 * DAYS)) / 2.0, rel=0.05)


def test_forecasts_through_raw_and_rolled_up_ranges(engine: Engine, tmp_path: Path) -> None:
    write_snapshots(engine, _rows())
    with Session(engine) as session:
        set_config(session=session, key="report.forecast_limits", value={"memory.*": 50})
        session.commit()
    report = build_report(engine, start=START, end=END)
    raw = render_json(report)
    _check(raw)
    soon = report.running_out()  # most urgent first: memory (3 days), then the mounts
    assert soon[0].host == "mem" and {f.host for f in soon} == {"mem", "fill", "spike"}
    left = [f.days_left for f in soon]
    assert left == sorted(left)  # type: ignore[type-var]

    with Session(engine) as session:
        update_policy(session=session, downsample_after_days=3, downsample_interval="1h")
        session.commit()
    assert run_archive(engine, now=END, archive_path=tmp_path / "a").total("rollups_written")
    rolled = render_json(build_report(engine, start=START, end=END))
    assert any(c["rolled_up"] for c in rolled["completeness"])
    _check(rolled)


def test_the_fit_is_robust_and_the_sawtooth_is_handled_on_purpose() -> None:
    x = np.arange(-7.0, 0.0, 1 / 24)
    rng = np.random.default_rng(3)
    line = 50 + RATE * (x + 7) + rng.normal(0, 0.3, len(x))
    fit = theil_sen(x, line)
    assert fit.lower < RATE < fit.upper and fit.slope == pytest.approx(RATE, rel=0.02)
    spiked = line.copy()
    spiked[100] = 0.0  # one bucket down to zero: not a drop, the verdict holds
    assert find_drops(spiked, 5.0) == []
    assert forecast(x, spiked, 100).days_left == pytest.approx(
        forecast(x, line, 100).days_left, rel=0.01
    )
    saw = np.array([_sawtooth(d + 7) for d in x])
    # Theil-Sen over every point of a sawtooth can call it rising (most pairs inside a
    # cycle rise; how much depends on where the window cuts the cycles): this is why
    # drops are found first.
    cut = 40 + 30 * ((x + 7) % 1.0)
    assert theil_sen(x, cut).slope > 0.5
    assert forecast(x, cut, 100).days_left is None
    assert len(find_drops(saw, 5.0)) == DAYS
    assert forecast(x, saw, 100).days_left is None
    creeping = saw + 2.0 * (x + 7)  # the clean-ups do not keep up: filling
    days = forecast(x, creeping, 100).days_left
    assert days is not None and math.isfinite(days)
    assert forecast(x, np.full(len(x), 70.0), 100).days_left is None
    assert forecast(x, 90 - RATE * (x + 7), 100).days_left is None  # falling
