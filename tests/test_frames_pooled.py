"""Pooled frames (no ``host``, no ``by_host``) are the merge of the per-host frames.

The issue-17 reproduction (a counter on two hosts, one resetting) on both databases, the
archive reader and Dask, and the law ``pooled == merge(by_host)`` for every statistic, on
random histories with resets, rolled-up spans, late rows and equal timestamps across
hosts. The expected numbers are computed here from the generated samples, never by the
library.
"""

from __future__ import annotations

import itertools
import math
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from metrics_toolkit.archive.store import ArchiveRow, ArchiveStore
from metrics_toolkit.errors import MetricsToolkitError
from metrics_toolkit.frames import load as frames_load
from metrics_toolkit.frames.dask import load_dask_frame
from metrics_toolkit.frames.load import load_frame
from metrics_toolkit.rollup.rule import Row, rollup_rows
from metrics_toolkit.store.models import MetricsSnapshot

T0 = datetime(2026, 1, 1, tzinfo=UTC)
COUNTER = "net.x_total"
GAUGE = "cpu.usage_percent"
GAUGE_STATS = ("mean", "min", "max", "sum", "count", "first", "last")
ALL_STATS = (*GAUGE_STATS, "increase", "resets", "max_rate")


def store(engine: Engine, rows: list[Row]) -> None:
    """Replace the table's rows with ``rows``, inserted in order (ids follow it)."""
    with Session(engine) as session, session.begin():
        session.execute(text("DELETE FROM metrics_snapshots"))
        for ts, mt, doc in rows:  # one at a time: ids in insertion order
            session.add(MetricsSnapshot(timestamp=ts, metric_type=mt, metric_data=doc))
            session.flush()


def archive_of(engine: Engine, root: Path) -> Path:
    """The database's rows, ids included, written as a Parquet archive under ``root``."""
    with Session(engine) as session:
        found = session.execute(
            select(
                MetricsSnapshot.id,
                MetricsSnapshot.timestamp,
                MetricsSnapshot.metric_type,
                MetricsSnapshot.metric_data,
            )
        ).all()
    rows = [
        ArchiveRow(id, ts if ts.tzinfo else ts.replace(tzinfo=UTC), mt, doc)
        for id, ts, mt, doc in found
    ]
    archive = ArchiveStore(root)
    archive.finalize(archive.write_pending(rows))
    return root


# --------------------------------------------------------------------- the reproduction


def issue_rows() -> list[Row]:
    """Issue 17: h1 counts 0, 1, 2... (reset to 0 at minute 100), h2 1000, 1002, ..."""
    rows: list[Row] = []
    for minute in range(240):
        ts = T0 + timedelta(minutes=minute)
        h1 = minute if minute < 100 else minute - 100
        rows.append((ts, "aggregated", {"host": "h1", "net": {"x_total": h1}}))
        rows.append((ts, "aggregated", {"host": "h2", "net": {"x_total": 1000 + 2 * minute}}))
    return rows


def expected_hourly_increase(rows: list[Row]) -> list[float]:
    """Per host, each step's increase (after a reset: the new value) in the hour it ends
    in; the first sample of the range has no step. Then the hosts' increases summed."""
    by_host: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for ts, _, doc in rows:
        by_host[doc["host"]].append((ts, doc["net"]["x_total"]))
    hourly = [0.0] * 4
    for samples in by_host.values():
        samples.sort()
        for (_, before), (ts, after) in itertools.pairwise(samples):
            hour = int((ts - T0) / timedelta(hours=1))
            hourly[hour] += after - before if after >= before else after
    return hourly


def issue_frame(source: Any, **kwargs: Any) -> list[float]:
    frame = load_frame(
        source, "2026-01-01", "2026-01-01T04:00", metrics=[COUNTER], interval="1h",
        stats=("increase",), **kwargs,
    )  # fmt: skip
    assert frame.index.names == ["timestamp"]
    return list(frame[COUNTER])


