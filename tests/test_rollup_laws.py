"""Laws of the rollup rule, proven on random histories (hypothesis).

Histories have gaps, leaves that appear and vanish between snapshots, several hosts and
counters that reset. Every law is checked on the pure-Python path (``rollup_rows``) and on
the pandas path (``stats_frame`` / ``resample_stats`` / ``to_snapshot_docs``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metrics_toolkit.documents import flatten
from metrics_toolkit.intervals import Interval, bucket_start
from metrics_toolkit.rollup.frame import resample_stats, stats_frame
from metrics_toolkit.rollup.output import finalize, to_snapshot_docs
from metrics_toolkit.rollup.rule import Row, epoch_seconds, rollup_rows

T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
LAWS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

GAUGES = ("cpu.usage_percent", "memory.used_bytes", "net.rx_bytes_per_s")
COUNTER = "net.rx_total"
VANISHING = "disk.sdb.busy_percent"  # a device that comes and goes
# (fine, coarse) pairs where coarse is a multiple of fine
NESTED = [
    ("10s", "1min"),
    ("10s", "5min"),
    ("1min", "5min"),
    ("1min", "1h"),
    ("5min", "15min"),
    ("5min", "1h"),
    ("15min", "1h"),
    ("1h", "1D"),
    ("5min", "1D"),
]


def _nest(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for key in parents:
        doc = doc.setdefault(key, {})
    doc[leaf] = value


@st.composite
def histories(draw: st.DrawFn, *, resets: bool = True) -> list[Row]:
    """Raw rows of one to three hosts, shuffled (order must not matter)."""
    hosts = draw(
        st.lists(st.sampled_from(["web-1", "db-1", "a.b"]), min_size=1, max_size=3, unique=True)
    )
    rows: list[Row] = []
    for host in hosts:
        n = draw(st.integers(1, 30))
        steps = draw(
            st.lists(st.sampled_from([10, 10, 10, 20, 70, 290, 1800, 5000]), min_size=n, max_size=n)
        )
        offset = draw(st.integers(-100_000, 100_000))
        counter = draw(st.integers(0, 10**6))
        seconds = offset
        for step in steps:
            seconds += step
            doc: dict[str, Any] = {"host": host, "tags": [seconds]}
            for path in GAUGES:
                if draw(st.integers(0, 9)):  # present 90% of the time
                    value = draw(
                        st.one_of(
                            st.integers(0, 10**9),
                            st.floats(0, 100, allow_nan=False, allow_infinity=False),
                        )
                    )
                    _nest(doc, path, value)
            if draw(st.booleans()):
                _nest(doc, VANISHING, draw(st.integers(0, 100)))
            if draw(st.integers(0, 4)):
                if resets and not draw(st.integers(0, 6)):
                    counter = draw(st.integers(0, 1000))  # restart from a small value
                else:
                    counter += draw(st.integers(0, 10**4))
                _nest(doc, COUNTER, counter)
            rows.append((T0 + timedelta(seconds=seconds), "aggregated", doc))
    return draw(st.permutations(rows))


# ------------------------------------------------------------------ comparison helpers

EXACT = {"count", "min", "max", "first", "last", "first_time", "last_time", "resets", "max_rate"}


def canonical(rows: list[Row]) -> dict[tuple[Any, ...], Any]:
    """Every number of rolled-up rows, keyed by (host, type, bucket, stat, path)."""
    out: dict[tuple[Any, ...], Any] = {}
    for ts, metric_type, doc in rows:
        key = (doc.get("host"), metric_type, ts)
        meta = doc["_rollup"]
        out[(*key, "interval", "")] = meta["interval"]
        out[(*key, "samples", "")] = meta["samples"]
        out[(*key, "labels", "")] = doc.get("tags")
        for name, stats in meta.items():
            if isinstance(stats, dict):
                for path, value in flatten(stats).items():
                    out[(*key, name, path)] = value
        for path, value in flatten(doc).items():
            out[(*key, "leaf", path)] = value
    return out


def assert_same(
    actual: list[Row], expected: list[Row], *, skip: frozenset[str] = frozenset()
) -> None:
    """Equal rolled-up rows: exact for selected values, float tolerance for sums."""
    assert [r[:2] for r in actual] == [r[:2] for r in expected]
    a, b = canonical(actual), canonical(expected)
    a = {k: v for k, v in a.items() if k[3] not in skip}
    b = {k: v for k, v in b.items() if k[3] not in skip}
    assert a.keys() == b.keys()
    for key, value in b.items():
        if key[3] in EXACT or not isinstance(value, float):
            assert a[key] == value, key
        else:
            assert math.isclose(a[key], value, rel_tol=1e-9, abs_tol=1e-6), (key, a[key], value)


def pandas_rollup(rows: list[Row], interval: str) -> list[Row]:
    """Rows straight into ``resample_stats`` (its fast route when all rows are raw)."""
    return to_snapshot_docs(resample_stats(rows, interval))


# ------------------------------------------------------------------ laws


@LAWS
@given(histories(), st.sampled_from(NESTED))
def test_rolling_up_twice_equals_rolling_up_once(rows: list[Row], widths: tuple[str, str]) -> None:
    fine, coarse = widths
    once = rollup_rows(rows, coarse)
    assert_same(rollup_rows(rollup_rows(rows, fine), coarse), once)
    # the pandas path obeys the same law, on its own stats frames
    staged = resample_stats(resample_stats(stats_frame(rows), fine), coarse)
    assert_same(to_snapshot_docs(staged), once)


@LAWS
@given(histories(), st.sampled_from(["10s", "1min", "5min", "1h", "1D"]))
def test_pandas_path_equals_pure_path(rows: list[Row], interval: str) -> None:
    pure = rollup_rows(rows, interval)
    # frames -> documents, through the rows route and through per-row stats frames
    assert_same(pandas_rollup(rows, interval), pure)
    assert_same(to_snapshot_docs(resample_stats(stats_frame(rows), interval)), pure)
    # documents -> frames: the pure rows read back equal the pandas buckets
    from_pure = stats_frame(pure)
    from_pandas = resample_stats(stats_frame(rows), interval)
    pd.testing.assert_frame_equal(
        from_pure.drop(columns=[("_rollup", "labels")]),
        from_pandas.drop(columns=[("_rollup", "labels")]),
        check_like=True,
        rtol=1e-9,
    )
    assert from_pure["_rollup", "labels"].tolist() == from_pandas["_rollup", "labels"].tolist()
    # the value frame fast path (no labels) agrees too
    values = value_frame(rows)
    pd.testing.assert_frame_equal(
        resample_stats(values, interval),
        from_pandas.drop(columns=[("_rollup", "labels")]),
        check_like=True,
        rtol=1e-9,
    )


def value_frame(rows: list[Row]) -> pd.DataFrame:
    index = pd.MultiIndex.from_arrays(
        [
            [doc["host"] for _, _, doc in rows],
            [mt for _, mt, _ in rows],
            pd.DatetimeIndex([ts for ts, _, _ in rows]),
        ],
        names=["host", "metric_type", "timestamp"],
    )
    return pd.DataFrame([flatten(doc) for _, _, doc in rows], index=index, dtype=float)


def raw_totals(rows: list[Row]) -> dict[tuple[str, str], dict[str, float]]:
    """Totals computed directly from raw samples, independently of the rollup code."""
    series: dict[tuple[str, str], list[tuple[datetime, float]]] = defaultdict(list)
    for ts, _, doc in rows:
        for path, value in flatten(doc).items():
            series[doc["host"], path].append((ts, value))
    out: dict[tuple[str, str], dict[str, float]] = {}
    for key, samples in series.items():
        samples.sort(key=lambda s: s[0])
        values = [v for _, v in samples]
        increase = 0.0
        for (_, before), (_, after) in pairwise(samples):
            increase += after - before if after >= before else after
        out[key] = {
            "count": len(values),
            "min": min(values),
            "max": max(values),
            "mean": sum(values) / len(values),
            "increase": increase,
        }
    return out


@LAWS
@given(histories(), st.sampled_from(["10s", "5min", "1h", "1D", "7D"]))
def test_rolling_up_preserves_totals(rows: list[Row], interval: str) -> None:
    expected = raw_totals(rows)
    for rolled in (rollup_rows(rows, interval), pandas_rollup(rows, interval)):
        assert sum(doc["_rollup"]["samples"] for _, _, doc in rolled) == len(rows)
        frame = finalize(stats_frame(rolled), ("count", "sum", "min", "max", "increase"))
        for (host, path), totals in expected.items():
            column = frame.xs(host, level="host")[path]
            assert column["count"].sum() == totals["count"]
            if path == COUNTER:
                # the presented increases of consecutive buckets sum to the total increase
                assert math.isclose(column["increase"].sum(), totals["increase"], rel_tol=1e-9)
                continue
            assert column["min"].min() == totals["min"]
            assert column["max"].max() == totals["max"]
            mean = column["sum"].sum() / column["count"].sum()
            assert math.isclose(mean, totals["mean"], rel_tol=1e-9, abs_tol=1e-9)


@LAWS
@given(histories(), st.sampled_from(NESTED), st.data())
def test_mixed_raw_and_rolled_up_rows_equal_raw(
    rows: list[Row], widths: tuple[str, str], data: st.DataObject
) -> None:
    """Some fine buckets already rolled up (an archive run), the rest still raw."""
    fine, coarse = widths
    buckets = sorted({bucket_start(ts, fine) for ts, _, _ in rows})
    rolled = set(data.draw(st.lists(st.sampled_from(buckets), unique=True)))
    older = [r for r in rows if bucket_start(r[0], fine) in rolled]
    newer = [r for r in rows if bucket_start(r[0], fine) not in rolled]
    mixed = [*rollup_rows(older, fine), *newer]
    expected = rollup_rows(rows, coarse)
    assert_same(rollup_rows(mixed, coarse), expected)
    assert_same(pandas_rollup(mixed, coarse), expected)
    # and mixed frames: rolled-up stats concatenated with resampled raw values
    if older and newer:
        parts = [stats_frame(rollup_rows(older, fine)), resample_stats(value_frame(newer), fine)]
        merged = resample_stats(pd.concat(parts), coarse)
        assert_same(to_snapshot_docs(merged), expected, skip=frozenset({"labels"}))


@LAWS
@given(histories(resets=False), st.sampled_from(NESTED), st.data())
def test_late_rows_merge_into_rolled_up_buckets(
    rows: list[Row], widths: tuple[str, str], data: st.DataObject
) -> None:
    """A replayed spool delivers rows after their range was rolled up."""
    fine, coarse = widths
    late_positions = set(data.draw(st.lists(st.integers(0, len(rows) - 1), unique=True)))
    on_time = [r for i, r in enumerate(rows) if i not in late_positions]
    late = [r for i, r in enumerate(rows) if i in late_positions]
    merged = [*rollup_rows(on_time, fine), *late]
    expected = rollup_rows(rows, coarse)
    # A late sample inside a rolled-up span cannot split that span's steps, so the peak
    # rate between consecutive samples is the one statistic that may differ.
    assert_same(rollup_rows(merged, coarse), expected, skip=frozenset({"max_rate"}))
    assert_same(pandas_rollup(merged, coarse), expected, skip=frozenset({"max_rate"}))


@LAWS
@given(histories(), st.sampled_from(["1min", "1h"]))
def test_first_and_last_are_the_earliest_and_latest_samples(rows: list[Row], interval: str) -> None:
    by_bucket: dict[tuple[str, datetime, str], list[tuple[float, float]]] = defaultdict(list)
    for ts, _, doc in rows:
        for path, value in flatten(doc).items():
            by_bucket[doc["host"], bucket_start(ts, interval), path].append(
                (epoch_seconds(ts), value)
            )
    width = Interval.parse(interval).seconds
    for ts, _, doc in rollup_rows(rows, interval):
        meta = doc["_rollup"]
        for path, count in flatten(meta["count"]).items():
            samples = sorted(by_bucket[doc["host"], ts, path])
            assert count == len(samples)
            assert flatten(meta["first"])[path] == samples[0][1]
            assert flatten(meta["last"])[path] == samples[-1][1]
            assert epoch_seconds(ts) <= samples[0][0] <= samples[-1][0] < epoch_seconds(ts) + width
