"""load_frame: database pushdown, the pandas rule, and raw vs rolled-up data all agree."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from metrics_toolkit.errors import InvalidInterval, MetricsToolkitError, UnknownMetric
from metrics_toolkit.frames.load import (
    choose_interval,
    list_hosts,
    list_metrics,
    load_frame,
    time_range,
)
from metrics_toolkit.rollup.rule import Row, rollup_rows
from metrics_toolkit.store.models import MetricsSnapshot

T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
METRICS = ["cpu.usage_percent", "memory.used_bytes", "disk.mounts./.usage_percent"]
SQL_STATS = ("mean", "min", "max", "sum", "count")


def history(hours: int = 3, seed: int = 7) -> list[Row]:
    """Two hosts at 10 s with gaps, a leaf that comes and goes, and a non-numeric value."""
    rng = random.Random(seed)
    rows: list[Row] = []
    for host in ("web-1", "db-1"):
        for i in range(hours * 360):
            if 500 <= i < 560 and host == "db-1":  # a 10-minute collection gap
                continue
            doc: dict[str, Any] = {
                "host": host,
                "cpu": {"usage_percent": round(rng.uniform(0, 100), 3)},
                "memory": {"used_bytes": rng.randrange(1_000_000, 9_000_000)},
            }
            if i % 7:
                doc["disk"] = {"mounts": {"/": {"usage_percent": rng.uniform(40, 60)}}}
            if i == 42:
                doc["cpu"]["usage_percent"] = "n/a"  # malformed: not a number
            rows.append(
                (T0 + timedelta(seconds=10 * i + (3 if host == "db-1" else 0)), "aggregated", doc)
            )
    return rows


def store(engine: Engine, rows: list[Row]) -> None:
    with Session(engine) as session, session.begin():
        session.execute(text("DELETE FROM metrics_snapshots"))
        session.add_all(
            MetricsSnapshot(timestamp=ts, metric_type=mt, metric_data=doc) for ts, mt, doc in rows
        )


def independent_hourly(rows: list[Row]) -> pd.DataFrame:
    """The expected answer, computed straight from the raw rows with plain pandas."""
    records = []
    for ts, _, doc in rows:
        cpu = doc["cpu"]["usage_percent"]
        disk = doc.get("disk", {}).get("mounts", {}).get("/", {}).get("usage_percent")
        records.append(
            {
                "timestamp": ts,
                "cpu.usage_percent": cpu if isinstance(cpu, float) else np.nan,
                "memory.used_bytes": float(doc["memory"]["used_bytes"]),
                "disk.mounts./.usage_percent": np.nan if disk is None else disk,
            }
        )
    frame = pd.DataFrame(records).set_index("timestamp")
    return frame.resample("1h", origin="epoch", closed="left", label="left").agg(
        ["mean", "min", "max", "sum", "count"]
    )


def assert_close(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, check_freq=False)


def test_pushdown_pandas_raw_and_mixed_agree(engine: Engine) -> None:
    raw = history()
    expected = independent_hourly(raw)
    store(engine, raw)
    by_sql = load_frame(engine, metrics=METRICS, interval="1h", stats=SQL_STATS)
    by_pandas = load_frame(engine, metrics=METRICS, interval="1h", stats=SQL_STATS, method="pandas")
    assert by_sql.attrs["method"] == "sql" and by_pandas.attrs["method"] == "pandas"
    assert_close(by_sql, by_pandas)
    for metric in METRICS:
        for stat in SQL_STATS:
            np.testing.assert_allclose(
                by_sql[metric, stat].to_numpy(), expected[metric, stat].to_numpy(), rtol=1e-9
            )

    # The first two hours rolled up to 5min (as the archive policy would), the last raw.
    cutoff = T0 + timedelta(hours=2)
    mixed = rollup_rows([r for r in raw if r[0] < cutoff], "5min") + [
        r for r in raw if r[0] >= cutoff
    ]
    store(engine, mixed)
    assert_close(load_frame(engine, metrics=METRICS, interval="1h", stats=SQL_STATS), by_sql)
    assert_close(
        load_frame(engine, metrics=METRICS, interval="1h", stats=SQL_STATS, method="pandas"), by_sql
    )


def test_first_and_last_follow_sample_times(engine: Engine) -> None:
    raw = history(hours=2)
    store(engine, raw)
    expected = load_frame(
        engine, metrics=METRICS, interval="30min", stats=("first", "last"), method="pandas"
    )
    cutoff = T0 + timedelta(hours=1)
    store(
        engine,
        rollup_rows([r for r in raw if r[0] < cutoff], "10min")
        + [r for r in raw if r[0] >= cutoff],
    )
    assert_close(
        load_frame(engine, metrics=METRICS, interval="30min", stats=("first", "last")), expected
    )
    web = sorted((r for r in raw if r[2]["host"] == "web-1"), key=lambda r: r[0])
    first_cpu = web[0][2]["cpu"]["usage_percent"]
    per_host = load_frame(
        engine, metrics=["cpu.usage_percent"], interval="30min", stats=("first",), host="web-1"
    )
    assert per_host["cpu.usage_percent"].iloc[0] == first_cpu


def test_full_resolution_filters_and_half_open_range(engine: Engine) -> None:
    raw = history(hours=1)
    store(engine, raw)
    start, end = T0 + timedelta(minutes=10), T0 + timedelta(minutes=20)
    frame = load_frame(engine, start, end, metrics=METRICS, host="web-1")
    expected_times = [ts for ts, _, doc in raw if doc["host"] == "web-1" and start <= ts < end]
    assert list(frame.index) == expected_times
    assert frame.index.tz is not None and str(frame.index.tz) == "UTC"
    assert frame.index.name == "timestamp"
    assert list(frame.columns) == METRICS
    by_time = {ts: doc for ts, _, doc in raw if doc["host"] == "web-1"}
    assert frame["memory.used_bytes"].tolist() == [
        float(by_time[t]["memory"]["used_bytes"]) for t in expected_times
    ]
    both = load_frame(engine, start, end, metrics=["cpu.usage_percent"], by_host=True)
    assert set(both.index.get_level_values("host")) == {"web-1", "db-1"}
    assert load_frame(engine, "2030-01-01", "2030-01-02", metrics=METRICS).empty


def test_malformed_value_is_skipped_not_a_crash(engine: Engine) -> None:
    store(engine, history(hours=1))
    frame = load_frame(engine, metrics=["cpu.usage_percent"], host="web-1")
    assert np.isnan(frame["cpu.usage_percent"].iloc[42])
    hourly = load_frame(
        engine, metrics=["cpu.usage_percent"], interval="1h", stats=("count",), host="web-1"
    )
    assert hourly["cpu.usage_percent"].iloc[0] == 359


@pytest.mark.parametrize(
    "path",
    [
        "cpu'; DROP TABLE users; --",
        'cpu"); DELETE FROM metrics_snapshots; --',
        "cpu.usage_percent' OR '1'='1",
        "cpu.usage_percent; SELECT pg_sleep(5)",
        "mémoire.utilisée_octets",
        "a.b\\.c",
        "x" * 400,
    ],
)
def test_hostile_metric_paths_are_inert(engine: Engine, path: str) -> None:
    rows = history(hours=1)
    store(engine, rows)
    for interval in (None, "15min"):
        frame = load_frame(engine, metrics=[path, "cpu.usage_percent"], interval=interval)
        assert frame[path].isna().all()
        assert frame["cpu.usage_percent"].notna().any()
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(MetricsSnapshot)) == len(rows)
        assert connection.execute(text("SELECT count(*) FROM users")).scalar() == 0


@pytest.mark.parametrize("path", ["", "x" * 600, "_rollup.count.cpu"])
def test_invalid_metric_paths_are_refused(engine: Engine, path: str) -> None:
    with pytest.raises(UnknownMetric):
        load_frame(engine, metrics=[path])


def test_bad_interval_and_stat(engine: Engine) -> None:
    with pytest.raises(InvalidInterval, match="interval='auto'"):
        load_frame(engine, metrics=METRICS, interval="7min")
    with pytest.raises(MetricsToolkitError, match="Unknown statistic 'median'"):
        load_frame(engine, metrics=METRICS, interval="1h", stats=("median",))


def test_auto_interval_respects_point_budget(engine: Engine) -> None:
    store(engine, history(hours=3))
    frame = load_frame(engine, metrics=["cpu.usage_percent"], interval="auto", point_budget=50)
    assert 0 < len(frame) <= 50
    assert frame.attrs["interval"] == "5min"
    assert choose_interval(T0, T0 + timedelta(days=30)) == choose_interval(
        T0, T0 + timedelta(days=30), point_budget=400
    )
    assert (timedelta(days=30) / choose_interval(T0, T0 + timedelta(days=30)).timedelta) <= 400


def test_coarser_stored_data_is_said_not_invented(engine: Engine) -> None:
    raw = history(hours=2)
    store(engine, rollup_rows(raw, "1h"))
    frame = load_frame(engine, metrics=["cpu.usage_percent"], interval="5min", host="web-1")
    assert len(frame) == 2  # one point per stored hour, no invented 5-minute buckets
    assert frame.attrs["stored_intervals"] == ["1h"]
    assert "coarser than the requested 5min" in frame.attrs["notes"][0]


def test_list_metrics_and_hosts(engine: Engine) -> None:
    store(engine, history(hours=1))
    assert list_hosts(engine) == ["db-1", "web-1"]
    infos = {m.path: m for m in list_metrics(engine)}
    assert set(infos) == set(METRICS)
    assert infos["cpu.usage_percent"].unit == "percent"
    assert infos["cpu.usage_percent"].area == "cpu"
    assert list_hosts(engine, metric_type="other") == []


def test_time_range_is_the_first_and_last_row_within_the_filters(engine: Engine) -> None:
    rows = history(hours=2)
    rows += [(T0 - timedelta(days=1), "other", {"host": "web-1", "cpu": {"usage_percent": 1}})]
    store(engine, rows)

    def expected(keep: Any) -> tuple[datetime, datetime] | None:
        stamps = [ts for ts, mt, doc in rows if keep(ts, mt, doc)]
        return (min(stamps), max(stamps)) if stamps else None

    assert time_range(engine) == expected(lambda ts, mt, doc: mt == "aggregated")
    assert time_range(engine, metric_type="other") == (T0 - timedelta(days=1),) * 2
    assert time_range(engine, metric_type="none") is None
    lo, hi = T0 + timedelta(minutes=30), T0 + timedelta(minutes=50)
    assert time_range(engine, start=lo, end=hi) == expected(
        lambda ts, mt, doc: mt == "aggregated" and lo <= ts < hi
    )
    assert time_range(engine, host="db-1") == expected(
        lambda ts, mt, doc: mt == "aggregated" and doc["host"] == "db-1"
    )
    assert time_range(engine, start=T0 + timedelta(days=9)) is None


def test_list_metrics_of_rolled_up_rows_skips_their_statistics(engine: Engine) -> None:
    # The _rollup block is cut in the database (it is most of a rolled-up row's text): the
    # paths are those of the raw rows, never one of the statistics.
    store(engine, rollup_rows(history(hours=3), "1h"))
    infos = list_metrics(engine)
    assert {m.path for m in infos} == set(METRICS)
    assert not [m.path for m in infos if "_rollup" in m.path]
