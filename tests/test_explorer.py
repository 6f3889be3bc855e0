"""The explorer's Streamlit-free logic: login throttling, queries, views, charts, downloads.

Database tests run on a SQLite file and on PostgreSQL (``db_url``). Expected numbers are
computed independently from the rows the test wrote, never copied from the code under test.
"""

from __future__ import annotations

import io
import math
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine

from metrics_toolkit.analysis.gaps import Gap, find_gaps
from metrics_toolkit.analysis.summaries import weighted_quantile
from metrics_toolkit.archive.runner import dry_run, run_archive
from metrics_toolkit.archive.tiers import refresh
from metrics_toolkit.errors import (
    ConfigError,
    DatabaseError,
    InvalidArgument,
    InvalidInterval,
    InvalidPolicy,
    UnknownConfigKey,
)
from metrics_toolkit.explorer import admin, launch
from metrics_toolkit.explorer.auth import WRONG_CREDENTIALS, LoginThrottle, attempt_login
from metrics_toolkit.explorer.charts import ChartGroup, chart_data, chart_groups, chart_spec
from metrics_toolkit.explorer.connection import TIERS_ENV, database_label, open_database, tiers_on
from metrics_toolkit.explorer.coverage import RolledUpPart, rolled_up_parts
from metrics_toolkit.explorer.downloads import parquet_attrs, to_csv_bytes, to_parquet_bytes
from metrics_toolkit.explorer.markup import escape_markdown
from metrics_toolkit.explorer.query import (
    AUTO,
    BAND,
    P95,
    PRESETS,
    ViewQuery,
    areas,
    default_metrics,
    metric_label,
    normalize_interval,
    preset_step,
    resolve_range,
)
from metrics_toolkit.explorer.raw import latest_snapshots
from metrics_toolkit.explorer.report import build_report_files, report_name, reporting_available
from metrics_toolkit.explorer.sandbox import sandbox_copy
from metrics_toolkit.explorer.units import Scale, axis_scale, format_value
from metrics_toolkit.explorer.view import (
    bucket_quantile,
    build_view,
    pool_hosts,
    with_percentiles,
)
from metrics_toolkit.frames.load import MetricInfo, load_frame
from metrics_toolkit.intervals import Interval
from metrics_toolkit.rollup.arrays import bucket_starts
from metrics_toolkit.store.config import get_config
from metrics_toolkit.store.config_keys import CONFIG_KEYS
from metrics_toolkit.store.db import session_scope
from metrics_toolkit.store.ingest import write_snapshots
from metrics_toolkit.store.policies import update_policy
from metrics_toolkit.store.users import add_user, get_user

T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
HOURS = 6
GAP = (T0 + timedelta(hours=2), T0 + timedelta(hours=3))  # db-1 collects nothing here


def rows(seed: int = 3) -> list[tuple[datetime, str, dict[str, Any]]]:
    """Two hosts every 10 minutes for 6 hours; db-1 misses one hour."""
    rng = random.Random(seed)
    out = []
    for i in range(HOURS * 6):
        ts = T0 + timedelta(minutes=10 * i)
        for host in ("web-1", "db-1"):
            if host == "db-1" and GAP[0] <= ts < GAP[1]:
                continue
            doc = {
                "host": host,
                "cpu": {
                    "usage_percent": round(rng.uniform(0, 100), 3),
                    "user_percent": round(rng.uniform(0, 50), 3),
                },
                "memory": {"used_bytes": rng.randrange(2 * 1024**3, 6 * 1024**3)},
            }
            out.append((ts, "aggregated", doc))
    return out


def values(
    data: list[tuple[datetime, str, dict[str, Any]]], path: str, host: str | None = None
) -> np.ndarray:
    area, leaf = path.split(".")
    return np.array(
        [doc[area][leaf] for _, _, doc in data if host is None or doc["host"] == host], dtype=float
    )


@pytest.fixture
def stored(engine: Engine) -> list[tuple[datetime, str, dict[str, Any]]]:
    data = rows()
    write_snapshots(engine, data)
    return data


# --------------------------------------------------------------------------------------
# Login throttling


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_throttle_delays_grow_then_lock_out() -> None:
    clock = Clock()
    throttle = LoginThrottle(
        max_failures=5, lockout_seconds=60, delay_step=0.25, max_delay=1.0, clock=clock
    )
    delays = [throttle.failure(["user:alice"]) for _ in range(4)]
    assert delays == [0.25, 0.5, 1.0, 1.0]
    assert throttle.locked_for(["user:alice"]) == 0
    throttle.failure(["user:alice"])
    assert throttle.locked_for(["User:Alice "]) == pytest.approx(60)  # case and spaces
    clock.now += 59
    assert throttle.locked_for(["user:alice"]) == pytest.approx(1)
    clock.now += 2
    assert throttle.locked_for(["user:alice"]) == 0
    assert throttle.locked_for(["user:bob"]) == 0


