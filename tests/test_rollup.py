"""The rollup rule on fixed data: buckets, statistics, counters, labels, frames, documents."""

from __future__ import annotations

import copy
import doctest
import json
from datetime import UTC, datetime, timedelta, timezone
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest

from metrics_toolkit import documents, intervals
from metrics_toolkit.documents import flatten
from metrics_toolkit.errors import InvalidInterval, InvalidSnapshot, MetricsToolkitError
from metrics_toolkit.intervals import Interval, bucket_start
from metrics_toolkit.rollup import arrays as rollup_arrays
from metrics_toolkit.rollup import rule as rollup
from metrics_toolkit.rollup.frame import bucket_starts, resample_stats, stats_frame
from metrics_toolkit.rollup.output import coverage, finalize, to_snapshot_docs
from metrics_toolkit.rollup.rule import Row, epoch_seconds, rollup_rows, row_stats

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # a Monday, on every boundary up to 1D


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def row(seconds: float, host: str = "web-1", metric_type: str = "aggregated", **leaves: Any) -> Row:
    """A raw row; ``cpu__usage_percent=5`` nests as ``{"cpu": {"usage_percent": 5}}``."""
    doc: dict[str, Any] = {"host": host}
    for name, value in leaves.items():
        node = doc
        *parents, leaf = name.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return (at(seconds), metric_type, doc)


def stat(doc: dict[str, Any], name: str) -> dict[str, float]:
    return flatten(doc["_rollup"].get(name, {}))


# ------------------------------------------------------------------ buckets


@pytest.mark.parametrize(
    ("ts", "interval", "expected"),
    [
        # a sample exactly on a boundary opens the later bucket
        (datetime(2026, 1, 5, 12, 5, tzinfo=UTC), "5min", datetime(2026, 1, 5, 12, 5, tzinfo=UTC)),
        (
            datetime(2026, 1, 5, 12, 4, 59, 999999, tzinfo=UTC),
            "5min",
            datetime(2026, 1, 5, 12, 0, tzinfo=UTC),
        ),
        (
            datetime(2026, 1, 5, 12, 7, 30, tzinfo=UTC),
            "5min",
            datetime(2026, 1, 5, 12, 5, tzinfo=UTC),
        ),
        (datetime(2026, 1, 5, 23, 59, 59, tzinfo=UTC), "1D", datetime(2026, 1, 5, tzinfo=UTC)),
        (datetime(2026, 1, 6, 0, 0, tzinfo=UTC), "1D", datetime(2026, 1, 6, tzinfo=UTC)),
        (datetime(2026, 1, 5, 13, 0, tzinfo=UTC), "12h", datetime(2026, 1, 5, 12, 0, tzinfo=UTC)),
        # 7D buckets are epoch aligned: 1970-01-01 was a Thursday, so weeks start on Thursdays
        (datetime(2026, 1, 5, 12, 0, tzinfo=UTC), "7D", datetime(2026, 1, 1, tzinfo=UTC)),
        (datetime(2026, 1, 8, 0, 0, tzinfo=UTC), "7D", datetime(2026, 1, 8, tzinfo=UTC)),
        (datetime(2026, 1, 7, 23, 59, tzinfo=UTC), "7D", datetime(2026, 1, 1, tzinfo=UTC)),
        (
            datetime(2026, 1, 5, 12, 0, 9, tzinfo=UTC),
            "10s",
            datetime(2026, 1, 5, 12, 0, tzinfo=UTC),
        ),
        # before 1970 the floor still goes down, not towards zero
        (
            datetime(1969, 12, 31, 23, 59, 1, tzinfo=UTC),
            "1min",
            datetime(1969, 12, 31, 23, 59, tzinfo=UTC),
        ),
        (datetime(1969, 12, 31, 12, 0, tzinfo=UTC), "1D", datetime(1969, 12, 31, tzinfo=UTC)),
        # other time zones are converted to UTC; naive datetimes count as UTC
        (
            datetime(2026, 1, 5, 1, 30, tzinfo=timezone(timedelta(hours=2))),
            "1D",
            datetime(2026, 1, 4, tzinfo=UTC),
        ),
        (datetime(2026, 1, 5, 12, 7), "5min", datetime(2026, 1, 5, 12, 5, tzinfo=UTC)),
    ],
)
def test_bucket_start(ts: datetime, interval: str, expected: datetime) -> None:
    start = bucket_start(ts, interval)
    assert start == expected
    assert start.tzinfo is UTC
    assert (
        start
        <= ts.replace(tzinfo=ts.tzinfo or UTC)
        < start + timedelta(seconds=pd.Timedelta(interval).total_seconds())
    )
    # the vectorised versions agree, in every resolution
    for unit in ("s", "ms", "us", "ns"):
        index = pd.DatetimeIndex([ts]).as_unit(unit)
        if index.tz is None:
            index = index.tz_localize("UTC")
        if unit == "s" and ts.microsecond:
            continue
        assert bucket_starts(index, interval)[0] == expected
        ticks = np.asarray(index.asi8)
        per_second = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[unit]
        floored = bucket_starts(ticks, interval, unit=unit)
        assert floored[0] == int(expected.timestamp()) * per_second


