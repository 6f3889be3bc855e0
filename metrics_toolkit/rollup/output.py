"""User-facing output of the rollup rule on frames: columns, documents and coverage.

Takes the stats frames of :mod:`metrics_toolkit.rollup.frame` (read its docstring for the
frame shapes) and turns them into what users and the archive runner need:
:func:`finalize` (mean, min, max, ... columns), :func:`to_snapshot_docs` (rolled-up rows
to store) and :func:`coverage` (samples received vs expected per bucket, gaps included).
No function modifies its input.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from metrics_toolkit import catalog
from metrics_toolkit.documents import set_path
from metrics_toolkit.errors import InvalidSnapshot, MetricsToolkitError
from metrics_toolkit.intervals import Interval, epoch_microseconds
from metrics_toolkit.rollup.arrays import (
    FloatArray,
    IntArray,
    Layout,
    counter_fold,
    floor_ticks,
    layout,
    ticks_per_second,
    to_microseconds,
)
from metrics_toolkit.rollup.frame import pool_stats
from metrics_toolkit.rollup.rule import EPOCH, LEAF_STATS, KindOf, LeafStats, Row, rollup_document
from metrics_toolkit.rollup.stats import (
    ROW_METRIC,
    column_of,
    metrics_of,
    present_mask,
    stats_for,
    stats_frame,
)

#: Statistics ``finalize`` can return.
FINAL_STATS = (
    "mean",
    "min",
    "max",
    "sum",
    "count",
    "first",
    "last",
    "increase",
    "resets",
    "max_rate",
)


def finalize(
    data: pd.DataFrame | Iterable[Row],
    stats: Sequence[str] = ("mean",),
    *,
    pool: str | None = None,
    kind_of: KindOf = catalog.kind_of,
) -> pd.DataFrame:
    """User-facing columns from a stats frame (or a value frame, or rows).

    ``stats`` are taken from :data:`FINAL_STATS`:

    - ``mean`` = ``sum / count`` (sample-weighted) for gauges and rates; for counters the
      last value (what a rolled-up document's leaf holds; a counter has no mean);
    - ``min``, ``max``, ``sum``: gauges and rates (``NaN`` for counters);
    - ``count``: samples holding the leaf (0 where missing); ``first``, ``last``;
    - ``increase``, ``resets``, ``max_rate``: counters (``NaN`` for gauges), *presented*:
      each row also counts the boundary step from the series' previous sample (in the
      previous row), so the increases of consecutive rows sum to the total increase. The
      first row of each series has no previous row in the frame and shows only its
      internal increase.

    ``pool`` names a key level (``"host"``) whose series are pooled: each series' counters
    are presented on their own first, then the rows of one bucket are merged by the
    pooling law (:func:`metrics_toolkit.rollup.frame.pool_stats`: counts, sums, increases
    and resets add, min of mins, max of maxes, the highest ``max_rate``, the mean
    sample-weighted, ``first``/``last`` by time with ties broken by the label, then row
    order); the level leaves the index. A counter's ``mean`` stays its pooled ``last``.

    One stat gives one column per metric path; several give ``(metric, stat)`` columns.
    The index is the input's (keys..., timestamp).
    """
    wanted = list(stats)
    bad = [s for s in wanted if s not in FINAL_STATS]
    if bad or not wanted:
        name = bad[0] if bad else "(none)"
        msg = f"Unknown statistic {name!r}: choose from {', '.join(FINAL_STATS)}."
        raise MetricsToolkitError(msg)
    frame = stats_frame(data, kind_of=kind_of)
    if pool is not None:  # present each series' counters, then merge the series
        frame = pool_stats(_with_presented(frame, kind_of), level=pool, kind_of=kind_of)
    rows = layout(frame.index)
    out: dict[Any, Any] = {}
    nan = np.full(len(frame), np.nan)
    for path in metrics_of(frame):
        counter = kind_of(path) == "counter"
        column = {stat: column_of(frame, path, stat) for stat in LEAF_STATS}
        if counter and pool is None and {"increase", "resets", "max_rate"} & set(wanted):
            column.update(_presented(rows, column))
        column["count"] = np.nan_to_num(column["count"], nan=0.0)
        if counter:
            column.update(mean=column["last"], sum=nan, min=nan, max=nan)
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                column["mean"] = column["sum"] / column["count"]
            column.update(increase=nan, resets=nan, max_rate=nan)
        for stat in wanted:
            out[path if len(wanted) == 1 else (path, stat)] = column[stat]
    result = pd.DataFrame(out, index=frame.index, dtype=np.float64)
    if len(wanted) > 1:
        result.columns = pd.MultiIndex.from_tuples(list(out), names=["metric", "stat"])
    else:
        result.columns.name = "metric"
    return result


def _with_presented(frame: pd.DataFrame, kind_of: KindOf) -> pd.DataFrame:
    """A sorted stats frame with every counter's increase, resets and max_rate presented."""
    rows = layout(frame.index)
    out = frame.copy()
    for path in metrics_of(frame):
        if kind_of(path) == "counter":
            column = {stat: column_of(frame, path, stat) for stat in LEAF_STATS}
            for stat, values in _presented(rows, column).items():
                out[path, stat] = values
    return out