def test_throttle_success_and_time_forget_failures() -> None:
    clock = Clock()
    throttle = LoginThrottle(max_failures=3, forget_after=100, clock=clock)
    throttle.failure(["user:a"])
    throttle.failure(["user:a"])
    throttle.success(["user:a"])
    throttle.failure(["user:a"])
    throttle.failure(["user:a"])
    assert throttle.locked_for(["user:a"]) == 0  # the success reset the count
    clock.now += 101
    throttle.failure(["user:a"])  # the older two were forgotten
    assert throttle.locked_for(["user:a"]) == 0


def test_a_locked_client_is_refused_for_any_name() -> None:
    throttle = LoginThrottle(max_failures=2, clock=Clock())
    throttle.failure(["user:a", "client:10.0.0.9"])
    throttle.failure(["user:b", "client:10.0.0.9"])
    assert throttle.locked_for(["user:c", "client:10.0.0.9"]) > 0
    assert throttle.locked_for(["user:c", "client:10.0.0.8"]) == 0


def test_attempt_login_against_the_users_table(engine: Engine) -> None:
    with session_scope(engine) as session:
        add_user(session=session, username="alice", password="right one")
    throttle = LoginThrottle(max_failures=2, delay_step=0.5, clock=Clock())
    slept: list[float] = []
    wrong = attempt_login(
        engine=engine, throttle=throttle, username="alice", password="nope", sleep=slept.append
    )
    unknown = attempt_login(
        engine=engine, throttle=throttle, username="zed", password="nope", sleep=slept.append
    )
    assert wrong.message == unknown.message == WRONG_CREDENTIALS
    assert not wrong.ok and slept == [0.5, 0.5]
    second = attempt_login(
        engine=engine, throttle=throttle, username="alice", password="x", sleep=slept.append
    )
    assert "Too many failed logins" in second.message
    locked = attempt_login(engine=engine, throttle=throttle, username="alice", password="right one")
    assert not locked.ok and "try again in" in locked.message
    with session_scope(engine) as session:
        user = get_user(session=session, username="alice")
        assert user is not None and user.last_login is None  # never even checked
    fresh = LoginThrottle()
    ok = attempt_login(engine=engine, throttle=fresh, username=" alice ", password="right one")
    assert ok.ok and ok.username == "alice"
    with session_scope(engine) as session:
        user = get_user(session=session, username="alice")
        assert user is not None and user.last_login is not None
    empty = attempt_login(engine=engine, throttle=fresh, username="alice", password="")
    assert empty.message == "Enter a username and a password."


# --------------------------------------------------------------------------------------
# Queries


@pytest.mark.parametrize(
    ("preset", "end"),
    [
        ("1h", datetime(2026, 3, 1, 12, 30, tzinfo=UTC)),  # the last whole minute
        ("24h", datetime(2026, 3, 1, 12, 30, tzinfo=UTC)),  # last 5 minutes (its buckets)
        ("7d", datetime(2026, 3, 1, 12, 30, tzinfo=UTC)),  # last 30 minutes
        ("30d", datetime(2026, 3, 1, 12, 0, tzinfo=UTC)),  # last 2 hours
    ],
)
def test_presets_end_on_their_bucket_boundary(preset: str, end: datetime) -> None:
    now = datetime(2026, 3, 1, 12, 30, 15, tzinfo=UTC)
    start, got = resolve_range(preset, now=now)
    assert got == end and got - start == PRESETS[preset]
    assert got <= now  # never in the future
    later = now + timedelta(seconds=40)  # the same range (the same cache key) a bit later
    assert resolve_range(preset, now=later) == (start, got)
    assert got.timestamp() % preset_step(PRESETS[preset]).total_seconds() == 0


def test_custom_range_includes_both_days_and_bad_choices_fail() -> None:
    start, end = resolve_range("custom", custom=(date(2026, 1, 7), date(2026, 1, 5)))
    assert (start, end) == (datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 8, tzinfo=UTC))
    # A range reaching past now ends at the current minute.
    now = datetime(2026, 1, 6, 9, 15, 30, tzinfo=UTC)
    assert resolve_range("custom", now=now, custom=(date(2026, 1, 5), date(2026, 1, 6))) == (
        datetime(2026, 1, 5, tzinfo=UTC),
        datetime(2026, 1, 6, 9, 15, tzinfo=UTC),
    )
    with pytest.raises(InvalidArgument, match="1h, 24h, 7d, 30d, custom"):
        resolve_range("2h")
    with pytest.raises(InvalidArgument):
        resolve_range("custom")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("auto", AUTO), ("", AUTO), (" AUTO ", AUTO), ("60min", "1h"), ("10s", "10s"), ("1D", "1D")],
)
def test_interval_is_normalized(text: str, expected: str) -> None:
    assert normalize_interval(text) == expected