def test_bucket_starts_keeps_series_shape_and_resolution() -> None:
    stamps = pd.Series(pd.to_datetime(["2026-01-05T12:04:59Z", "2026-01-05T12:05:00Z"]), name="t")
    out = bucket_starts(stamps, "5min")
    assert list(out) == [pd.Timestamp("2026-01-05T12:00Z"), pd.Timestamp("2026-01-05T12:05Z")]
    assert out.name == "t"
    assert out.dt.unit == stamps.dt.unit


@pytest.mark.parametrize("interval", ["1x", "0s", "-5min", "7min", "", "1.5h"])
def test_bad_intervals_are_rejected(interval: str) -> None:
    with pytest.raises(InvalidInterval, match="10s, 5min, 1h, 1D"):
        bucket_start(T0, interval)
    with pytest.raises(InvalidInterval):
        rollup_rows([row(0, x=1)], interval)


@pytest.mark.parametrize("interval", ["10s", "1min", "5min", "1h", "1D", "7D"])
def test_buckets_match_pandas_resample_with_epoch_origin(interval: str) -> None:
    # Start on a Saturday so that 7D buckets (epoch-aligned: Thursdays) are really tested.
    index = pd.date_range("2026-01-03 05:00", periods=900, freq="997s", tz="UTC", name="timestamp")
    frame = pd.DataFrame({"x": np.arange(900.0)}, index=index)
    # Interval.pandas_rule is in seconds: pandas ignores origin="epoch" for a "1D"/"7D" rule
    # on a tz-aware index (it warns and aligns to the first day instead).
    rule = Interval.parse(interval).pandas_rule
    expected = frame.resample(rule, origin="epoch", closed="left", label="left").mean()
    expected = expected.dropna()
    mean = finalize(resample_stats(frame, interval))["x"]
    assert list(mean.index) == list(expected.index)
    np.testing.assert_allclose(mean.to_numpy(), expected["x"].to_numpy())


# ------------------------------------------------------------------ gauges, labels, hosts