def _presented(rows: Layout, column: dict[str, FloatArray]) -> dict[str, FloatArray]:
    present = np.flatnonzero(present_mask(column["count"], column["first_time"]))
    fold = counter_fold(
        rows.series[present],
        present,
        column["first_time"][present],
        column["last_time"][present],
        column["first"][present],
        column["last"][present],
    )
    out = {stat: np.full(len(rows.order), np.nan) for stat in ("increase", "resets", "max_rate")}
    own = fold.own
    out["increase"][present] = np.where(own, column["increase"][present], 0.0) + fold.increase
    out["resets"][present] = np.where(own, column["resets"][present], 0.0) + fold.reset
    out["max_rate"][present] = np.fmax(
        np.where(own, column["max_rate"][present], np.nan), fold.rate
    )
    return out


def to_snapshot_docs(
    data: pd.DataFrame,
    *,
    metric_type: str = "aggregated",
    kind_of: KindOf = catalog.kind_of,
) -> list[Row]:
    """Stats frame rows as snapshot rows ``(timestamp, metric_type, doc)``, ordered.

    A row with an interval (a resampled bucket) becomes a rolled-up document (docs/design.md
    §4, see ``rollup.rollup_document``); a raw row (interval 0, one sample) becomes a raw
    document again. Labels come from the ``("_rollup", "labels")`` column when present;
    a ``host`` index level adds the ``host`` label. ``metric_type`` is used when the index
    has no ``metric_type`` level. The archive runner writes these rows.
    """
    frame = stats_frame(data, kind_of=kind_of)
    rows = layout(frame.index)
    metrics = metrics_of(frame)
    kinds = {path: kind_of(path) for path in metrics}
    columns = {
        (path, stat): column_of(frame, path, stat)
        for path in metrics
        for stat in stats_for(kinds[path])
    }
    samples = frame[ROW_METRIC, "samples"].to_numpy(dtype=np.float64)
    intervals = frame[ROW_METRIC, "interval"].to_numpy(dtype=np.float64)
    has_labels = (ROW_METRIC, "labels") in frame.columns
    labels = frame[ROW_METRIC, "labels"].to_numpy(dtype=object) if has_labels else None
    key_of = dict(zip(rows.keys, rows.key_values, strict=True))
    micros = to_microseconds(rows.ticks, rows.unit)
    out: list[Row] = []
    for i in range(len(frame)):
        leaves: dict[str, LeafStats] = {}
        for path in metrics:
            count = columns[path, "count"][i]
            if not count > 0:
                continue
            values = {stat: columns[path, stat][i] for stat in stats_for(kinds[path])}
            leaf = LeafStats(
                int(count),
                values["first"],
                values["last"],
                values["first_time"],
                values["last_time"],
            )
            if kinds[path] == "counter":
                leaf.increase, leaf.resets = values["increase"], int(values["resets"])
                leaf.max_rate = values["max_rate"]
            else:
                leaf.sum, leaf.min, leaf.max = values["sum"], values["min"], values["max"]
            leaves[path] = leaf
        label = labels[i] if labels is not None and isinstance(labels[i], dict) else {}
        host = key_of["host"][i] if "host" in key_of else ""
        if host and "host" not in label:
            label = {**label, "host": host}
        ts = EPOCH + timedelta(microseconds=int(micros[i]))
        kind_type = str(key_of["metric_type"][i]) if "metric_type" in key_of else metric_type
        out.append((ts, kind_type, _document(leaves, label, intervals[i], samples[i], kind_of)))
    return out