@pytest.mark.parametrize("text", ["7min", "0s", "1x", "-5min", "abc"])
def test_bad_interval_lists_the_accepted_forms(text: str) -> None:
    with pytest.raises(InvalidInterval, match="auto") as caught:
        normalize_interval(text)
    assert "10s, 5min, 1h, 1D" in str(caught.value)


def test_view_query_checks_its_range_and_knows_its_hosts() -> None:
    with pytest.raises(InvalidArgument, match="timezone-aware"):
        ViewQuery(datetime(2026, 1, 1), T0, ("cpu.usage_percent",))
    with pytest.raises(InvalidArgument, match="before it starts"):
        ViewQuery(T0, T0, ("cpu.usage_percent",))
    one = ViewQuery(T0, T0 + timedelta(hours=1), ("m",), ("web-1",))
    two = ViewQuery(T0, T0 + timedelta(hours=1), ("m",), ("web-1", "db-1"))
    assert (one.host, one.by_host) == ("web-1", False)
    assert (two.host, two.by_host) == (None, True)
    every = ViewQuery(T0, T0 + timedelta(hours=1), ("m",), pooled=False)
    pooled = ViewQuery(T0, T0 + timedelta(hours=1), ("m",), ("web-1", "db-1"), pooled=True)
    assert every.by_host and not pooled.by_host
    assert not ViewQuery(T0, T0 + timedelta(hours=1), ("m",), ("web-1",), pooled=False).by_host


def test_metric_menu_labels_areas_and_defaults() -> None:
    infos = [
        MetricInfo("network.bytes_recv_per_s", "rate", "bytes/s", ""),
        MetricInfo("cpu.usage_percent", "gauge", "percent", ""),
        MetricInfo("zeta.thing", "gauge", "", ""),
        MetricInfo("collector.spool_dropped_count", "counter", "count", ""),
    ]
    assert metric_label(infos[1]) == "cpu › usage_percent (%)"
    assert metric_label(infos[3]) == "collector › spool_dropped_count (count, counter)"
    assert metric_label(infos[2]) == "zeta › thing"
    assert areas(infos) == ["cpu", "network", "collector", "zeta"]
    assert default_metrics(infos) == ["cpu.usage_percent", "network.bytes_recv_per_s"]
    assert default_metrics(infos[2:]) == ["zeta.thing", "collector.spool_dropped_count"]


# --------------------------------------------------------------------------------------
# Coverage: gaps and rolled-up parts


def _epoch(moments: list[datetime]) -> list[float]:
    return [m.timestamp() for m in moments]


def stamps(start: datetime, step: timedelta, count: int, skip: range = range(0)) -> list[datetime]:
    return [start + i * step for i in range(count) if i not in skip]


FIVE = timedelta(minutes=5)


@pytest.mark.parametrize(
    ("case", "given", "width", "samples", "expected"),
    [
        ("regular", stamps(T0, FIVE, 12), 300, 5, []),
        (
            "three missing buckets",
            stamps(T0, FIVE, 12, skip=range(4, 7)),
            300,
            5,
            [Gap(T0 + timedelta(minutes=20), T0 + timedelta(minutes=35))],
        ),
        ("one sample short is jitter", stamps(T0, FIVE, 12), 300, 4, []),
        (
            "stored buckets half full are partial gaps",
            stamps(T0, timedelta(hours=1), 1),
            3600,
            30,
            [Gap(T0, T0 + timedelta(hours=1))],
        ),
    ],
)
def test_find_gaps(
    case: str, given: list[datetime], width: int, samples: int, expected: list[Gap]
) -> None:
    end = T0 + timedelta(hours=1)
    n = len(given)
    found = find_gaps(_epoch(given), [width] * n, [samples] * n, T0, end, 60)
    assert found == expected, case
    # the samples missing: 60 an hour less those received, in the gaps only
    assert sum(g.missing for g in found) == pytest.approx(
        sum(g.seconds for g in found) / 60 - (samples * n if width == 3600 else 0)
    )