def test_issue_reproduction_every_path(engine: Engine, tmp_path: Path) -> None:
    rows = issue_rows()
    expected = expected_hourly_increase(rows)
    assert expected == [177, 179, 180, 180]  # the issue's own figures
    store(engine, rows)
    assert issue_frame(engine) == expected
    assert issue_frame(engine, method="pandas") == expected
    with pytest.raises(MetricsToolkitError, match="cannot compute counters"):
        issue_frame(engine, method="sql")
    per_host = load_frame(
        engine, "2026-01-01", "2026-01-01T04:00", metrics=[COUNTER], interval="1h",
        stats=("increase",), by_host=True,
    )  # fmt: skip
    assert list(per_host.loc["h1", COUNTER]) == [59, 59, 60, 60]
    assert list(per_host.loc["h2", COUNTER]) == [118, 120, 120, 120]
    root = archive_of(engine, tmp_path / "archive")
    assert issue_frame(root) == expected
    on_dask = load_dask_frame(
        root, "2026-01-01", "2026-01-01T04:00", metrics=[COUNTER], interval="1h",
        stats=("increase",), compute=True,
    )  # fmt: skip
    assert isinstance(on_dask, pd.DataFrame)
    assert list(on_dask[COUNTER]) == expected


@pytest.mark.parametrize("sample", [1000, 1])
def test_raw_frames_of_several_hosts_have_a_host_level(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sample: int
) -> None:
    # PostgreSQL looks at the first rows for a second host; with one row it sees only
    # one and finds the others by a flag in the full read
    monkeypatch.setattr(frames_load, "_HOST_SAMPLE", sample)
    rows = issue_rows()[:20]  # minutes 0-9, both hosts: equal timestamps
    store(engine, rows)
    root = archive_of(engine, tmp_path / "archive")
    for source in (engine, root):
        pooled = load_frame(source, metrics=[COUNTER])
        assert pooled.index.names == ["host", "timestamp"]
        by_host = load_frame(source, metrics=[COUNTER], by_host=True)
        pd.testing.assert_frame_equal(pooled, by_host)
        # rows in time order, equal times by host
        assert list(pooled.index)[:4] == [
            ("h1", T0), ("h2", T0), ("h1", T0 + timedelta(minutes=1)),
            ("h2", T0 + timedelta(minutes=1)),
        ]  # fmt: skip
        expected = [float(doc["net"]["x_total"]) for _, _, doc in rows]
        assert list(pooled[COUNTER]) == expected
        one = load_frame(source, metrics=[COUNTER], host="h2")
        assert one.index.names == ["timestamp"] and len(one) == 10
    store(engine, [r for r in rows if r[2]["host"] == "h1"])
    assert load_frame(engine, metrics=[COUNTER]).index.names == ["timestamp"]


# --------------------------------------------------------------------- the law


@dataclass
class Scene:
    """Rows to store, and when each host's samples are (what a bucket's first/last is)."""

    rows: list[Row]
    interval: str
    samples: dict[str, list[datetime]] = field(default_factory=dict)
    #: per host, the stored buckets the archive drops (a raw row lies in their span)
    shadowed: dict[str, list[tuple[datetime, datetime]]] = field(default_factory=dict)