def test_gauge_statistics_of_one_bucket() -> None:
    rows = [
        row(0, cpu__usage_percent=10, top=["a"]),
        row(10, cpu__usage_percent=30, top=["b"]),
        row(20, top=["c"]),  # the leaf is missing from this snapshot
        row(30, cpu__usage_percent=20, top=["d"]),
        row(60, cpu__usage_percent=99, top=["e"]),  # next bucket
    ]
    (ts, metric_type, doc), (ts2, _, doc2) = rollup_rows(rows, "1min")
    assert (ts, ts2, metric_type) == (T0, at(60), "aggregated")
    assert doc["cpu"]["usage_percent"] == 20.0  # (10 + 30 + 20) / 3, not an average of means
    assert doc["top"] == ["d"]  # labels from the latest row of the bucket
    assert doc["host"] == "web-1"
    assert doc["_rollup"]["interval"] == "1min"
    assert doc["_rollup"]["samples"] == 4
    expected = {
        "count": 3,
        "sum": 60.0,
        "min": 10.0,
        "max": 30.0,
        "first": 10.0,
        "last": 20.0,
        "first_time": epoch_seconds(T0),
        "last_time": epoch_seconds(at(30)),
    }
    assert {name: stat(doc, name)["cpu.usage_percent"] for name in expected} == expected
    assert "increase" not in doc["_rollup"]  # no counter leaf
    assert doc2["_rollup"]["samples"] == 1
    json.dumps(doc)  # plain JSON types only


def test_a_raw_row_is_a_bucket_of_one_sample() -> None:
    part = row_stats(at(5), "aggregated", {"host": "a", "x": 7, "name": "n"})
    leaf = part.leaves["x"]
    assert (leaf.count, leaf.sum, leaf.min, leaf.max, leaf.first, leaf.last) == (1, 7, 7, 7, 7, 7)
    assert leaf.first_time == leaf.last_time == epoch_seconds(at(5))
    assert (part.samples, part.interval_seconds, part.labels) == (1, 0, {"host": "a", "name": "n"})


def test_hosts_and_metric_types_are_never_merged() -> None:
    rows = [
        row(0, host="a", x=1),
        row(1, host="b", x=100),
        row(2, host="a", metric_type="other", x=1000),
        (at(3), "aggregated", {"x": 5}),  # no host label: its own series
    ]
    out = rollup_rows(rows, "1h")
    assert [(doc.get("host"), mt, doc["x"]) for _, mt, doc in out] == [
        (None, "aggregated", 5.0),
        ("a", "aggregated", 1.0),
        ("a", "other", 1000.0),
        ("b", "aggregated", 100.0),
    ]
    frame = resample_stats(stats_frame(rows), "1h")
    assert to_snapshot_docs(frame) == out


def test_inputs_are_not_modified() -> None:
    rows = [row(i * 10, x=i, y__z=[i], n__c_total=i) for i in range(20)]
    before = copy.deepcopy(rows)
    out = rollup_rows(rows, "1min")
    assert rows == before
    frame = stats_frame(rows)
    frame_before = frame.copy(deep=True)
    resample_stats(frame, "1min")
    finalize(frame, ("mean", "increase"))
    to_snapshot_docs(frame)
    pd.testing.assert_frame_equal(frame, frame_before)
    out[0][2]["y"]["z"].append("changed")  # outputs do not share label lists with inputs
    assert rows == before


# ------------------------------------------------------------------ counters


COUNTER_ROWS = [
    row(0, net__rx_total=100),
    row(10, net__rx_total=130),  # +30 in 10 s
    row(20, net__rx_total=190),  # +60: the peak rate, 6/s
    row(30, net__rx_total=20),  # reset: counts 20 from zero
    row(40, net__rx_total=50),  # +30
    # next minute
    row(60, net__rx_total=80),  # boundary step +30 from 50 (20 s): counted in this bucket
    row(70, net__rx_total=5),  # reset: +5
    row(80, net__rx_total=25),  # +20
]


