"""Report building blocks on small hand-made frames: units, patterns, quantiles, episodes, gaps."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from metrics_toolkit.analysis import breaches as episodes
from metrics_toolkit.analysis.coverage import rolled_spans
from metrics_toolkit.analysis.gaps import find_gaps
from metrics_toolkit.analysis.summaries import grouped_quantiles, weighted_quantile
from metrics_toolkit.errors import ConfigError, InvalidArgument
from metrics_toolkit.intervals import Interval
from metrics_toolkit.reporting import breaches, buckets, spec
from metrics_toolkit.reporting.files import check_formats, host_directory
from metrics_toolkit.reporting.metadata import RolledRow
from metrics_toolkit.reporting.units import (
    format_bytes,
    format_change,
    format_duration,
    format_rate,
    format_value,
    format_values,
)
from metrics_toolkit.store.threshold_rules import ThresholdRule, parse_rules

T0 = datetime(2026, 1, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (0, "bytes", "0 B"),
        (1023, "bytes", "1,023 B"),
        (1536, "bytes", "1.50 KiB"),
        (8 * 2**30, "bytes", "8.00 GiB"),
        (999_999_999, "bytes/s", "1.00 GB/s"),
        (1_234, "1/s", "1.23 k/s"),
        (42.345, "percent", "42.3 %"),
        (0.456, "load", "0.46"),
        (3725, "seconds", "1 h 2 min"),
        (45.0, "celsius", "45.0 °C"),
        (158, "count", "158"),
        (float("nan"), "percent", "–"),
        (None, "bytes", "–"),
    ],
)
def test_values_are_formatted_for_people(value: float | None, unit: str, text: str) -> None:
    assert format_value(value, unit) == text
    if value is not None:  # many at once (chart tooltips): the same text
        assert format_values([float(value), float(value)], unit) == [text, text]


def test_prefixes_never_show_four_digits() -> None:
    for exponent in range(0, 15):
        for mantissa in (1.0, 9.99, 9.9999, 500.0, 1023.9):
            value = mantissa * 10**exponent
            for text in (format_bytes(value), format_rate(value, "B/s")):
                number = text.split()[0].replace(",", "")
                assert float(number) < 1024 or text.endswith((" B", "PiB", "PB/s")), text


def test_durations_and_changes() -> None:
    assert format_duration(59) == "59 s"
    assert format_duration(86_400 * 2 + 3600 * 5 + 7) == "2 d 5 h"
    assert format_change(55.0, 50.0, "percent") == "+5.0 pp"
    assert format_change(150.0, 100.0, "bytes") == "+50 %"
    assert format_change(1.0, 0.0, "bytes") == "new"
    assert format_change(1.0, None, "bytes") == "–"


def test_patterns_expand_against_present_paths() -> None:
    present = ["disk.mounts./.usage_percent", "disk.mounts./data.usage_percent", "cpu.load1"]
    assert spec.match("disk.mounts.*.usage_percent", present[1]) == ("/data",)
    assert [p for p, _ in spec.expand("disk.mounts.*.usage_percent", present)] == present[:2]
    sections = spec.sections(present)
    assert [s.key for s in sections] == ["load", "disk"]
    assert [p.title for p in sections[1].panels] == ["Mount /", "Mount /data"]
    labels = dict(spec.summary_metrics(present))
    assert labels["disk.mounts./data.usage_percent"] == "Disk used, /data"


@pytest.mark.parametrize("q", [0.0, 0.05, 0.5, 0.95, 0.99, 1.0])
def test_weighted_quantile_with_unit_weights_is_numpys_inverted_cdf(q: float) -> None:
    values = np.random.default_rng(7).normal(size=101)
    expected = np.quantile(values, q, method="inverted_cdf")
    assert weighted_quantile(values, np.ones(101), q) == expected


@pytest.mark.parametrize("q", [0.0, 0.05, 0.5, 0.95, 0.99, 1.0])
def test_grouped_quantiles_equal_weighted_quantile_per_group(q: float) -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=2_000).round(1)  # ties too
    values[rng.random(2_000) < 0.1] = np.nan
    groups = rng.integers(0, 60, size=2_000)
    groups[groups == 7] = 8  # group 7 has no value, group 9 only NaN
    values[groups == 9] = np.nan
    got = grouped_quantiles(values, groups, 61, q)  # group 60: nothing either
    for group in range(61):
        mine = values[groups == group]
        expected = weighted_quantile(mine, np.ones(len(mine)), q)
        assert got[group] == expected or (np.isnan(expected) and np.isnan(got[group])), group
    assert np.isnan(got[[7, 9, 60]]).all()


def test_weighted_quantile_counts_each_value_its_weight_times() -> None:
    values = np.array([1.0, 2.0, 3.0, np.nan])
    weights = np.array([1.0, 1.0, 8.0, 5.0])
    repeated = np.repeat(values[:3], weights[:3].astype(int))
    for q in (0.1, 0.2, 0.5, 0.95):
        assert weighted_quantile(values, weights, q) == np.quantile(
            repeated, q, method="inverted_cdf"
        )


def _bucket_frame(host: str, values: Sequence[float | None], width: int = 60) -> pd.DataFrame:
    """A one-metric detail frame: one sample per bucket (None = a missing bucket)."""
    rows = [(T0 + timedelta(seconds=i * width), v) for i, v in enumerate(values) if v is not None]
    index = pd.MultiIndex.from_arrays(
        [[host] * len(rows), pd.DatetimeIndex([t for t, _ in rows], name="timestamp")],
        names=["host", "timestamp"],
    )
    data = np.array([v for _, v in rows], dtype=float)
    loaded = pd.DataFrame(
        {
            ("cpu.usage_percent", "sum"): data,
            ("cpu.usage_percent", "count"): np.ones(len(rows)),
            ("cpu.usage_percent", "min"): data,
            ("cpu.usage_percent", "max"): data,
        },
        index=index,
    )
    return buckets.with_widths(loaded, Interval(width))


def _detect(
    frame: pd.DataFrame, rules: list[ThresholdRule], end: datetime, every: int = 60
) -> list[episodes.Breach]:
    present = list(dict.fromkeys(frame.columns.get_level_values(0)))
    checks = breaches.checks(rules, present)
    return episodes.detect(frame, checks, end=end, sample_seconds={"h": every})[0]


def test_episodes_need_back_to_back_buckets_and_the_duration() -> None:
    values: list[float | None] = [10, 95, 96, 97, 98, 99, 10, 95, 95, None, 95, 95, 95, 95, 95]
    frame = _bucket_frame("h", values)
    end = T0 + timedelta(minutes=len(values))
    held = _detect(frame, [ThresholdRule("cpu.usage_percent", 90, 300)], end)
    assert [(b.start, b.end, b.peak) for b in held] == [
        (T0 + timedelta(minutes=1), T0 + timedelta(minutes=6), 99.0),
        (T0 + timedelta(minutes=10), T0 + timedelta(minutes=15), 95.0),
    ]
    any_sample = _detect(frame, [ThresholdRule("cpu.usage_percent", 90, 0)], end)
    assert len(any_sample) == 3  # the run at minutes 7-8 is cut by the missing minute 9
    assert any_sample[1].seconds == 120


def test_episode_ends_at_the_report_end() -> None:
    frame = _bucket_frame("h", [95, 95, 95], width=3600)
    found = _detect(
        frame, [ThresholdRule("cpu.*.usage_percent", 90, 0)], T0 + timedelta(minutes=150)
    )
    assert found == []  # three segments never match the two of cpu.usage_percent
    found = _detect(frame, [ThresholdRule("cpu.*", 90, 0)], T0 + timedelta(minutes=150))
    assert found[0].end == T0 + timedelta(minutes=150)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("high", "a number, or an object"),
        ({"above": "90"}, "a number, or an object"),
        ({"above": 90, "for": "7min"}, "neither divides one day"),
        ({"above": 90, "during": "5min"}, "unknown field"),
        (True, "a number, or an object"),
    ],
)
def test_bad_threshold_rules_are_refused(rule: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_rules({"cpu.usage_percent": rule})


def test_threshold_rules_parse() -> None:
    rules = parse_rules({"a.b": 5, "c.*.d": {"above": 1.5, "for": "10min"}})
    assert rules == [ThresholdRule("a.b", 5.0, 0), ThresholdRule("c.*.d", 1.5, 600)]


def test_merge_follows_the_rollup_rule() -> None:
    values = [float(v) for v in range(10)]
    frame = _bucket_frame("h", values)
    merged = buckets.merge(frame, Interval(300))
    assert list(merged["cpu.usage_percent", "count"]) == [5.0, 5.0]
    assert list(merged["cpu.usage_percent", "mean"]) == [2.0, 7.0]
    assert list(merged["cpu.usage_percent", "min"]) == [0.0, 5.0]
    assert list(merged["cpu.usage_percent", "max"]) == [4.0, 9.0]
    assert list(merged[buckets.SECONDS]) == [300.0, 300.0]
    assert frame["cpu.usage_percent", "count"].sum() == 10  # the input is unchanged


def test_rolled_up_rows_keep_their_width() -> None:
    frame = _bucket_frame("h", [1.0, 2.0], width=300)
    rolled = [RolledRow("h", T0, 3600, "1h", 360)]
    loaded = frame.drop(columns=[buckets.SECONDS, ("cpu.usage_percent", "mean")])
    widened = buckets.with_widths(loaded, Interval(300), rolled)
    assert list(widened[buckets.SECONDS]) == [3600.0, 300.0]


def test_gaps_are_the_uncovered_stretches() -> None:
    start, end = T0, T0 + timedelta(hours=1)
    base = T0.timestamp()
    rows = [base + 600, base + 660, base + 1800], [60, 60, 3600], [1, 1, 60]
    found = find_gaps(*rows, start, end, 60)
    assert [(g.start - T0, g.end - T0) for g in found] == [
        (timedelta(0), timedelta(minutes=10)),
        (timedelta(minutes=12), timedelta(minutes=30)),
    ]
    assert [g.seconds for g in find_gaps([], [], [], start, end, 60)] == [3600.0]


def test_rolled_spans_merge_back_to_back_rows() -> None:
    rows = [RolledRow("h", T0 + timedelta(hours=i), 3600, "1h", 360) for i in (0, 1, 2, 5)]
    spans = rolled_spans(rows)
    assert [(s.start, s.end, s.rows, s.samples) for s in spans] == [
        (T0, T0 + timedelta(hours=3), 3, 1080),
        (T0 + timedelta(hours=5), T0 + timedelta(hours=6), 1, 360),
    ]


@pytest.mark.parametrize(
    ("host", "safe"),
    [(None, "all"), ("web-1", "web-1"), ("db.internal", "db.internal")],
)
def test_host_directories(host: str | None, safe: str) -> None:
    assert host_directory(host) == safe


@pytest.mark.parametrize("host", ["<script>", "../etc", "all", "a/b", "", ".hidden", "é"])
def test_odd_host_names_get_a_safe_distinct_directory(host: str) -> None:
    name = host_directory(host)
    assert name not in ("all", "", ".", "..")
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in name)
    assert not name.startswith(".")
    assert name != host_directory(host + "x")


def test_formats_are_checked() -> None:
    assert check_formats("pdf, html,pdf") == ("pdf", "html")
    with pytest.raises(InvalidArgument, match="choose from html, pdf, json"):
        check_formats("html,docx")