@st.composite
def scenes(draw: st.DrawFn) -> Scene:
    """Two or three hosts on a shared 3-minute grid (equal timestamps across hosts), a
    resetting counter and a gauge; a prefix of each host rolled up, some of its samples
    kept back and stored later as raw rows (late rows)."""
    hosts = draw(st.lists(st.sampled_from(["a", "B", "web-1", "b"]), min_size=2, max_size=3,
                          unique=True))  # fmt: skip
    stored, interval = draw(
        st.sampled_from([("5min", "15min"), ("15min", "30min"), ("15min", "1h"), ("5min", "1h")])
    )
    rolled_rows: list[Row] = []
    raw_rows: list[Row] = []
    late_rows: list[Row] = []
    scene = Scene([], interval)
    width = timedelta(minutes=5 if stored == "5min" else 15)
    for host in hosts:
        slots = sorted(draw(st.sets(st.integers(0, 40), min_size=1, max_size=20)))
        cutoff = draw(st.integers(0, 41)) * 3  # minutes before it are rolled up
        counter = draw(st.integers(0, 100))
        samples: list[Row] = []
        for slot in slots:
            if draw(st.integers(0, 5)) == 0:
                counter = draw(st.integers(0, 5))  # a reset
            else:
                counter += draw(st.integers(0, 20))
            doc = {"host": host, "net": {"x_total": counter},
                   "cpu": {"usage_percent": draw(st.integers(0, 9))}}  # fmt: skip
            samples.append((T0 + timedelta(minutes=3 * slot), "aggregated", doc))
        scene.samples[host] = [ts for ts, _, _ in samples]
        early = [r for r in samples if r[0] < T0 + timedelta(minutes=cutoff)]
        late = [r for r in early[1:] if draw(st.integers(0, 4)) == 0]
        rolled = [r for r in early if r not in late]
        raw = [r for r in samples if r[0] >= T0 + timedelta(minutes=cutoff)]
        rolled_rows += rollup_rows(rolled, stored)
        raw_rows += raw
        late_rows += late
        spans = {_floor(ts, width) for ts, _, _ in rolled}
        scene.shadowed[host] = [
            (start, start + width)
            for start in spans
            if any(start <= ts < start + width for ts, _, _ in late + raw)
        ]
    scene.rows = rolled_rows + raw_rows + late_rows  # late rows are stored last
    return scene


def _floor(ts: datetime, width: timedelta) -> datetime:
    return T0 + (ts - T0) // width * width


def sample_times(scene: Scene, *, archive: bool) -> dict[str, list[datetime]]:
    """Each host's sample times as the source sees them: the archive drops a rolled-up
    bucket holding a late raw row (raw rows are its ground truth), with its samples."""
    if not archive:
        return scene.samples
    out = {}
    for host, times in scene.samples.items():
        shadowed = scene.shadowed[host]
        late = {ts for ts, _, doc in scene.rows if doc["host"] == host and "_rollup" not in doc}
        out[host] = [ts for ts in times if ts in late or not any(a <= ts < b for a, b in shadowed)]
    return out


def merge_by_host(
    by_host: pd.DataFrame, times: dict[str, list[datetime]], interval: str, metrics: list[str]
) -> pd.DataFrame:
    """The pooling law, written out over the per-host frame, bucket by bucket."""
    width = pd.Timedelta(interval).to_pytimedelta()
    stats = list(by_host.columns.get_level_values("stat").unique())
    buckets = sorted(set(by_host.index.get_level_values("timestamp")))
    out: dict[tuple[str, str], list[float]] = {(m, s): [] for m in metrics for s in stats}
    for bucket in buckets:
        rows = by_host.xs(bucket, level="timestamp")
        spans = {h: [t for t in times[h] if bucket <= t < bucket + width] for h in times}
        for metric in metrics:
            cells = {h: rows.loc[h, metric].to_dict() for h in rows.index}
            present = {h: cell for h, cell in cells.items() if cell["count"] > 0}
            for stat in stats:
                out[metric, stat].append(merged(stat, metric, present, spans))
    index = pd.DatetimeIndex(buckets, name="timestamp")
    frame = pd.DataFrame(out, index=index, dtype=np.float64)
    frame.columns = pd.MultiIndex.from_tuples(list(out), names=["metric", "stat"])
    return frame