def test_counter_internal_statistics() -> None:
    (_, _, first), (_, _, second) = rollup_rows(COUNTER_ROWS, "1min")
    path = "net.rx_total"
    assert stat(first, "increase")[path] == 30 + 60 + 20 + 30
    assert stat(first, "resets")[path] == 1
    assert stat(first, "max_rate")[path] == 6.0
    assert (stat(first, "first")[path], stat(first, "last")[path]) == (100.0, 50.0)
    assert first["net"]["rx_total"] == 50.0  # a counter leaf holds the bucket's last value
    assert "sum" not in first["_rollup"]
    # internal only: the boundary step 50 -> 80 is not in either stored bucket
    assert stat(second, "increase")[path] == 5 + 20
    assert stat(second, "resets")[path] == 1
    assert stat(second, "max_rate")[path] == 2.0
    # merged further, the boundary step becomes internal
    (_, _, merged) = rollup_rows(rollup_rows(COUNTER_ROWS, "1min"), "2min")[0]
    assert stat(merged, "increase")[path] == 140 + 30 + 25
    assert stat(merged, "resets")[path] == 2


def test_presented_increase_counts_the_boundary_in_the_later_bucket() -> None:
    buckets = resample_stats(stats_frame(COUNTER_ROWS, keys=()), "1min")
    shown = finalize(buckets, ("increase", "resets", "max_rate", "mean"))["net.rx_total"]
    assert shown["increase"].tolist() == [140.0, 30.0 + 25.0]
    assert shown["resets"].tolist() == [1.0, 1.0]
    assert shown["max_rate"].tolist() == [6.0, 2.0]
    assert shown["mean"].tolist() == [50.0, 25.0]  # a counter has no mean: its last value
    # at raw resolution, each sample shows its step from the previous one
    raw = finalize(stats_frame(COUNTER_ROWS, keys=()), ("increase",))
    assert raw["net.rx_total"].tolist() == [0, 30, 60, 20, 30, 30, 5, 20]
    assert raw["net.rx_total"].sum() == shown["increase"].sum()


def test_counter_with_one_sample_has_no_max_rate() -> None:
    (_, _, doc) = rollup_rows([row(0, c_total=5)], "1min")[0]
    assert "max_rate" not in doc["_rollup"]
    assert stat(doc, "increase") == {"c_total": 0.0}
    assert row_stats(T0, "aggregated", doc).leaves["c_total"].increase == 0.0


def test_late_sample_inside_a_rolled_up_bucket() -> None:
    """A replayed spool delivers the 10:20 sample after 10:00-10:59 was rolled up."""
    raw = [row(i * 600, g=float(i), c_total=100 * i) for i in range(6)]
    late = raw.pop(2)
    merged = rollup_rows([*rollup_rows(raw, "1h"), late], "1h")
    assert merged == rollup_rows([*raw, late], "1h")
    (_, _, doc) = merged[0]
    assert stat(doc, "count") == {"g": 6, "c_total": 6}
    assert stat(doc, "first")["g"] == 0.0 and stat(doc, "last")["g"] == 5.0
    assert stat(doc, "increase")["c_total"] == 500.0  # not doubled, not lost


# ------------------------------------------------------------------ rolled-up rows as inputs


def test_rolled_up_rows_merge_by_statistics_not_by_means() -> None:
    rows = [row(0, x=0.0), row(10, x=0.0), row(20, x=0.0), row(300, x=90.0)]
    five = rollup_rows(rows, "5min")
    assert [doc["x"] for _, _, doc in five] == [0.0, 90.0]
    (_, _, hour) = rollup_rows(five, "1h")[0]
    assert hour["x"] == 22.5  # (0 + 0 + 0 + 90) / 4, not (0 + 90) / 2
    assert hour["_rollup"]["samples"] == 4
    assert rollup_rows(five, "1h") == rollup_rows(rows, "1h")


