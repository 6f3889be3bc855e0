"""The rollup rule on pandas frames: resampling stats frames, value frames and rows.

Same rule as :mod:`metrics_toolkit.rollup.rule` (read its docstring for the semantics), applied
with vectorised groupby operations; tests prove both give equal results.

Frames
    Every frame is indexed by a UTC ``DatetimeIndex`` named ``timestamp``, or by a
    ``MultiIndex`` of key levels ending with ``timestamp`` (such as ``host``,
    ``metric_type``, ``timestamp``). Key levels name series that are never merged.

    - A *value frame* has one float column per dotted metric path: one raw sample per row
      (``NaN`` where the leaf is missing). ``load_frame`` at full resolution returns one.
    - A *stats frame* has ``(metric, stat)`` columns holding each row's mergeable
      statistics (``rollup.GAUGE_STATS`` or ``rollup.COUNTER_STATS`` by the leaf's kind;
      ``count`` is ``NaN`` where the leaf is missing) plus row columns under the reserved
      metric ``"_rollup"``: ``samples`` (raw snapshots merged), ``interval`` (seconds, 0 for
      raw rows) and, when built from documents, ``labels`` (the nested label document).

Pipeline
    ``stats_frame(rows or frame)`` (built in :mod:`metrics_toolkit.rollup.stats`, exported
    here too) -> ``resample_stats(stats, "1h")`` -> then, in
    :mod:`metrics_toolkit.rollup.output`, ``finalize(stats, ("mean", "max"))`` for
    user-facing columns, ``to_snapshot_docs(stats)`` for rolled-up rows to store, or
    ``coverage(stats, "10s")``. ``resample_stats`` also takes a value frame directly (the
    fast path: no per-sample statistics are materialised). No function modifies its input.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from metrics_toolkit import catalog
from metrics_toolkit.documents import strip_metrics
from metrics_toolkit.errors import MetricsToolkitError
from metrics_toolkit.intervals import Interval
from metrics_toolkit.rollup.arrays import (
    FloatArray,
    IntArray,
    Layout,
    bucket_ids,
    bucket_starts,
    counter_fold,
    floor_ticks,
    layout,
)
from metrics_toolkit.rollup.rule import COUNTER_STATS, GAUGE_STATS, KindOf, Row
from metrics_toolkit.rollup.stats import (
    DEFAULT_KEYS,
    POOL_LAW,
    ROW_METRIC,
    checked_stats,
    column_of,
    float_values,
    is_stats_frame,
    make_frame,
    metrics_of,
    parts_frame,
    parts_index,
    present_mask,
    read_keyed,
    stats_frame,
    value_matrix,
)

# stats_frame and friends live in rollup_stats; they are part of this module's API too.
__all__ = [
    "DEFAULT_KEYS",
    "ROW_METRIC",
    "bucket_starts",
    "is_stats_frame",
    "metrics_of",
    "pool_stats",
    "resample_stats",
    "stats_frame",
]


# --------------------------------------------------------------------------------------
# Resampling


def resample_stats(
    data: pd.DataFrame | Iterable[Row],
    interval: str | Interval | timedelta,
    *,
    keys: Sequence[str] = DEFAULT_KEYS,
    kind_of: KindOf = catalog.kind_of,
) -> pd.DataFrame:
    """Apply the rollup rule: merge rows into epoch-aligned buckets of ``interval``.

    ``data`` is a value frame (fast path), a stats frame, or rows ``(timestamp,
    metric_type, doc)`` (indexed by ``keys`` as in :func:`stats_frame`; when all rows are
    raw they take the value-frame path and only each bucket's latest document is read for
    labels). Series are what the key levels tell apart: leaving ``host`` out of ``keys``
    merges hosts, which is fine for gauges but folds counters of different hosts into one
    sequence (meaningless): keep ``host`` and pool the buckets with :func:`pool_stats`
    (or ``rollup.output.finalize(..., pool="host")``).
    Returns a stats frame with one row per (keys..., bucket) that
    holds data, labelled by bucket start (pandas' ``resample(w, origin="epoch",
    closed="left", label="left")``, done with integer bucketing). Empty buckets are not
    invented; sparse ones are kept (see :func:`coverage`). To merge a value frame with a
    stats frame, resample each and concatenate the results (``pd.concat``), then
    resample again: merging is associative.
    """
    width = Interval.parse(interval)
    # Huge values may overflow a sum to inf: that is the answer (documents refuse it with
    # a clear error), not a warning.
    with np.errstate(over="ignore"):
        if not isinstance(data, pd.DataFrame):
            return _resample_rows(data, width, tuple(keys), kind_of)
        if is_stats_frame(data):
            return _resample_stats(data, width, kind_of)
        return _resample_values(data, width, kind_of)


def _resample_rows(
    rows: Iterable[Row], width: Interval, keys: tuple[str, ...], kind_of: KindOf
) -> pd.DataFrame:
    parts = read_keyed(rows, keys, kind_of)
    if any(p.stats is not None for p in parts):
        return _resample_stats(parts_frame(parts, keys, kind_of), width, kind_of)
    # Raw rows only (the common case): resample their values directly and strip the
    # labels of each bucket's latest row only.
    values, paths = value_matrix([p.values for p in parts])
    frame = pd.DataFrame(values, index=parts_index(parts, keys), columns=paths, copy=False)
    docs = np.empty(len(parts), dtype=object)
    docs[:] = [p.doc for p in parts]
    return _resample_values(frame, width, kind_of, docs=docs)


class _Groups:
    """Rows of a sorted frame grouped by (series, bucket)."""

    def __init__(self, rows: Layout, width: Interval | None) -> None:
        """``width=None`` groups equal timestamps (rows that are buckets already)."""
        self.rows = rows
        self.buckets = rows.ticks if width is None else floor_ticks(rows.ticks, width, rows.unit)
        self.ids, self.starts = bucket_ids(rows.series, self.buckets)

    @property
    def stops(self) -> IntArray:
        """One past the last row of each group."""
        out: IntArray = np.r_[self.starts[1:], len(self.ids)][: len(self.starts)]
        return out

    def index(self) -> pd.Index:
        return self.rows.index_for(self.starts, self.buckets[self.starts])

    def by(self, values: Any) -> Any:
        return pd.DataFrame(values, copy=False).groupby(self.ids, sort=False)

    def law(self, values: FloatArray, how: str) -> FloatArray:
        """One column merged per group by ``how`` (``"sum"``, ``"min"``, ``"max"``)."""
        by = pd.Series(values, copy=False).groupby(self.ids, sort=False)
        merged = by.sum(min_count=1) if how == "sum" else by.agg(how)
        return np.asarray(merged.to_numpy(dtype=np.float64), dtype=np.float64)


def _resample_values(
    frame: pd.DataFrame, width: Interval, kind_of: KindOf, *, docs: Any = None
) -> pd.DataFrame:
    """Resample a value frame; ``docs`` (aligned with its rows) adds each bucket's labels."""
    groups = _Groups(layout(frame.index), width)
    values = float_values(frame)[groups.rows.order]
    seconds = groups.rows.seconds
    missing = np.isnan(values)
    by_values = groups.by(values)
    computed = {
        "count": by_values.count().to_numpy(dtype=np.float64, copy=True),
        "sum": by_values.sum(min_count=1).to_numpy(),
        "min": by_values.min().to_numpy(),
        "max": by_values.max().to_numpy(),
        "first": by_values.first().to_numpy(),
        "last": by_values.last().to_numpy(),
    }
    computed["count"][computed["count"] == 0] = np.nan
    # Rows are in time order within a group: a leaf present in every row has its first and
    # last times at the group's ends; only leaves with gaps need a groupby over times.
    n_groups = len(groups.starts)
    computed["first_time"] = np.repeat(seconds[groups.starts, None], values.shape[1], axis=1)
    computed["last_time"] = np.repeat(seconds[groups.stops - 1, None], values.shape[1], axis=1)
    gappy = np.flatnonzero(missing.any(axis=0))
    if len(gappy) and n_groups:
        times = np.where(missing[:, gappy], np.nan, seconds[:, None])
        by_times = groups.by(times)
        computed["first_time"][:, gappy] = by_times.min().to_numpy()
        computed["last_time"][:, gappy] = by_times.max().to_numpy()
    data: dict[tuple[str, str], Any] = {}
    for j, name in enumerate(frame.columns):
        path = str(name)
        if kind_of(path) == "counter":
            column = values[:, j]
            zeros = np.where(np.isnan(column), np.nan, 0.0)
            own = {"increase": zeros, "resets": zeros, "max_rate": np.full(len(column), np.nan)}
            present = np.where(np.isnan(column), np.nan, 1.0)
            at = np.where(np.isnan(column), np.nan, seconds)
            merged = _merge_counter(groups, present, column, column, at, at, own)
            for stat in COUNTER_STATS:
                data[path, stat] = merged[stat] if stat in merged else computed[stat][:, j]
        else:
            for stat in GAUGE_STATS:
                data[path, stat] = computed[stat][:, j]
    data[ROW_METRIC, "samples"] = (groups.stops - groups.starts).astype(float)
    data[ROW_METRIC, "interval"] = np.full(len(groups.starts), float(width.seconds))
    if docs is not None:
        # rows are in time order within a group: its last row is the latest one
        latest = groups.rows.order[groups.stops - 1]
        labels = np.empty(len(latest), dtype=object)
        labels[:] = [strip_metrics(docs[i]) for i in latest]
        data[ROW_METRIC, "labels"] = labels
    return make_frame(data, groups.index())


