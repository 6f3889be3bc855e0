"""build_report's numbers against an independent computation from the inserted documents.

Two days of generated history (2 hosts, one snapshot a minute) go into a real SQLite file
and the real PostgreSQL. The report's JSON is then checked against plain pandas/numpy on
the very documents inserted: means, extremes, percentiles, sample counts, the previous
period, gaps and breach episodes. At one sample a minute the report's detail buckets hold
one sample each, so every figure, p50 and p95 included, must be exact.
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from metrics_toolkit.collect.generator import generate_history
from metrics_toolkit.reporting import build_report, render_html, render_json
from metrics_toolkit.store.db import make_engine
from metrics_toolkit.store.ingest import write_snapshots
from tests.conftest import empty_postgres

END = datetime(2026, 1, 7, tzinfo=UTC)
START = END - timedelta(days=2)
STEP = 60
THRESHOLDS = {"cpu.usage_percent": {"above": 40, "for": "5min"}, "memory.usage_percent": 50}


def _leaf(doc: dict[str, Any], path: str) -> float | None:
    node: Any = doc
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return float(node) if isinstance(node, int | float) and not isinstance(node, bool) else None


@pytest.fixture(scope="module")
def history() -> list[tuple[datetime, str, dict[str, Any]]]:
    chunks = generate_history(start=START, end=END, interval=f"{STEP}s", hosts=2, seed=11)
    return [row for chunk in chunks for row in chunk]


@pytest.fixture(scope="module")
def raw(history: list[tuple[datetime, str, dict[str, Any]]]) -> pd.DataFrame:
    """The inserted documents as a plain frame: host, ts and every summarised leaf."""
    paths = [
        "cpu.usage_percent",
        "cpu.load1",
        "memory.usage_percent",
        "memory.used_bytes",
        "swap.usage_percent",
        "disk.mounts./.usage_percent",
        "disk.mounts./data.usage_percent",
        "diskio.read_bytes_per_s",
        "diskio.write_bytes_per_s",
        "network.bytes_recv_per_s",
        "network.bytes_sent_per_s",
    ]
    records = [
        {"ts": ts, "host": doc["host"], **{p: _leaf(doc, p) for p in paths}}
        for ts, _, doc in history
    ]
    return pd.DataFrame.from_records(records)


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def loaded_url(
    request: pytest.FixtureRequest,
    history: list[tuple[datetime, str, dict[str, Any]]],
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_template: Path,
) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("report") / "metrics.db"
        shutil.copyfile(sqlite_template, path)
        url = f"sqlite:///{path}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
        empty_postgres(url)
    engine = make_engine(url)
    write_snapshots(engine, history)
    engine.dispose()
    yield url


def _episodes(
    times: pd.Series, values: pd.Series, above: float, hold: int
) -> list[tuple[datetime, datetime, float]]:
    """Runs of consecutive samples (one minute apart) above ``above`` lasting >= ``hold`` s."""
    out = []
    run: list[tuple[datetime, float]] = []
    for ts, value in [*zip(times, values, strict=True), (None, None)]:
        joined = run and ts is not None and ts - run[-1][0] == timedelta(seconds=STEP)
        if value is not None and value > above and (not run or joined):
            run.append((ts, value))
            continue
        if run and len(run) * STEP >= hold:
            out.append((run[0][0], run[-1][0] + timedelta(seconds=STEP), max(v for _, v in run)))
        run = [(ts, value)] if value is not None and value > above else []
    return out


@pytest.mark.parametrize(("period", "days"), [("24h", 1), ("3d", 3)])
def test_json_numbers_equal_an_independent_computation(
    loaded_url: str, raw: pd.DataFrame, period: str, days: int
) -> None:
    report = build_report(loaded_url, period=period, end=END, thresholds=THRESHOLDS)
    data = render_json(report)
    lo, hi = END - timedelta(days=days), END
    window = raw[(raw.ts >= lo) & (raw.ts < hi)]
    before = raw[(raw.ts >= lo - (hi - lo)) & (raw.ts < lo)]

    assert data["hosts"] == ["db-1", "web-1"]
    assert (data["sample_interval"], data["detail_interval"]) == ("1min", "1min")
    assert data["start"] == lo.isoformat() and data["end"] == hi.isoformat()
    metrics = [c for c in raw.columns if c not in ("ts", "host")]
    assert {(r["metric"], r["host"]) for r in data["summary"]} == {
        (m, h) for m in metrics for h in ("db-1", "web-1")
    }
    for row in data["summary"]:
        values = window.loc[window.host == row["host"], row["metric"]].dropna().to_numpy()
        assert row["samples"] == len(values)
        assert row["mean"] == pytest.approx(values.mean(), rel=1e-9)
        assert row["min"] == values.min() and row["max"] == values.max()
        assert row["p50"] == np.quantile(values, 0.5, method="inverted_cdf")
        assert row["p95"] == np.quantile(values, 0.95, method="inverted_cdf")
        previous = before.loc[before.host == row["host"], row["metric"]].dropna()
        if len(previous):
            assert row["previous_mean"] == pytest.approx(previous.mean(), rel=1e-9)
            assert row["change"] == pytest.approx(values.mean() - previous.mean(), rel=1e-6)
        else:
            assert row["previous_mean"] is None and row["change"] is None

    for entry in data["completeness"]:
        stamps = window.loc[window.host == entry["host"], "ts"].sort_values().reset_index(drop=True)
        assert entry["expected"] == days * 1440
        assert entry["received"] == len(stamps)
        expected_gaps = []
        edges = [lo - timedelta(seconds=STEP), *stamps, hi]
        for a, b in itertools.pairwise(edges):
            if b - a > timedelta(seconds=STEP):
                expected_gaps.append((a + timedelta(seconds=STEP), b))
        got = [
            (datetime.fromisoformat(g["start"]), datetime.fromisoformat(g["end"]))
            for g in entry["gaps"]
        ]
        assert got == expected_gaps
        assert entry["rolled_up"] == []

    for metric, rule in (("cpu.usage_percent", (40, 300)), ("memory.usage_percent", (50, 0))):
        for host in ("db-1", "web-1"):
            part = window[window.host == host].sort_values("ts")
            series = [None if pd.isna(v) else float(v) for v in part[metric]]
            expected = _episodes(part.ts, pd.Series(series, dtype=object), *rule)
            found = [
                (datetime.fromisoformat(b["start"]), datetime.fromisoformat(b["end"]), b["peak"])
                for b in data["breaches"]
                if b["metric"] == metric and b["host"] == host
            ]
            assert found == expected
    assert any(b["metric"] == "cpu.usage_percent" for b in data["breaches"])


def test_top_processes_rank_like_every_document(
    loaded_url: str, history: list[tuple[datetime, str, dict[str, Any]]]
) -> None:
    report = build_report(loaded_url, period="24h", end=END)
    assert report.process_samples > 0
    for host in ("db-1", "web-1"):
        totals: dict[str, float] = {}
        for ts, _, doc in history:
            if doc["host"] != host or not END - timedelta(days=1) <= ts < END:
                continue
            for entry in doc["processes"].get("top_cpu", []):
                totals[entry["name"]] = totals.get(entry["name"], 0.0) + entry["cpu_percent"]
        ranked = [p.name for p in report.processes if p.host == host and p.ranking == "cpu"]
        assert ranked[0] == max(totals, key=lambda name: totals[name])
        assert set(ranked) <= set(totals)


def test_one_host_gives_the_same_numbers_as_its_rows_in_the_all_hosts_report(
    loaded_url: str,
) -> None:
    everyone = build_report(loaded_url, period="24h", end=END)
    alone = build_report(loaded_url, period="24h", end=END, host="web-1")
    assert alone.hosts == ["web-1"] and alone.host_filter == "web-1"
    mine = [r for r in everyone.summary if r.host == "web-1"]
    assert [(r.metric, r.mean, r.p95, r.max, r.samples) for r in alone.summary] == [
        (r.metric, r.mean, r.p95, r.max, r.samples) for r in mine
    ]


def test_a_range_without_data_is_a_short_report(loaded_url: str) -> None:
    report = build_report(loaded_url, period="7d", end=START - timedelta(days=30))
    assert report.empty and report.summary == [] and report.sections == []
    assert "No aggregated data" in report.warnings[0]
    data = render_json(report)
    assert data["empty"] is True and data["hosts"] == []
    unknown = build_report(loaded_url, period="24h", end=END, host="no-such-host")
    assert unknown.empty and "no-such-host" in unknown.warnings[0]


def test_default_range_and_labels(loaded_url: str) -> None:
    report = build_report(loaded_url, start=START, end=END)
    assert report.period == "2d" and report.interval == "10min"
    assert report.title == "Metrics report: all hosts, 2d"
    assert report.policy is None  # building a report creates no policy row
    coarse = build_report(loaded_url, period="24h", end=END, interval="2h")
    assert coarse.interval == "2h" and len(coarse.chart) == 2 * 12


def test_the_data_source_is_shown_without_its_password(loaded_url: str) -> None:
    if not loaded_url.startswith("postgresql"):
        pytest.skip("SQLite URLs hold no password")
    with_password = loaded_url.replace("postgres@", "postgres:s3cret-pass@", 1)
    assert with_password != loaded_url  # the server trusts local connections: any password
    report = build_report(with_password, period="24h", end=END)
    assert "s3cret-pass" not in report.source and "***" in report.source
    assert "s3cret-pass" not in render_html(report)
    assert "s3cret-pass" not in json.dumps(render_json(report))