def test_a_coarser_rolled_up_row_is_kept_whole() -> None:
    hourly = rollup_rows([row(0, x=1.0), row(1800, x=3.0)], "1h")
    out = rollup_rows([*hourly, row(3700, x=10.0)], "5min")
    assert [(ts, doc["_rollup"]["interval"], doc["x"]) for ts, _, doc in out] == [
        (T0, "1h", 2.0),
        (at(3600), "5min", 10.0),
    ]


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ("1h", "'_rollup' must be an object"),
        ({"interval": "7min", "samples": 1}, "'_rollup.interval'"),
        ({"interval": "1h", "samples": -1}, "'_rollup.samples'"),
        ({"interval": "1h", "samples": True}, "'_rollup.samples'"),
        ({"interval": "1h", "samples": 1, "count": [1]}, "'_rollup.count' must be an object"),
        ({"interval": "1h", "samples": 1, "count": {"x": 1.5}}, "whole number"),
        ({"interval": "1h", "samples": 1, "count": {"x": 1}}, "gauge leaf 'x' has no sum"),
        (
            {
                "interval": "1h",
                "samples": 1,
                "count": {"c_total": 1},
                "first": {"c_total": 1},
                "last": {"c_total": 1},
                "first_time": {"c_total": 0},
                "last_time": {"c_total": 0},
            },
            "counter leaf 'c_total' has no increase, resets",
        ),
    ],
)
def test_malformed_rolled_up_rows_are_rejected(meta: Any, message: str) -> None:
    with pytest.raises(InvalidSnapshot, match=message):
        rollup_rows([(T0, "aggregated", {"host": "a", "_rollup": meta})], "1h")


def test_a_leaf_and_a_subtree_with_one_path_cannot_share_a_bucket() -> None:
    """One document cannot hold both: the leaf stays, the leaves below it are left out."""
    rows = [row(0, a=1.0), (at(10), "aggregated", {"host": "web-1", "a": {"b": 2.0}})]
    (_, _, doc) = rollup_rows(rows, "1min")[0]
    assert doc["a"] == 1.0 and doc["_rollup"]["count"] == {"a": 1}
    assert doc["_rollup"]["samples"] == 2


def test_metrics_win_over_labels_at_the_same_path() -> None:
    rows = [row(0, a=1.0), row(10, a="n/a")]
    (_, _, doc) = rollup_rows(rows, "1min")[0]
    assert doc["a"] == 1.0


def test_bad_timestamps_and_documents() -> None:
    with pytest.raises(InvalidSnapshot, match="expected a datetime"):
        rollup_rows([("2026-01-05", "aggregated", {"x": 1})], "1h")  # type: ignore[list-item]
    with pytest.raises(InvalidSnapshot, match="must be a JSON object"):
        rollup_rows([(T0, "aggregated", [1, 2])], "1h")  # type: ignore[list-item]


# ------------------------------------------------------------------ frames and documents


def value_frame(rows: list[Row]) -> pd.DataFrame:
    index = pd.MultiIndex.from_arrays(
        [
            [doc.get("host", "") for _, _, doc in rows],
            [mt for _, mt, _ in rows],
            pd.DatetimeIndex([ts for ts, _, _ in rows]),
        ],
        names=["host", "metric_type", "timestamp"],
    )
    return pd.DataFrame([flatten(doc) for _, _, doc in rows], index=index, dtype=float)


def test_value_frame_fast_path_equals_rows_path() -> None:
    rows = [row(i * 7, host=f"h{i % 2}", x=i % 5, c_total=i * 3 % 40) for i in range(60)]
    rows.append(row(500, host="h0"))  # a snapshot without numeric leaves still counts
    from_values = resample_stats(value_frame(rows), "1min")
    from_rows = resample_stats(stats_frame(rows), "1min").drop(columns=[("_rollup", "labels")])
    pd.testing.assert_frame_equal(from_values, from_rows, check_like=True)


def test_stats_frame_layout() -> None:
    frame = stats_frame([row(10, x=1.0, c_total=3), row(0, x=2.0)])
    assert frame.index.names == ["host", "metric_type", "timestamp"]
    assert list(frame.index.get_level_values("timestamp")) == [T0, at(10)]  # sorted
    assert str(frame.index.get_level_values("timestamp").tz) == "UTC"
    assert set(frame["x"].columns) == {
        "count", "sum", "min", "max", "first", "last", "first_time", "last_time"
    }  # fmt: skip
    assert set(frame["c_total"].columns) == {
        "count", "first", "last", "first_time", "last_time", "increase", "resets", "max_rate"
    }  # fmt: skip
    assert frame["c_total", "count"].isna().tolist() == [True, False]
    single = stats_frame([row(0, x=1.0)], keys=())
    assert single.index.name == "timestamp"
    with pytest.raises(InvalidSnapshot, match="several"):
        stats_frame([row(0, host="a", x=1), row(0, host="b", x=1)], keys=())