def pool_stats(
    stats: pd.DataFrame, *, level: str = "host", kind_of: KindOf = catalog.kind_of
) -> pd.DataFrame:
    """Pool the series the ``level`` key tells apart (hosts): the law of :data:`POOL_LAW`.

    ``stats`` holds buckets (a stats frame from :func:`resample_stats`) whose counters'
    ``increase``, ``resets`` and ``max_rate`` are already *presented* per series (each
    counted from its own previous sample: ``rollup.output.finalize(..., pool=level)`` does
    that first); a counter is never folded across series. Returns one row per (other
    keys..., bucket start) merging the rows of every ``level`` value: counts, sums,
    increases and resets add; min of mins, max of maxes, the highest ``max_rate``;
    ``first``/``last`` the values at the earliest/latest sample time, ties broken by the
    ``level`` label (``first``: the lowest, ``last``: the highest), then by each series' own
    row order (row time, then id: the order rows are read in). The mean (``sum / count``)
    is thus sample-weighted.
    """
    checked = checked_stats(stats, kind_of)  # rows by (level..., keys, time): ties by label
    if level not in checked.index.names:
        msg = f"Cannot pool over {level!r}: the frame's index levels are {checked.index.names}."
        raise MetricsToolkitError(msg)
    with np.errstate(over="ignore"):
        return _resample_stats(checked.droplevel(level), None, kind_of, pool=True)