def test_rolled_up_parts_after_the_archive_ran(engine: Engine, stored: list[Any]) -> None:
    now = T0 + timedelta(days=1, hours=3)  # everything older than T0+3h gets rolled up
    with session_scope(engine) as session:
        update_policy(
            session=session,
            retention_days=30,
            downsample_after_days=1,
            downsample_interval="1h",
            archive_enabled=False,
        )
    assert rolled_up_parts(engine, T0, T0 + timedelta(days=1)) == []
    run_archive(engine, now=now)
    parts = rolled_up_parts(engine, T0, T0 + timedelta(days=1))
    # 3 hours x 2 hosts, less the hour db-1 missed
    assert parts == [RolledUpPart("1h", T0, T0 + timedelta(hours=3), 5)]
    assert rolled_up_parts(engine, T0, T0 + timedelta(days=1), hosts=["web-1"])[0].rows == 3


# --------------------------------------------------------------------------------------
# Views


def query(**kwargs: Any) -> ViewQuery:
    base: dict[str, Any] = {
        "start": T0,
        "end": T0 + timedelta(hours=HOURS),
        "metrics": ("cpu.usage_percent", "memory.used_bytes"),
        "interval": "1h",
    }
    base.update(kwargs)
    return ViewQuery(**base)


def test_view_summary_matches_the_raw_rows(engine: Engine, stored: list[Any]) -> None:
    view = build_view(engine, query())
    for metric in ("cpu.usage_percent", "memory.used_bytes"):
        raw = values(stored, metric)
        row = view.summary.loc[metric]
        assert row["mean"] == pytest.approx(raw.mean(), rel=1e-12)
        assert (row["min"], row["max"], row["samples"]) == (raw.min(), raw.max(), len(raw))
        assert row["p95"] == np.quantile(raw, 0.95, method="inverted_cdf")
    assert view.interval == "1h" and not view.rolled_up
    assert view.gaps == [Gap(GAP[0], GAP[1], "db-1")]  # pooling does not hide a host's gap
    assert len(view.frame) == HOURS


def test_view_keeps_hosts_apart_and_finds_their_gaps(engine: Engine, stored: list[Any]) -> None:
    view = build_view(engine, query(hosts=("db-1", "web-1"), interval="10min"))
    assert view.frame.index.names == ["host", "timestamp"]
    assert view.gaps == [Gap(GAP[0], GAP[1], "db-1")]
    raw = values(stored, "cpu.usage_percent", "db-1")
    assert view.summary.loc[("db-1", "cpu.usage_percent"), "mean"] == pytest.approx(raw.mean())
    assert view.summary.loc[("db-1", "cpu.usage_percent"), "p95"] == np.quantile(
        raw, 0.95, method="inverted_cdf"
    )
    one = build_view(engine, query(hosts=("web-1",)))
    assert one.summary.loc["cpu.usage_percent", "samples"] == HOURS * 6


def test_pooled_view_equals_pooling_in_the_database(engine: Engine, stored: list[Any]) -> None:
    view = build_view(engine, query(interval="30min"))
    direct = load_frame(
        engine,
        T0,
        T0 + timedelta(hours=HOURS),
        metrics=list(view.query.metrics),
        interval="30min",
        stats=("mean", "min", "max", "count"),
    )
    pd.testing.assert_frame_equal(
        view.frame, direct, check_exact=False, rtol=1e-12, check_freq=False, check_names=False
    )
    apart = build_view(engine, query(hosts=("db-1", "web-1"), interval="30min"))
    pd.testing.assert_frame_equal(
        pool_hosts(apart.frame), direct, check_exact=False, rtol=1e-12, check_names=False
    )