def test_finalize_columns() -> None:
    rows = [row(0, x=1.0, c_total=1), row(10, x=3.0, c_total=4), row(60, c_total=9)]
    buckets = resample_stats(stats_frame(rows, keys=()), "1min")
    mean = finalize(buckets)
    assert list(mean.columns) == ["x", "c_total"]
    assert mean.index.name == "timestamp"
    assert mean["x"].tolist()[0] == 2.0 and np.isnan(mean["x"].tolist()[1])
    several = finalize(buckets, ("mean", "count", "max", "increase"))
    assert several.columns.names == ["metric", "stat"]
    assert several["x", "count"].tolist() == [2.0, 0.0]
    assert several["x", "max"].tolist()[0] == 3.0
    assert np.isnan(several["x", "increase"]).all()  # gauges have no increase
    assert np.isnan(several["c_total", "max"]).all()  # counters keep no min/max
    assert several["c_total", "increase"].tolist() == [3.0, 5.0]
    with pytest.raises(MetricsToolkitError, match="choose from mean, min, max"):
        finalize(buckets, ("p95",))


def test_to_snapshot_docs_round_trips_raw_rows() -> None:
    rows = [row(0, x=1.0, tags=["a"]), row(10, x=2.0, c_total=5.0)]
    assert to_snapshot_docs(stats_frame(rows)) == rows
    # a value frame has no labels: the host comes from the index
    docs = to_snapshot_docs(stats_frame(value_frame(rows)))
    assert [doc for _, _, doc in docs] == [
        {"host": "web-1", "x": 1.0},
        {"host": "web-1", "x": 2.0, "c_total": 5.0},
    ]
    merged = stats_frame([row(0, x=1.0)])
    merged["_rollup", "samples"] = 2.0  # two samples, but no interval
    with pytest.raises(InvalidSnapshot, match="resample it"):
        to_snapshot_docs(merged)


def test_stats_frame_checks() -> None:
    frame = stats_frame([row(0, x=1.0)])
    with pytest.raises(MetricsToolkitError, match="lacks sum"):
        resample_stats(frame.drop(columns=[("x", "sum")]), "1h")
    with pytest.raises(MetricsToolkitError, match="needs the row column"):
        resample_stats(frame.drop(columns=[("_rollup", "samples")]), "1h")
    with pytest.raises(MetricsToolkitError, match="named 'timestamp'"):
        resample_stats(pd.DataFrame({"x": [1.0]}, index=pd.DatetimeIndex([T0])), "1h")
    with pytest.raises(MetricsToolkitError, match="numbers only"):
        resample_stats(
            pd.DataFrame({"x": ["a"]}, index=pd.DatetimeIndex([T0], name="timestamp")), "1h"
        )


def test_coverage_shows_gaps_and_never_drops_sparse_buckets() -> None:
    rows = [row(i * 10) for i in range(6)]  # 12:00 full (6 of 6)
    rows += [row(600 + i * 10) for i in range(2)]  # 12:10 sparse (2 of 6); 12:01-12:09 missing
    buckets = resample_stats(stats_frame(rows, keys=()), "1min")
    assert len(buckets) == 2  # sparse bucket kept, no empty bucket invented
    cov = coverage(buckets, "10s")
    assert len(cov) == 11
    assert cov["samples"].tolist() == [6.0] + [0.0] * 9 + [2.0]
    assert cov["expected"].unique().tolist() == [6.0]
    assert cov["ratio"].iloc[-1] == pytest.approx(2 / 6)
    bounded = coverage(buckets, "10s", start=at(-120), end=at(700))
    assert bounded.index[0] == at(-120) and bounded.index[-1] == at(660)
    assert bounded["samples"].sum() == 8
    with pytest.raises(MetricsToolkitError, match="resample the frame first"):
        coverage(stats_frame(rows, keys=()), "10s")
    assert len(coverage(stats_frame(rows, keys=()), "10s", interval="5min")) == 3