def _resample_stats(
    stats: pd.DataFrame, width: Interval | None, kind_of: KindOf, *, pool: bool = False
) -> pd.DataFrame:
    """Merge the rows of each (keys..., bucket); ``pool``: rows of separate series, whose
    counters add by :data:`POOL_LAW` instead of folding in time order."""
    stats = checked_stats(stats, kind_of)
    groups = _Groups(layout(stats.index), width)
    metrics = metrics_of(stats)
    if metrics:
        wide = {stat: stats.xs(stat, axis=1, level="stat") for stat in COUNTER_STATS[:5]}
        wide = {stat: frame.reindex(columns=metrics) for stat, frame in wide.items()}
        count = groups.by(wide["count"].to_numpy()).sum(min_count=1).to_numpy()
        first_time = wide["first_time"].to_numpy()
        last_time = wide["last_time"].to_numpy()
        by_first, by_last = groups.by(first_time), groups.by(last_time)
        earliest = by_first.transform("min").to_numpy()
        latest = by_last.transform("max").to_numpy()
        first = groups.by(np.where(first_time == earliest, wide["first"], np.nan)).first()
        last = groups.by(np.where(last_time == latest, wide["last"], np.nan)).last()
        common = {
            "count": count,
            "first": first.to_numpy(),
            "last": last.to_numpy(),
            "first_time": by_first.min().to_numpy(),
            "last_time": by_last.max().to_numpy(),
        }
    data: dict[tuple[str, str], Any] = {}
    for j, path in enumerate(metrics):
        if kind_of(path) == "counter" and pool:
            for stat in COUNTER_STATS:
                data[path, stat] = (
                    common[stat][:, j]
                    if stat in common
                    else groups.law(column_of(stats, path, stat), POOL_LAW[stat])
                )
            continue
        if kind_of(path) == "counter":
            own = {stat: stats[path, stat].to_numpy() for stat in ("increase", "resets")}
            own["max_rate"] = column_of(stats, path, "max_rate")
            merged = _merge_counter(
                groups,
                wide["count"].to_numpy()[:, j],
                wide["first"].to_numpy()[:, j],
                wide["last"].to_numpy()[:, j],
                first_time[:, j],
                last_time[:, j],
                own,
            )
            for stat in COUNTER_STATS:
                data[path, stat] = merged[stat] if stat in merged else common[stat][:, j]
            continue
        by_path = groups.by(stats[path][["sum", "min", "max"]].to_numpy(dtype=np.float64))
        own_stats = {
            "sum": by_path.sum(min_count=1).to_numpy()[:, 0],
            "min": by_path.min().to_numpy()[:, 1],
            "max": by_path.max().to_numpy()[:, 2],
        }
        for stat in GAUGE_STATS:
            data[path, stat] = own_stats[stat] if stat in own_stats else common[stat][:, j]
    row = groups.by(stats[ROW_METRIC][["samples", "interval"]].to_numpy(dtype=np.float64))
    data[ROW_METRIC, "samples"] = row.sum().to_numpy()[:, 0]
    data[ROW_METRIC, "interval"] = np.maximum(
        row.max().to_numpy()[:, 1], 0 if width is None else width.seconds
    )
    if (ROW_METRIC, "labels") in stats.columns:
        data[ROW_METRIC, "labels"] = _latest_labels(stats, groups, metrics)
    return make_frame(data, groups.index())