def merged(
    stat: str, metric: str, present: dict[str, dict[str, float]], spans: dict[str, list[datetime]]
) -> float:
    """Counts, sums, increases, resets add; min of mins, max of maxes, the highest
    max_rate; mean sample-weighted (a counter's: its last); first / last of the earliest /
    latest sample, ties by host label (first: the lowest, last: the highest)."""
    found = [cell[stat] for cell in present.values() if not math.isnan(cell[stat])]
    if stat == "count":
        return float(sum(found))
    if stat in ("sum", "increase", "resets"):
        return float(sum(found)) if found else np.nan
    if stat == "min":
        return min(found, default=np.nan)
    if stat in ("max", "max_rate"):
        return max(found, default=np.nan)
    if not present:
        return np.nan
    if stat == "first":
        return present[min(present, key=lambda h: (min(spans[h]), h))]["first"]
    if stat == "last" or metric == COUNTER:  # a counter's mean is its last value
        return present[max(present, key=lambda h: (max(spans[h]), h))]["last"]
    weighted = sum(cell["mean"] * cell["count"] for cell in present.values())
    return weighted / sum(cell["count"] for cell in present.values())


def assert_law(
    source: Any, scene: Scene, metrics: list[str], stats: tuple[str, ...], **kwargs: Any
) -> None:
    asked: dict[str, Any] = {"metrics": metrics, "interval": scene.interval, "stats": stats}
    pooled = load_frame(source, **asked, **kwargs)
    by_host = load_frame(source, **asked, by_host=True, **kwargs)
    times = sample_times(scene, archive=isinstance(source, Path))
    expected = merge_by_host(by_host, times, scene.interval, metrics)
    pd.testing.assert_frame_equal(
        pooled, expected, check_freq=False, rtol=1e-9, check_index_type=False,
        obj=f"{kwargs} {stats}",
    )  # fmt: skip


LAW = settings(
    max_examples=12,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # bounded: no shrinking
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.mark.slow
@LAW
@given(scene=scenes())
def test_pooled_is_the_merge_of_the_hosts(engine: Engine, tmp_path: Path, scene: Scene) -> None:
    store(engine, scene.rows)
    both = [COUNTER, GAUGE]
    assert_law(engine, scene, both, ALL_STATS, method="pandas")
    assert_law(engine, scene, both, ALL_STATS, method="auto")
    # the database pushdown: gauges (first/last too on PostgreSQL, pandas on SQLite)
    assert_law(engine, scene, [GAUGE], GAUGE_STATS, method="auto")
    sql_stats = GAUGE_STATS if engine.dialect.name == "postgresql" else GAUGE_STATS[:5]
    assert_law(engine, scene, [GAUGE], sql_stats, method="sql")
    root = archive_of(engine, tmp_path / uuid.uuid4().hex)  # one per example
    assert_law(root, scene, both, ALL_STATS)


def test_first_and_last_ties_agree_on_every_path(engine: Engine, tmp_path: Path) -> None:
    """Equal sample times on several hosts: first from the lowest host label, last from
    the highest (byte order: "B" < "a"), on both databases, pandas, archive and Dask."""
    rows: list[Row] = []
    for minute in range(0, 60, 5):
        for host, value in (("a", 1.0), ("B", 2.0), ("web-1", 3.0)):
            doc = {"host": host, "cpu": {"usage_percent": value + minute}}
            rows.append((T0 + timedelta(minutes=minute), "aggregated", doc))
    store(engine, rows[::-1])  # ids opposite to time: ties are not broken by insertion
    want = {"first": 2.0, "last": 3.0 + 55}  # "B" at minute 0, "web-1" at minute 55
    asked: dict[str, Any] = {"metrics": [GAUGE], "interval": "1h", "stats": ("first", "last")}
    root = archive_of(engine, tmp_path / "archive")
    frames = [load_frame(engine, **asked, method=m) for m in ("auto", "pandas")]
    frames.append(load_frame(root, **asked))
    on_dask = load_dask_frame(root, **asked, compute=True)
    assert isinstance(on_dask, pd.DataFrame)
    for frame in [*frames, on_dask]:
        assert frame[GAUGE, "first"].tolist() == [want["first"]]
        assert frame[GAUGE, "last"].tolist() == [want["last"]]
