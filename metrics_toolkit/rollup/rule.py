"""The one rollup rule: epoch-aligned buckets, mergeable per-leaf statistics (docs/design.md §3-4).

This module is the pure-Python definition (inputs are read by
:mod:`metrics_toolkit.rollup.parts`); :mod:`metrics_toolkit.rollup.frame` and
:mod:`metrics_toolkit.rollup.output` apply the same rule to pandas frames (vectorised), and
tests prove the two paths give equal results.

Buckets
    Half-open ``[start, start + width)``, aligned to the Unix epoch, labelled by their start,
    in UTC (:func:`bucket_start`). A sample exactly on a boundary belongs to the later
    bucket. Naive datetimes are taken to be UTC (as the models do).

Parts
    Every input row is a *part*: a raw row is a bucket of one sample (``count=1``,
    ``sum=min=max=first=last=value``), a rolled-up row (one with a ``"_rollup"`` key) brings
    its stored statistics. Parts are merged by their statistics, never by averaging means.
    Rows are grouped per ``(host, metric_type)``; two hosts are never merged. A part goes
    wholly into the bucket holding its timestamp: a row rolled up to a width coarser than
    the target (or one that does not nest in it) is not split, and the output records the
    coarsest width (``_rollup.interval``) among its parts.

Per leaf statistics (a leaf may be missing from some parts)
    All leaves: ``count`` (samples holding the leaf), ``first``/``last`` (values of the
    earliest/latest sample) and ``first_time``/``last_time`` (their times, epoch seconds
    UTC). The times make "first of the earliest, last of the latest" exact even when a late
    raw row lands inside an already rolled-up bucket.

    ``gauge`` and ``rate`` leaves add ``sum``, ``min``, ``max``; the mean is ``sum / count``
    (sample-weighted). Merging: counts and sums add, min of mins, max of maxes; ``first``
    is taken from the part with the smallest ``first_time`` (ties: the earlier row),
    ``last`` from the part with the greatest ``last_time`` (ties: the later row).

    ``counter`` leaves (raw cumulative values) add ``increase``, ``resets`` and
    ``max_rate`` (see "Counters" below); they keep no sum, min or max.

    *Row order* (used to break ties) sorts rows by host, metric type and timestamp, input
    order breaking ties.

Counters: increase, resets, max_rate and the boundary delta
    Between two consecutive samples ``(t0, v0) -> (t1, v1)`` of one series the *delta* is
    ``v1 - v0``; a negative delta is a reset and the increase after a reset counts the new
    value from 0 (``v1``). The *rate* of the step is its increase divided by ``t1 - t0``.

    A bucket stores its **internal** statistics: ``increase`` and ``resets`` sum the steps
    whose both samples lie in the bucket, ``max_rate`` is the peak rate of those steps
    (absent when the bucket has fewer than two samples). The step from the previous
    bucket's last sample to this bucket's first sample is the **boundary delta**: it is
    not stored in either bucket, but whenever buckets are merged (rolled up further) the
    boundary deltas between them become internal steps of the merged bucket, and when
    buckets are *presented* (``finalize(..., stats=("increase",))``) each bucket's boundary
    delta is counted in the later bucket. So merged internal increases equal the raw
    ones exactly, and the presented increases of a series sum to its total increase.

    Precisely, the parts of one (host, metric_type, leaf) series are folded in time order
    (by ``first_time``, then ``last_time``, then row order), keeping the latest sample seen
    so far ``(R, V)`` (time, value; on equal times the later part wins):

    - a part starting after ``R`` (the usual case) brings its internal statistics plus the
      step ``(R, V) -> (first_time, first)``;
    - a part that starts at or before ``R`` but ends after it (overlapping spans) brings
      only the step ``(R, V) -> (last_time, last)``;
    - a part that ends at or before ``R`` (a late sample inside an already rolled-up span)
      brings its count, first/last and nothing else: its steps are already inside the
      enclosing span's increase (exact while the counter does not reset within the span).

    A step belongs to the bucket of the part that ends it; it is internal when the sample
    it starts from lies in the same bucket.

Labels
    Non-metric leaves (host, lists such as top processes) are kept from the bucket's latest
    row: the one whose latest sample is latest (ties: the later row).

Rolled-up documents
    They keep the raw shape (docs/design.md §4): the timestamp is the bucket start, the leaves
    hold the bucket means (counters: the last value) and ``"_rollup"`` holds ``interval``,
    ``samples`` (raw snapshots merged) and one map per statistic, nested like the document:
    ``count`` (always present, it lists the leaves), ``sum``, ``min``, ``max``, ``first``,
    ``last``, ``first_time``, ``last_time``, and for counter leaves only ``increase``,
    ``resets`` and ``max_rate`` (left out while undefined). For example::

        {"host": "web-1", "cpu": {"usage_percent": 12.5},
         "_rollup": {"interval": "1h", "samples": 360,
                     "count": {"cpu": {"usage_percent": 360}},
                     "sum": {"cpu": {"usage_percent": 4500.0}}, "min": {...}, ...}}

    Values are plain JSON numbers (ints for ``count``, ``resets``, ``samples``). A sum of
    huge values that overflows a float raises :class:`InvalidSnapshot` (JSON cannot hold
    ``inf``).
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from itertools import chain
from typing import Any, TypeVar

from metrics_toolkit import catalog
from metrics_toolkit.documents import ROLLUP_KEY, host_of, set_path, shadowed, strip_metrics
from metrics_toolkit.errors import InvalidSnapshot
from metrics_toolkit.intervals import (
    EPOCH,
    Interval,
    bucket_start,
    bucket_start_ticks,
    epoch_microseconds,
)
from metrics_toolkit.rollup.parts import (
    COMMON_STATS,
    COUNTER_STATS,
    GAUGE_STATS,
    INT_STATS,
    LEAF_STATS,
    KindOf,
    LeafStats,
    Part,
    Row,
    RowStats,
    epoch_seconds,
    is_rolled_up,
    read_parts,
    row_stats,
)

# Reading inputs lives in rollup.parts and the bucket start in intervals; these names are
# part of this module's API too.
__all__ = [
    "COMMON_STATS",
    "COUNTER_STATS",
    "EPOCH",
    "GAUGE_STATS",
    "LEAF_STATS",
    "KindOf",
    "LeafStats",
    "Part",
    "Row",
    "RowStats",
    "bucket_start",
    "epoch_microseconds",
    "epoch_seconds",
    "host_of",
    "is_rolled_up",
    "read_parts",
    "rollup_document",
    "rollup_rows",
    "row_stats",
]

log = logging.getLogger(__name__)


def rollup_rows(
    rows: Iterable[Row],
    interval: str | Interval | timedelta,
    *,
    kind_of: KindOf = catalog.kind_of,
) -> list[Row]:
    """Roll raw and/or rolled-up rows up to ``interval`` (pure Python, the reference path).

    Returns one rolled-up row ``(bucket_start, metric_type, document)`` per
    ``(host, metric_type, bucket)`` that holds at least one row, ordered by host, metric
    type and bucket. Inputs are not modified. Sparse buckets are kept: ``_rollup.samples``
    and ``_rollup.count`` show how many samples each bucket really has.

    Series made only of raw rows take a fast path (per-leaf columns and builtin
    aggregates); series holding rolled-up rows go through the general fold. For large
    frames the vectorised ``rollup_frame.resample_stats`` is faster still.

    >>> from datetime import UTC, datetime
    >>> t = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    >>> rows = [(t + timedelta(seconds=10 * i), "aggregated", {"host": "a", "x": i})
    ...         for i in range(6)]
    >>> [(ts.minute, doc["x"], doc["_rollup"]["samples"])
    ...  for ts, _, doc in rollup_rows(rows, "1min")]
    [(0, 2.5, 6)]
    """
    width = Interval.parse(interval)
    kinds = _KindCache(kind_of)
    parts = read_parts(rows, kind_of=kinds)
    out: list[Row] = []
    for series in _runs(parts, lambda p: (p.host, p.metric_type)):
        if all(p.stats is None for p in series):
            out.extend(_rollup_raw_series(series, width, kinds))
        else:
            out.extend(_rollup_series([p.as_stats(kinds) for p in series], width, kinds))
    return out


class _KindCache(dict[str, catalog.Kind]):
    """``kind_of`` memoised for one call (the catalog lookup is the hot path)."""

    def __init__(self, kind_of: KindOf) -> None:
        super().__init__()
        self.kind_of = kind_of

    def __missing__(self, path: str) -> catalog.Kind:
        kind = self[path] = self.kind_of(path)
        return kind

    def __call__(self, path: str) -> catalog.Kind:
        return self[path]


_T = TypeVar("_T")


def _runs(items: list[_T], key: Callable[[_T], Any]) -> Iterator[list[_T]]:
    """Consecutive runs of ``items`` with equal ``key``."""
    start = 0
    while start < len(items):
        stop = start + 1
        first = key(items[start])
        while stop < len(items) and key(items[stop]) == first:
            stop += 1
        yield items[start:stop]
        start = stop


def _rollup_raw_series(parts: list[Part], width: Interval, kinds: _KindCache) -> list[Row]:
    """The fast path: a series of raw rows only, bucket by bucket."""
    width_us = width.seconds * 1_000_000
    out: list[Row] = []
    for bucket in _runs(parts, lambda p: bucket_start_ticks(p.micros, width_us)):
        times = [p.micros / 1_000_000 for p in bucket]
        flats = [p.values for p in bucket]
        leaves: dict[str, LeafStats] = {}
        for path in dict.fromkeys(chain.from_iterable(flats)):
            column = [flat.get(path) for flat in flats]
            if None in column:  # the leaf is missing from some rows
                present = [i for i, value in enumerate(column) if value is not None]
                values, at = [flats[i][path] for i in present], [times[i] for i in present]
            else:
                values, at = column, times  # type: ignore[assignment]
            leaf = LeafStats(len(values), values[0], values[-1], at[0], at[-1])
            if kinds[path] == "counter":
                _raw_counter(leaf, values, at)
            else:
                leaf.sum, leaf.min, leaf.max = sum(values), min(values), max(values)
            leaves[path] = leaf
        doc = rollup_document(
            leaves,
            labels=strip_metrics(bucket[-1].doc),  # the latest row (ties: the later row)
            interval_seconds=width.seconds,
            samples=len(bucket),
            kind_of=kinds,
        )
        start = EPOCH + timedelta(microseconds=bucket_start_ticks(bucket[0].micros, width_us))
        out.append((start, bucket[0].metric_type, doc))
    return out


def _raw_counter(leaf: LeafStats, values: list[float], times: list[float]) -> None:
    """Internal steps between consecutive raw samples (equal times: no step)."""
    leaf.increase = 0.0
    for i in range(1, len(values)):
        if times[i] > times[i - 1]:
            increase, reset, rate = _step(values[i - 1], values[i], times[i] - times[i - 1])
            leaf.increase += increase
            leaf.resets += reset
            leaf.max_rate = _nanmax(leaf.max_rate, rate)


def _rollup_series(parts: list[RowStats], width: Interval, kind_of: KindOf) -> list[Row]:
    """The general path: the fold of the module docstring over raw and rolled-up parts."""
    width_us = width.seconds * 1_000_000
    buckets = [bucket_start_ticks(epoch_microseconds(p.timestamp), width_us) for p in parts]
    links = _counter_links(parts, buckets, kind_of)
    out: list[Row] = []
    start = 0
    while start < len(parts):
        stop = start
        while stop < len(parts) and buckets[stop] == buckets[start]:
            stop += 1
        merged = _merge_bucket(parts, range(start, stop), buckets[start], links, kind_of)
        latest = max(range(start, stop), key=lambda i: (parts[i].end, i))
        doc = rollup_document(
            merged,
            labels=parts[latest].labels,
            interval_seconds=max(width.seconds, *(p.interval_seconds for p in parts[start:stop])),
            samples=sum(p.samples for p in parts[start:stop]),
            kind_of=kind_of,
        )
        ts = EPOCH + timedelta(microseconds=buckets[start])
        out.append((ts, parts[start].metric_type, doc))
        start = stop
    return out


@dataclass(slots=True)
class _Link:
    """What one part of a counter series brings in the time-ordered fold."""

    own: bool  # its internal statistics count
    increase: float = 0.0
    reset: int = 0
    rate: float = math.nan
    from_bucket: int | None = None  # bucket of the sample the step starts from


def _step(previous: float, value: float, seconds: float) -> tuple[float, int, float]:
    delta = value - previous
    increase, reset = (delta, 0) if delta >= 0 else (value, 1)
    return increase, reset, increase / seconds


def _counter_links(
    parts: list[RowStats], buckets: list[int], kind_of: KindOf
) -> dict[tuple[str, int], _Link]:
    """The fold of the module docstring for every counter leaf of one series."""
    by_leaf: dict[str, list[int]] = {}
    for index, part in enumerate(parts):
        for path in part.leaves:
            if kind_of(path) == "counter":
                by_leaf.setdefault(path, []).append(index)
    links: dict[tuple[str, int], _Link] = {}
    for path, indexes in by_leaf.items():
        stats = {i: parts[i].leaves[path] for i in indexes}
        indexes.sort(key=lambda i: (stats[i].first_time, stats[i].last_time, i))
        seen: tuple[float, float, int] | None = None  # (time, value, bucket)
        for i in indexes:
            s = stats[i]
            if seen is None:
                link = _Link(own=True)
            elif s.first_time > seen[0]:
                inc, reset, rate = _step(seen[1], s.first, s.first_time - seen[0])
                link = _Link(True, inc, reset, rate, seen[2])
            elif s.last_time > seen[0]:
                inc, reset, rate = _step(seen[1], s.last, s.last_time - seen[0])
                link = _Link(False, inc, reset, rate, seen[2])
            else:
                link = _Link(own=False)
            links[path, i] = link
            if seen is None or s.last_time >= seen[0]:
                seen = (s.last_time, s.last, buckets[i])
    return links


def _merge_bucket(
    parts: list[RowStats],
    indexes: range,
    bucket: int,
    links: Mapping[tuple[str, int], _Link],
    kind_of: KindOf,
) -> dict[str, LeafStats]:
    merged: dict[str, LeafStats] = {}
    for i in indexes:
        for path, s in parts[i].leaves.items():
            m = merged.get(path)
            if m is None:
                m = merged[path] = LeafStats(0, s.first, s.last, s.first_time, s.last_time)
                if kind_of(path) == "counter":
                    m.increase = 0.0
                else:
                    m.sum, m.min, m.max = 0.0, s.min, s.max
            m.count += s.count
            if s.first_time < m.first_time:
                m.first, m.first_time = s.first, s.first_time
            if s.last_time >= m.last_time:
                m.last, m.last_time = s.last, s.last_time
            if kind_of(path) == "counter":
                _merge_counter(m, s, links[path, i], bucket)
            else:
                m.sum += s.sum
                m.min = min(m.min, s.min)
                m.max = max(m.max, s.max)
    return merged


def _merge_counter(m: LeafStats, s: LeafStats, link: _Link, bucket: int) -> None:
    if link.own:
        m.increase += s.increase
        m.resets += s.resets
        m.max_rate = _nanmax(m.max_rate, s.max_rate)
    if link.from_bucket == bucket:
        m.increase += link.increase
        m.resets += link.reset
        m.max_rate = _nanmax(m.max_rate, link.rate)


def _nanmax(a: float, b: float) -> float:
    if math.isnan(a):
        return b
    if math.isnan(b):
        return a
    return max(a, b)


def rollup_document(
    leaves: Mapping[str, LeafStats],
    *,
    labels: Mapping[str, Any],
    interval_seconds: int,
    samples: int,
    kind_of: KindOf = catalog.kind_of,
) -> dict[str, Any]:
    """The rolled-up document of one bucket (docs/design.md §4), from its merged statistics.

    ``labels`` (a nested label-only document, see ``documents.strip_metrics``) is deep
    copied; a metric path where the labels hold something else replaces it. When malformed
    snapshots made one path both a leaf and the parent of leaves in this bucket (``"a"`` and
    ``"a.b"``), one document cannot hold both: the leaves below are left out, with a warning
    (the archive, when enabled, keeps the original snapshots). Raises
    :class:`InvalidSnapshot` when a statistic is not finite (a sum overflowing a float),
    since JSON cannot store it.
    """
    meta: dict[str, Any] = {"interval": str(Interval(interval_seconds)), "samples": samples}
    meta.update({stat: {} for stat in LEAF_STATS})
    doc = copy.deepcopy(dict(labels))
    below = shadowed(leaves)
    if below:
        log.warning(
            "Left out of a rolled-up bucket (%s of %s): %s, each below another leaf of the "
            "same bucket (snapshots disagree on the document's shape)",
            ", ".join(f"{k}={v}" for k, v in labels.items() if not isinstance(v, dict)) or "-",
            Interval(interval_seconds),
            ", ".join(sorted(below)),
        )
    for path, s in leaves.items():
        if path in below:
            continue
        counter = kind_of(path) == "counter"
        for stat in COUNTER_STATS if counter else GAUGE_STATS:
            value = getattr(s, stat)
            if stat in INT_STATS:
                value = int(value)
            elif math.isnan(value):
                continue  # max_rate of fewer than two samples
            else:
                value = float(value)  # not a numpy scalar
                if not math.isfinite(value):
                    msg = (
                        f"The {stat} of leaf {path!r} is {value} (its values overflow a "
                        "float); JSON cannot store it. Keep leaves in units that fit."
                    )
                    raise InvalidSnapshot(msg)
            set_path(meta[stat], path, value)
        set_path(doc, path, float(s.last if counter else s.sum / s.count), replace=True)
    # "count" is always there (it lists the leaves); the other maps only when not empty.
    doc[ROLLUP_KEY] = {k: v for k, v in meta.items() if v != {} or k == "count"}
    return doc