def _merge_counter(
    groups: _Groups,
    count: FloatArray,
    first: FloatArray,
    last: FloatArray,
    first_time: FloatArray,
    last_time: FloatArray,
    own: dict[str, FloatArray],
) -> dict[str, FloatArray]:
    """Internal increase, resets and max_rate per group of one counter leaf."""
    rows = np.flatnonzero(present_mask(count, first_time))
    ids = groups.ids[rows]
    fold = counter_fold(
        groups.rows.series[rows], ids, first_time[rows], last_time[rows], first[rows], last[rows]
    )
    same = fold.link & (fold.from_group == ids)
    increase = np.where(fold.own, own["increase"][rows], 0.0) + np.where(same, fold.increase, 0)
    resets = np.where(fold.own, own["resets"][rows], 0.0) + (same & fold.reset)
    rate = np.fmax(
        np.where(fold.own, own["max_rate"][rows], np.nan), np.where(same, fold.rate, np.nan)
    )
    n = len(groups.starts)
    has = np.bincount(ids, minlength=n) > 0
    return {
        "increase": np.where(has, np.bincount(ids, weights=increase, minlength=n), np.nan),
        "resets": np.where(has, np.bincount(ids, weights=resets, minlength=n), np.nan),
        "max_rate": pd.Series(rate).groupby(ids).max().reindex(range(n)).to_numpy(),
    }


def _latest_labels(stats: pd.DataFrame, groups: _Groups, metrics: list[str]) -> Any:
    """The labels of each group's latest row (latest sample; ties: the later row)."""
    if metrics:
        last_time = stats.xs("last_time", axis=1, level="stat").max(axis=1, skipna=True)
        end = np.where(last_time.isna(), groups.rows.seconds, last_time.to_numpy())
    else:
        end = groups.rows.seconds
    latest = groups.by(end).transform("max").to_numpy()[:, 0]
    labels = stats[ROW_METRIC, "labels"].to_numpy(dtype=object)
    masked = pd.Series(np.where(end == latest, labels, None), dtype=object)
    out = masked.groupby(groups.ids, sort=False).last().reindex(range(len(groups.starts)))
    return np.array([v if isinstance(v, dict) else {} for v in out], dtype=object)