def test_empty_and_leafless_inputs() -> None:
    assert rollup_rows([], "1h") == []
    assert to_snapshot_docs(resample_stats([], "1h")) == []
    assert coverage(resample_stats([], "1h"), "10s").empty
    leafless = [(T0, "aggregated", {"host": "a", "note": "no numbers"})]
    expected = [
        (
            T0,
            "aggregated",
            {
                "host": "a",
                "note": "no numbers",
                "_rollup": {"interval": "1h", "samples": 1, "count": {}},
            },
        )
    ]
    assert rollup_rows(leafless, "1h") == expected
    assert to_snapshot_docs(resample_stats(iter(leafless), "1h")) == expected  # any iterable
    empty = pd.DataFrame({"x": []}, index=pd.DatetimeIndex([], name="timestamp", tz="UTC"))
    assert resample_stats(empty, "1h").empty and finalize(empty).empty


@pytest.mark.parametrize("module", [documents, intervals, rollup, rollup_arrays])
def test_docstring_examples_run(module: ModuleType) -> None:
    failed, attempted = doctest.testmod(module)
    assert attempted > 0 and failed == 0


def test_resample_rows_with_keys() -> None:
    rows = [row(0, host="a", x=1.0), row(10, host="b", x=3.0), row(20, host="a", x=5.0)]
    merged = finalize(resample_stats(rows, "1min", keys=("metric_type",)))
    assert merged.index.names == ["metric_type", "timestamp"]
    assert merged["x"].tolist() == [3.0]  # hosts merged on purpose: (1 + 3 + 5) / 3
    single = resample_stats(rows[:1], "1min", keys=())
    assert single.index.name == "timestamp"
    with pytest.raises(InvalidSnapshot, match="several"):
        resample_stats(rows, "1min", keys=())
    with pytest.raises(MetricsToolkitError, match="Unknown key 'disk'"):
        resample_stats(rows, "1min", keys=("disk",))


def test_duplicates_and_overlaps_give_the_same_answer_on_both_paths() -> None:
    """Ties and overlapping spans follow one documented order on both paths."""
    raw = [
        row(0, x=1.0, c_total=10),
        row(0, x=2.0, c_total=5),  # same time: the later row wins ties
        row(10, x=3.0, c_total=20),
        row(20, x=4.0, c_total=20),
    ]
    hourly = rollup_rows([row(5, x=7.0, c_total=12), row(50, x=9.0, c_total=40)], "1h")
    five_min = rollup_rows([row(40, x=0.5, c_total=30), row(400, x=1.5, c_total=60)], "5min")
    for rows in (raw, [*raw, *hourly], [*raw, *hourly, *five_min], [*five_min, *raw]):
        for interval in ("10s", "1min", "1h"):
            pure = rollup_rows(rows, interval)
            # all values are small binary fractions: sums are exact on both paths
            assert to_snapshot_docs(resample_stats(rows, interval)) == pure
            assert to_snapshot_docs(resample_stats(stats_frame(rows), interval)) == pure


def test_a_sum_that_overflows_is_a_clear_error() -> None:
    rows = [row(0, x=1e308), row(10, x=1e308)]
    with pytest.raises(InvalidSnapshot, match="The sum of leaf 'x' is inf"):
        rollup_rows(rows, "1min")
    with pytest.raises(InvalidSnapshot, match="The sum of leaf 'x' is inf"):
        to_snapshot_docs(resample_stats(rows, "1min"))