@pytest.mark.parametrize("hosts", [(), ("db-1", "web-1")])
def test_view_reads_the_tiers_unless_told_not_to(
    engine: Engine, stored: list[Any], hosts: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    refresh(engine)  # the tier rows of what was written
    fast = build_view(engine, query(hosts=hosts, interval="30min"))
    slow = build_view(engine, query(hosts=hosts, interval="30min"), tiers=False)
    assert fast.frame.attrs["tiers"] == [1800] and fast.frame.attrs["raw_rows"] == 0
    assert slow.frame.attrs["tiers"] == [] and slow.frame.attrs["raw_rows"] == len(stored)
    pd.testing.assert_frame_equal(fast.frame, slow.frame, check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(fast.summary, slow.summary, check_exact=False, rtol=1e-12)
    assert fast.gaps == slow.gaps == [Gap(GAP[0], GAP[1], "db-1")]
    # The explorer's switch (the baseline of benchmarks/bench_explorer.py)
    monkeypatch.delenv(TIERS_ENV, raising=False)
    assert tiers_on()
    monkeypatch.setenv(TIERS_ENV, " OFF ")
    assert not tiers_on()
    monkeypatch.setenv(TIERS_ENV, "on")
    assert tiers_on()


@pytest.mark.parametrize("hosts", [(), ("db-1", "web-1")])
def test_percentiles_added_after_the_charts_equal_the_whole_view(
    engine: Engine, stored: list[Any], hosts: tuple[str, ...]
) -> None:
    whole = build_view(engine, query(hosts=hosts, interval="10min"))
    first = build_view(engine, query(hosts=hosts, interval="10min"), percentiles=False)
    assert first.p95 is None and first.p95_total is None and not first.p95_reason
    assert first.summary["p95"].isna().all()
    pd.testing.assert_frame_equal(
        first.summary.drop(columns="p95"), whole.summary.drop(columns="p95")
    )
    later = with_percentiles(engine, first)
    assert first.summary["p95"].isna().all()  # the view given (maybe cached) is left alone
    assert whole.p95 is not None and later.p95 is not None
    pd.testing.assert_frame_equal(later.p95, whole.p95)
    pd.testing.assert_frame_equal(later.summary, whole.summary)
    assert later.summary["p95"].notna().all()
    limited = with_percentiles(engine, first, p95_limit=10)
    assert limited.p95 is None and "the limit is 10" in limited.p95_reason


def test_p95_needs_raw_rows_within_the_limit(engine: Engine, stored: list[Any]) -> None:
    limited = build_view(engine, query(), p95_limit=10)
    assert limited.p95 is None and "the limit is 10" in limited.p95_reason
    assert math.isnan(limited.summary.loc["cpu.usage_percent", "p95"])
    raw_mean = build_view(engine, query()).summary.loc["cpu.usage_percent", "mean"]
    with session_scope(engine) as session:
        update_policy(
            session=session,
            retention_days=30,
            downsample_after_days=1,
            downsample_interval="1h",
            archive_enabled=False,
        )
    run_archive(engine, now=T0 + timedelta(days=1, hours=3))
    rolled = build_view(engine, query(interval="10min"))
    assert rolled.p95 is None and "rolled up to 1h" in rolled.p95_reason
    assert rolled.rolled_up and rolled.stored_intervals == ["1h"]
    assert rolled.notes  # the frame says that part is coarser than 10min
    # One point per hour in the rolled-up part is not a gap; db-1's missing hour still is.
    assert rolled.gaps == [Gap(GAP[0], GAP[1], "db-1")]
    # The explorer's numbers do not change when the data is rolled up (docs/design.md §3)
    assert rolled.summary.loc["cpu.usage_percent", "mean"] == pytest.approx(raw_mean, rel=1e-12)


def test_empty_range_and_counters(engine: Engine) -> None:
    empty = build_view(engine, query())
    assert empty.empty and empty.samples == 0
    counter = "collector.spool_dropped_count"
    series = [0, 0, 5, 5, 2, 4]  # 5 dropped, a restart reset it, then 2 + 2 more
    write_snapshots(
        engine,
        [
            (
                T0 + timedelta(minutes=10 * i),
                "aggregated",
                {"host": "h", "collector": {"spool_dropped_count": v}},
            )
            for i, v in enumerate(series)
        ],
    )
    view = build_view(engine, query(metrics=(counter, "cpu.usage_percent")))
    assert view.summary.loc[counter, "mean"] == 9  # the total increase


def test_bucket_quantile_uses_the_rollup_rule_buckets() -> None:
    index = pd.DatetimeIndex(
        [
            T0 + timedelta(minutes=59, seconds=59),
            T0 + timedelta(hours=1),
            T0 + timedelta(hours=1, minutes=1),
        ],
        name="timestamp",
    )
    frame = pd.DataFrame({"m": [1.0, 10.0, 20.0]}, index=index)
    buckets, total = bucket_quantile(frame, Interval.parse("1h"), 0.5)
    assert list(buckets.index) == [T0, T0 + timedelta(hours=1)]
    # the one percentile definition (inverted CDF): the smallest value with half at or below
    assert list(buckets["m"]) == [1.0, 10.0]
    assert total["m"] == 10.0


def test_bucket_quantile_equals_the_definition_per_host_and_bucket() -> None:
    rng = np.random.default_rng(5)
    stamps = [T0 + timedelta(seconds=int(s)) for s in np.sort(rng.integers(0, 6 * 3600, 900))]
    hosts = rng.choice(["db-1", "web-1", "web-2"], size=900)
    index = pd.MultiIndex.from_arrays(
        [hosts, pd.DatetimeIndex(stamps, name="timestamp")], names=["host", "timestamp"]
    )
    frame = pd.DataFrame({"a": rng.normal(size=900), "b": rng.random(900)}, index=index)
    frame.loc[frame["b"] > 0.8, "a"] = np.nan
    buckets, total = bucket_quantile(frame, Interval.parse("1h"), 0.95)

    def reference(column: pd.Series) -> float:
        data = column.to_numpy(dtype=np.float64)
        return weighted_quantile(data, np.ones(len(data)), 0.95)

    keys = [index.get_level_values("host"), bucket_starts(index.get_level_values(1), "1h")]
    expected = frame.groupby(keys).agg(reference)
    assert np.array_equal(buckets.to_numpy(), expected.to_numpy(), equal_nan=True)
    assert list(buckets.index) == list(expected.index)
    assert total.to_dict() == frame.groupby(level="host").agg(reference).stack().to_dict()
    pooled, whole = bucket_quantile(
        frame.droplevel("host").sort_index(), Interval.parse("1h"), 0.95
    )
    assert whole.to_dict() == frame.agg(reference).to_dict()
    assert pooled.shape == (6, 2)


# --------------------------------------------------------------------------------------
# Charts


def test_chart_groups_per_metric_and_per_area() -> None:
    metrics = ["cpu.usage_percent", "cpu.load1", "cpu.user_percent", "memory.used_bytes"]
    per_metric = chart_groups(metrics)
    assert [g.metrics for g in per_metric] == [(m,) for m in metrics]
    assert [g.title for g in per_metric][:2] == ["CPU busy", "Load (1 min)"]  # the reports'
    assert per_metric[0].details == "cpu.usage_percent: CPU busy time, all cores"
    assert per_metric[2].title == "Time in user mode, all cores"  # else the catalog's
    per_area = chart_groups(metrics, "area")
    assert [(g.title, g.metrics) for g in per_area] == [
        ("cpu (percent)", ("cpu.usage_percent", "cpu.user_percent")),
        ("cpu (load)", ("cpu.load1",)),
        ("memory (bytes)", ("memory.used_bytes",)),
    ]


def test_chart_data_scales_breaks_at_gaps_and_draws_bands(
    engine: Engine, stored: list[Any]
) -> None:
    view = build_view(engine, query(hosts=("db-1", "web-1"), interval="10min"))
    group = ChartGroup("memory", "bytes", ("memory.used_bytes",))
    data, scale = chart_data(view, group)
    assert scale == Scale(1024.0**3, "GiB")
    assert set(data["series"]) == {"db-1", "web-1"}
    gap_start = int(GAP[0].timestamp() * 1000)
    breaks = data[data["value"].isna()]
    assert list(zip(breaks["timestamp"], breaks["series"], strict=True)) == [(gap_start, "db-1")]
    web = data[data["series"] == "web-1"].dropna(subset=["value"])
    expected = values(stored, "memory.used_bytes", "web-1") / 1024**3
    np.testing.assert_allclose(web["value"], expected)
    assert data["low"].isna().all()
    banded, _ = chart_data(view, group, BAND)
    assert (banded["low"].dropna() <= banded["high"].dropna()).all()
    pooled = build_view(engine, query(metrics=("cpu.usage_percent", "cpu.user_percent")))
    data, _ = chart_data(pooled, ChartGroup("cpu", "percent", pooled.query.metrics), P95)
    assert set(data["series"]) == {"usage_percent", "user_percent"}  # the title names the area
    p95 = pooled.p95
    assert p95 is not None
    np.testing.assert_allclose(
        data[data["series"] == "usage_percent"]["value"], p95["cpu.usage_percent"]
    )


def test_pooled_lines_break_only_where_no_host_has_data(engine: Engine) -> None:
    data = [r for r in rows() if r[2]["host"] == "db-1"]  # one host: its gap is everyone's
    write_snapshots(engine, data)
    view = build_view(engine, query(interval="10min"))
    assert view.gaps == [Gap(GAP[0], GAP[1], "db-1")]
    table, _ = chart_data(view, ChartGroup("cpu", "percent", ("cpu.usage_percent",)))
    assert list(table.loc[table["value"].isna(), "timestamp"]) == [int(GAP[0].timestamp() * 1000)]
    write_snapshots(engine, [r for r in rows() if r[2]["host"] == "web-1"])
    st_view = build_view(engine, query(interval="10min"))
    table, _ = chart_data(st_view, ChartGroup("cpu", "percent", ("cpu.usage_percent",)))
    assert st_view.gaps and not table["value"].isna().any()  # web-1 covers db-1's gap


def test_chart_spec_layers() -> None:
    spec = chart_spec(
        y_title="GiB",
        start=T0,
        end=T0 + timedelta(hours=6),
        gaps=[Gap(T0, T0 + timedelta(hours=1))],
        rolled_up=[RolledUpPart("1h", T0 - timedelta(days=1), T0 + timedelta(hours=2), 9)],
        band=True,
        legend=False,
    )
    marks = [layer["mark"]["type"] for layer in spec["layer"]]
    assert marks == ["rect", "rect", "area", "line"]
    line = spec["layer"][-1]["encoding"]
    assert line["x"]["scale"]["domain"] == [T0.isoformat(), (T0 + timedelta(hours=6)).isoformat()]
    assert line["color"]["legend"] is None
    assert spec["layer"][0]["data"]["values"][0]["start"] == T0.isoformat()  # clipped to range


# --------------------------------------------------------------------------------------
# Downloads, raw rows, units, markup


def test_csv_and_parquet_downloads_round_trip(engine: Engine, stored: list[Any]) -> None:
    view = build_view(engine, query(hosts=("db-1", "web-1")))
    csv = pd.read_csv(io.BytesIO(to_csv_bytes(view.frame)))
    assert list(csv.columns[:2]) == ["host", "timestamp"]
    assert "mean(cpu.usage_percent)" in csv.columns and "count(memory.used_bytes)" in csv.columns
    assert csv["timestamp"].iloc[0].endswith("+00:00")
    np.testing.assert_allclose(
        csv["mean(cpu.usage_percent)"], view.frame[("cpu.usage_percent", "mean")]
    )
    data = to_parquet_bytes(view.frame)
    table = pq.read_table(io.BytesIO(data)).to_pandas()
    np.testing.assert_allclose(
        table["max(memory.used_bytes)"], view.frame[("memory.used_bytes", "max")]
    )
    assert str(table["timestamp"].dt.tz) == "UTC"
    assert parquet_attrs(data)["interval"] == "1h"


def test_latest_snapshots(engine: Engine, stored: list[Any]) -> None:
    latest = latest_snapshots(engine, limit=3)
    assert [r.timestamp for r in latest] == sorted((r.timestamp for r in latest), reverse=True)
    assert latest[0].timestamp == max(ts for ts, _, _ in stored)
    assert len(latest) == 3 and latest[0].rollup_interval is None
    only = latest_snapshots(engine, hosts=["db-1"], before=GAP[1], limit=2)
    assert {r.host for r in only} == {"db-1"}
    assert only[0].timestamp < GAP[0]  # db-1 had nothing in the gap
    assert (
        only[0].document["cpu"]["usage_percent"]
        == values([r for r in stored if r[0] == only[0].timestamp], "cpu.usage_percent", "db-1")[0]
    )


@pytest.mark.parametrize(
    ("unit", "peak", "expected"),
    [
        ("bytes", 3 * 1024**3, Scale(1024.0**3, "GiB")),
        ("bytes", 900, Scale(1.0, "B")),
        ("bytes/s", 12e6, Scale(1e6, "MB/s")),
        ("1/s", 2500, Scale(1e3, "k events/s")),
        ("seconds", 7200, Scale(3600.0, "h")),
        ("percent", 50, Scale(1.0, "%")),
        ("celsius", 50, Scale(1.0, "°C")),
    ],
)
def test_axis_scale(unit: str, peak: float, expected: Scale) -> None:
    assert axis_scale(unit, [float("nan"), peak, -1]) == expected


def test_values_read_like_the_reports() -> None:
    assert format_value(1610612736, "bytes") == "1.50 GiB"
    assert format_value(12_345_678, "bytes/s") == "12.3 MB/s"
    assert format_value(float("nan"), "percent") in ("–", "—")


def test_markdown_from_the_data_is_inert() -> None:
    hostile = "**web** [x](http://e.vil) <script>alert(1)</script> :red[y] `z`"
    escaped = escape_markdown(hostile)
    for char in "*[]()<>:`":
        assert f"\\{char}" in escaped
    assert escaped.replace("\\", "") == hostile


# --------------------------------------------------------------------------------------
# Admin, connection, launch, report, sandbox


def test_admin_policy_validates_before_writing(engine: Engine) -> None:
    assert admin.read_policy(engine).retention_days == 30
    with pytest.raises(InvalidPolicy, match="must be less than"):
        admin.save_policy(
            engine,
            retention_days=5,
            downsample_after_days=5,
            downsample_interval="1h",
            archive_enabled=True,
        )
    with pytest.raises(InvalidPolicy, match="downsample_interval"):
        admin.save_policy(
            engine,
            retention_days=5,
            downsample_after_days=1,
            downsample_interval="7min",
            archive_enabled=True,
        )
    assert admin.read_policy(engine).retention_days == 30
    saved = admin.save_policy(
        engine,
        retention_days=9,
        downsample_after_days=2,
        downsample_interval=" 15min ",
        archive_enabled=False,
    )
    assert (saved.retention_days, saved.downsample_interval, saved.archive_enabled) == (
        9,
        "15min",
        False,
    )
    assert admin.read_policy(engine) == saved


def test_admin_config_users_and_plan(engine: Engine, stored: list[Any]) -> None:
    table = admin.config_table(engine)
    assert list(table["key"][: len(CONFIG_KEYS)]) == [k.key for k in CONFIG_KEYS]
    with pytest.raises(ConfigError, match="not JSON"):
        admin.save_config(engine, "collector.interval", "30s")
    with pytest.raises(ConfigError, match=r"collector\.interval"):
        admin.save_config(engine, "collector.interval", '"7min"')
    with pytest.raises(UnknownConfigKey):
        admin.save_config(engine, "no.such.key", "1")
    assert admin.save_config(engine, "collector.interval", '"30s"') == "30s"
    with session_scope(engine) as session:
        assert get_config(session=session, key="collector.interval") == "30s"
    table = admin.config_table(engine).set_index("key")
    assert table.loc["collector.interval", "value"] == '"30s"'
    assert table.loc["collector.interval", "source"] == "stored"
    with session_scope(engine) as session:
        add_user(session=session, username="zoe", password="zoe-password")
    users = admin.users_table(engine)
    assert list(users.columns) == ["username", "admin", "created_at", "last_login"]
    assert users["admin"].tolist() == [True]  # zoe, the first user
    now = T0 + timedelta(days=5)
    summary, plan = admin.plan_table(engine, now=now)
    _, actions = dry_run(engine, now=now)
    assert list(plan["rows"]) == [a.rows for a in actions] and plan["rows"].sum() == len(stored)
    assert summary["interval"] == "1h"


def test_open_database_refuses_a_missing_sqlite_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "metrics.db"
    with pytest.raises(DatabaseError, match="does not exist"):
        open_database(f"sqlite:///{missing}")
    assert not missing.parent.exists()  # nothing was created
    with pytest.raises(DatabaseError) as caught:
        open_database("postgresql://viewer:s3cret@127.0.0.1:1/metrics")
    assert "s3cret" not in str(caught.value) and "127.0.0.1:1" in str(caught.value)
    assert database_label("postgresql://viewer:s3cret@db/m") == "postgresql://viewer:***@db/m"


def test_launch_finds_the_app_and_passes_the_url_by_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = launch.app_path()
    assert app == Path(launch.__file__).resolve().with_name("app.py") and app.is_file()
    monkeypatch.chdir(tmp_path)
    assert (
        launch.absolute_url("sqlite:///demo/metrics.db") == f"sqlite:///{tmp_path}/demo/metrics.db"
    )
    pg = "postgresql://u:p%40ss@db:5432/metrics"
    assert launch.absolute_url(pg) == pg
    base = {"PATH": "/bin"}
    env = launch.app_environment(pg, base)
    assert env == {"PATH": "/bin", "METRICS_TOOLKIT_DATABASE_URL": pg} and base == {"PATH": "/bin"}
    command = launch.streamlit_command(
        app, port=8600, address="127.0.0.1", headless=True, extra=["--x", "y"]
    )
    assert command[1:5] == ["-m", "streamlit", "run", str(app)]
    assert (
        command[-2:] == ["--x", "y"]
        and "--server.port" in command
        and "p%40ss" not in " ".join(command)
    )
    launch.require_streamlit()


def test_report_names_are_safe_file_names() -> None:
    name = report_name(T0, T0 + timedelta(days=1), "../etc/<web 1>")
    assert name == "report-.._etc__web_1_-20260105T0000-20260106T0000"
    assert report_name(T0, T0, None).startswith("report-all-")
    assert isinstance(reporting_available(), bool)


def test_sandbox_copy_holds_the_range_only(
    engine: Engine, stored: list[Any], tmp_path: Path
) -> None:
    copy = sandbox_copy(engine, tmp_path, start=T0, end=T0 + timedelta(hours=1))
    with copy.connect() as connection:
        count = connection.exec_driver_sql("SELECT count(*) FROM metrics_snapshots").scalar()
    copy.dispose()
    assert count == len([r for r in stored if r[0] < T0 + timedelta(hours=1)])
    with pytest.raises(InvalidArgument, match="already exists"):
        sandbox_copy(engine, tmp_path)


def test_open_database_gives_a_usable_engine(db_url: str) -> None:
    engine = open_database(db_url)
    try:
        assert build_view(engine, query()).empty
    finally:
        engine.dispose()


def test_report_files_for_the_selection(engine: Engine, stored: list[Any]) -> None:
    if not reporting_available():
        pytest.skip("metrics_toolkit.reporting is not installed in this checkout")
    files = build_report_files(engine, start=T0, end=T0 + timedelta(hours=HOURS), host="web-1")
    assert files.name == "report-web-1-20260105T0000-20260105T0600"
    assert "<html" in files.html and "web-1" in files.html
    assert files.pdf is not None and files.pdf.startswith(b"%PDF")
