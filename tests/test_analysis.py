"""The analysis layer against oracles written without library code, on both databases.

Each test writes plain documents, counts what it wrote by hand (the oracle), and checks
the report (and ``load_frame``) against those counts: gaps inside rolled-up buckets, a
period starting inside a stored bucket, a previous period under half covered, a host of
three samples against a 5-minute rule, a typo'd metric and host.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from metrics_toolkit.analysis.reads import Scope, rolled_rows
from metrics_toolkit.archive.runner import run_archive
from metrics_toolkit.frames.contract import MissingDataWarning
from metrics_toolkit.frames.load import load_frame
from metrics_toolkit.reporting import build_report, render_html, render_json
from metrics_toolkit.store.ingest import write_snapshots
from metrics_toolkit.store.policies import update_policy

END = datetime(2026, 3, 4, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
Row = tuple[datetime, str, dict[str, Any]]


def doc(host: str, cpu: float) -> dict[str, Any]:
    return {"host": host, "cpu": {"usage_percent": cpu}, "memory": {"usage_percent": 40.0}}


def minutes(host: str, start: datetime, count: int, skip: set[int] = frozenset()) -> list[Row]:  # type: ignore[assignment]
    """One sample a minute from ``start``, ``count`` minutes, leaving out ``skip``."""
    return [
        (start + i * MINUTE, "aggregated", doc(host, 10.0 + i % 7))
        for i in range(count)
        if i not in skip
    ]


def roll_up(engine: Engine, tmp_path: Path) -> None:
    """Roll everything older than a day before END up to 1 h buckets (the real runner)."""
    with Session(engine) as session:
        update_policy(session=session, downsample_after_days=1, downsample_interval="1h")
        session.commit()
    result = run_archive(engine, now=END, archive_path=tmp_path / "archive")
    assert result.total("rollups_written") > 0


# Two hours rolled up (one with a 30-minute outage at :10), then raw data to END.
OLD = END - timedelta(days=1, hours=2)
OUTAGE = set(range(70, 100))  # minutes 1:10 to 1:40 of the history


@pytest.fixture
def history(engine: Engine, tmp_path: Path) -> list[Row]:
    rows = minutes("h", OLD, 26 * 60, skip=OUTAGE)
    write_snapshots(engine, rows)
    roll_up(engine, tmp_path)
    return rows


def test_gaps_inside_rolled_up_buckets(engine: Engine, history: list[Row]) -> None:
    report = render_json(build_report(engine, start=OLD, end=END))
    (entry,) = report["completeness"]
    # The oracle: the second stored hour holds 30 of 60 samples: a partial gap, one hour
    # long at the stored resolution, 30 samples missing; nothing else is missing.
    assert entry["sample_interval"] == "1min"
    assert entry["expected"] == 26 * 60
    assert entry["received"] == len(history) == 26 * 60 - 30
    assert [
        (g["start"], g["end"], g["missing"], g["expected"], g["partial"]) for g in entry["gaps"]
    ] == [
        (
            (OLD + timedelta(hours=1)).isoformat(),
            (OLD + timedelta(hours=2)).isoformat(),
            30,
            60,
            True,
        )
    ]
    html = render_html(build_report(engine, start=OLD, end=END))
    assert "30 of 60" in html


def test_period_starting_inside_a_stored_bucket(engine: Engine, history: list[Row]) -> None:
    start = OLD + timedelta(minutes=29)  # inside the first stored hour
    report = render_json(build_report(engine, start=start, end=END))
    (entry,) = report["completeness"]
    # The oracle: the first stored hour (60 samples) counts for its 31 minutes inside
    # the period; no phantom gap at the start.
    inside = [ts for ts, _, _ in history if ts >= OLD + timedelta(hours=1)]
    assert entry["expected"] == (26 * 60 - 29)
    assert entry["received"] == len(inside) + 31
    assert [(g["start"], g["missing"]) for g in entry["gaps"]] == [
        ((OLD + timedelta(hours=1)).isoformat(), 30)
    ]
    assert entry["first"] == start.isoformat()


def test_previous_period_under_half_covered(engine: Engine) -> None:
    start = END - timedelta(hours=2)
    now = minutes("h", start, 120)
    before = minutes("h", start - timedelta(minutes=40), 40)  # 40 of the previous 120 min
    other = minutes("g", start - timedelta(hours=2), 240)  # a host with a full previous period
    write_snapshots(engine, now + before + other)
    report = render_json(build_report(engine, start=start, end=END))
    rows = {(r["metric"], r["host"]): r for r in report["summary"]}
    thin = rows["cpu.usage_percent", "h"]
    # The oracle: the previous mean of host h stands on its 40 samples, a third of 120.
    values = [d["cpu"]["usage_percent"] for _, _, d in before]
    assert thin["previous_samples"] == 40
    assert thin["previous_coverage"] == pytest.approx(40 / 120)
    assert thin["previous_mean"] == pytest.approx(sum(values) / len(values))
    assert thin["change"] is None and thin["change_ratio"] is None
    full = rows["cpu.usage_percent", "g"]
    old = [d["cpu"]["usage_percent"] for ts, _, d in other if ts < start]
    new = [d["cpu"]["usage_percent"] for ts, _, d in other if ts >= start]
    assert full["previous_samples"] == 120 and full["previous_coverage"] == pytest.approx(1.0)
    assert full["change"] == pytest.approx(sum(new) / len(new) - sum(old) / len(old))
    assert "33 %" in report["comparison_note"] and "h 33 %" in report["comparison_note"]
    html = render_html(build_report(engine, start=start, end=END))
    assert "only h 33 % of its length" in html


def test_three_sample_host_with_a_five_minute_rule(engine: Engine) -> None:
    start = END - timedelta(hours=2)
    steady = minutes("h", start, 120)
    live = [
        (END - timedelta(minutes=30) + timedelta(seconds=2 * i), "aggregated", doc("vm", 99.0))
        for i in range(3)
    ]
    write_snapshots(engine, steady + live)
    rules = {"cpu.usage_percent": {"above": 90, "for": "5min"}}
    built = build_report(engine, start=start, end=END, thresholds=rules)
    report = render_json(built)
    # The oracle: 3 samples 2 s apart span 6 s, far less than 5 minutes: no episode, the
    # rule is reported as not judged on vm; vm holds 3 of 3,600 expected samples (2 h at
    # 2 s), under 1 %: listed apart, not summarised, not charted.
    assert report["breaches"] == []
    assert [(u["host"], u["samples"], u["sample_seconds"]) for u in report["unjudged"]] == [
        ("vm", 3, 2)
    ]
    assert [(s["host"], s["samples"], s["expected"]) for s in report["sparse_hosts"]] == [
        ("vm", 3, 3600)
    ]
    assert {r["host"] for r in report["summary"]} == {"h"}
    assert [c["host"] for c in report["completeness"]] == ["h"]
    assert set(built.chart.index.get_level_values("host")) == {"h"}
    html = render_html(built)
    assert "could not be judged on vm" in html and "Sparse hosts" in html


def test_typo_in_a_metric_or_a_host_is_named(engine: Engine) -> None:
    write_snapshots(engine, minutes("h", END - timedelta(hours=1), 60))
    with pytest.warns(MissingDataWarning, match="'cpu.usage_pct'"):
        frame = load_frame(engine, END - timedelta(hours=1), END, metrics=["cpu.usage_pct"])
    assert len(frame) == 60 and frame["cpu.usage_pct"].isna().all()
    assert any("'cpu.usage_pct'" in note for note in frame.attrs["notes"])
    with pytest.warns(MissingDataWarning, match="'hh'"):
        empty = load_frame(engine, END - timedelta(hours=1), END, host="hh", interval="5min")
    assert empty.empty and any("'hh'" in note for note in empty.attrs["notes"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", MissingDataWarning)  # found: no warning, no note
        good = load_frame(
            engine, END - timedelta(hours=1), END, metrics=["cpu.usage_percent"], host="h"
        )
    assert good.attrs["notes"] == []


def test_rolled_rows_are_found_by_the_rollup_index(engine: Engine, history: list[Row]) -> None:
    scope = Scope("aggregated", OLD - timedelta(days=7), END)
    statements: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        statements.append((statement, parameters))

    with engine.connect() as connection:
        event.listen(engine, "before_cursor_execute", seen)
        try:
            rows = rolled_rows(connection, scope)
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        # Every stored hour of the history, one row each (two hours, one with an outage).
        assert [(r.timestamp, r.seconds, r.samples) for r in rows] == [
            (OLD, 3600, 60),
            (OLD + timedelta(hours=1), 3600, 30),
        ]
        if engine.dialect.name == "sqlite":  # the partial index, not a scan of the range
            ((statement, parameters),) = statements
            driver = connection.connection.driver_connection
            assert driver is not None
            plan = driver.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
            assert "ix_metrics_snapshots_rollups" in str(plan), plan
