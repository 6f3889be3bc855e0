"""The load suite's own checks catch what they are meant to catch (no processes, no database)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from metrics_toolkit.catalog import is_declared, lookup
from metrics_toolkit.reporting.units import format_value
from tests.load.figures import table
from tests.load.fleet import Summary
from tests.load.store import Sample, bucket_problems, percentile, rollup_problems, tally

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def samples(host: str, count: int, start: datetime = T0) -> list[Sample]:
    return [Sample(host, start + i * SECOND, 1.0) for i in range(count)]


def test_summary_lines_parse_with_and_without_the_optional_parts() -> None:
    plain = "Collected 20 snapshot(s); wrote 20 (0 already stored); 0 left in the spool\n"
    assert Summary.parse(plain) == Summary(20, 20, 0, 0, 0, 0)
    full = (
        "Collected 9 snapshot(s); wrote 7 (1 already stored); 2 left in the spool; "
        "3 slot(s) skipped; 4 dropped (spool full)"
    )
    assert Summary.parse(full) == Summary(9, 7, 1, 2, 3, 4)
    assert Summary.parse("Traceback (most recent call last):") is None


def test_tally_counts_every_tick_once_and_names_what_is_wrong() -> None:
    good = tally({"a": 3, "b": 2}, samples("a", 3) + samples("b", 2))
    assert (good.expected, good.stored, good.doubled, good.missing) == (5, 5, 0, 0)
    assert good.problems() == []

    lost = tally({"a": 3}, samples("a", 2))
    assert lost.missing == 1 and lost.problems() == [
        "a: expected 3, stored 2, doubled 0, off grid 0"
    ]
    doubled = tally({"a": 2}, [*samples("a", 2), samples("a", 1)[0]])
    assert doubled.doubled == 1 and doubled.problems()
    # One lost and one doubled do not cancel out: the distinct ticks are counted.
    both = tally({"a": 3}, [*samples("a", 2), samples("a", 1)[0]])
    assert (both.stored, both.doubled) == (2, 1) and both.problems()
    off_grid = tally({"a": 1}, [Sample("a", T0 + timedelta(milliseconds=500), None)])
    assert off_grid.hosts["a"].off_grid == 1 and off_grid.problems()
    stranger = tally({"a": 1}, [*samples("a", 1), *samples("z", 1)])
    assert stranger.problems() == ["rows of unexpected host 'z': 1"]


def test_rollups_plus_raw_rows_must_add_up_per_host() -> None:
    raw = samples("a", 4) + samples("b", 1)
    assert rollup_problems({"a": 10, "b": 1}, raw, {"a": 6}) == []
    assert rollup_problems({"a": 10, "b": 1}, raw, {"a": 7}) == [
        "a: 7 rolled up + 4 raw != 10 taken"
    ]
    assert rollup_problems({"a": 10, "b": 1}, raw, {"a": 6, "b": 1})


def test_each_rollup_must_count_exactly_the_raw_rows_archived_from_its_bucket() -> None:
    archived = samples("a", 25)  # 12:00:00 .. 12:00:24, buckets of 10 s: 10 + 10 + 5
    buckets = {("a", T0): 10, ("a", T0 + 10 * SECOND): 10, ("a", T0 + 20 * SECOND): 5}
    assert bucket_problems(buckets, archived, 10) == []
    assert bucket_problems({**buckets, ("a", T0): 11}, archived, 10) == [
        "a bucket 2026-01-05T12:00:00+00:00: rollup counts 11, 10 raw rows archived"
    ]
    missing = {k: v for k, v in buckets.items() if k[1] != T0}
    assert len(bucket_problems(missing, archived, 10)) == 1


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([3.0], 0.99) == 3.0
    assert math.isnan(percentile([], 0.5))


def test_write_latency_leaf_is_declared_in_milliseconds() -> None:
    assert is_declared("collector.write_latency_ms")
    spec = lookup("collector.write_latency_ms")
    assert (spec.kind, spec.unit) == ("gauge", "ms")
    assert format_value(12.345, "ms") == "12.3 ms"


def test_figures_table_has_a_row_per_scenario() -> None:
    text = table(
        [
            {"scenario": "postgresql", "collectors": 50, "latency_p99_ms": 12.34},
            {"scenario": "sqlite", "collectors": 10, "latency_p99_ms": float("nan")},
        ]
    )
    lines = text.splitlines()
    assert len(lines) == 3 and "p99 ms" in lines[0]
    assert "12.3" in lines[1] and lines[2].split()[0] == "sqlite"