def _document(
    leaves: dict[str, LeafStats],
    labels: dict[str, Any],
    interval: float,
    samples: float,
    kind_of: KindOf,
) -> dict[str, Any]:
    if interval > 0:
        return rollup_document(
            leaves,
            labels=labels,
            interval_seconds=int(interval),
            samples=int(samples),
            kind_of=kind_of,
        )
    if samples != 1 or any(leaf.count != 1 for leaf in leaves.values()):
        msg = (
            "A stats row without an interval must be one raw sample; resample it "
            "(resample_stats) before turning it into a document."
        )
        raise InvalidSnapshot(msg)
    doc = copy.deepcopy(labels)
    for path, leaf in leaves.items():
        set_path(doc, path, float(leaf.last), replace=True)
    return doc


def coverage(
    data: pd.DataFrame,
    sample_interval: str | Interval | timedelta,
    *,
    interval: str | Interval | timedelta | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """Samples received vs expected per bucket, including empty buckets (gaps).

    ``data`` is a stats frame (for example from :func:`resample_stats`); ``interval`` is the
    bucket width (default: the frame's widest ``_rollup.interval``); ``sample_interval`` the
    collection interval (such as ``"10s"``). For each series the bucket grid runs from
    ``start`` (default: its first bucket) to before ``end`` (default: after its last
    bucket). Returns columns ``samples`` (raw snapshots), ``expected`` (``interval /
    sample_interval``) and ``ratio``; a gap shows as ``samples == 0``.
    """
    frame = stats_frame(data)
    rows = layout(frame.index)
    samples = frame[ROW_METRIC, "samples"].to_numpy(dtype=np.float64)
    if interval is None and not len(frame):
        interval = "1s"  # no rows, no buckets: any width gives the same empty answer
    if interval is None:
        widest = frame[ROW_METRIC, "interval"].max()
        if not widest > 0:
            msg = "coverage needs buckets: pass interval=..., or resample the frame first."
            raise MetricsToolkitError(msg)
        interval = Interval(int(widest))
    width = Interval.parse(interval)
    expected = width.seconds / Interval.parse(sample_interval).seconds
    step = width.seconds * ticks_per_second(rows.unit)
    buckets = floor_ticks(rows.ticks, width, rows.unit)
    lo_bound = None if start is None else _ticks(start, rows.unit) // step * step
    hi_bound = None if end is None else -(-_ticks(end, rows.unit) // step) * step
    series_starts: list[int] = np.flatnonzero(np.diff(rows.series, prepend=-1)).tolist()
    positions: list[IntArray] = []
    grids: list[IntArray] = []
    counts: list[FloatArray] = []
    series_stops = [*series_starts[1:], len(frame)] if series_starts else []
    for first, stop in zip(series_starts, series_stops, strict=True):
        lo = buckets[first] if lo_bound is None else lo_bound
        hi = buckets[stop - 1] + step if hi_bound is None else hi_bound
        grid = np.arange(lo, hi, step, dtype=np.int64)
        received = pd.Series(samples[first:stop]).groupby(buckets[first:stop]).sum()
        counts.append(received.reindex(grid, fill_value=0.0).to_numpy(dtype=np.float64))
        positions.append(np.full(len(grid), first, dtype=np.int64))
        grids.append(grid)
    empty = np.array([], dtype=np.int64)
    index = rows.index_for(np.concatenate([empty, *positions]), np.concatenate([empty, *grids]))
    received_all = np.concatenate([np.array([], dtype=np.float64), *counts])
    return pd.DataFrame(
        {"samples": received_all, "expected": expected, "ratio": received_all / expected},
        index=index,
    )


def _ticks(ts: datetime, unit: str) -> int:
    return epoch_microseconds(ts) * ticks_per_second(unit) // 1_000_000
