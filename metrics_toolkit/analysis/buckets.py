"""Bucket frames: the detail frame, its row widths, and its merge into coarser buckets.

A *bucket frame* is indexed by ``(host, timestamp)`` (bucket starts, UTC) and has
``(metric, stat)`` columns ``sum``, ``count``, ``min``, ``max`` and ``mean`` per metric,
plus the row column ``("_row", "seconds")``: how much time the row stands for. That is the
bucket width, except for stored rollups coarser than the bucket width (``load_frame``
returns those at their stored width, one point per stored bucket; nothing is invented).

Merging into coarser buckets follows the rollup rule (docs/design.md §3): epoch-aligned buckets,
counts and sums add, min of mins, max of maxes; the mean is ``sum / count``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np
import numpy.typing as npt
import pandas as pd

from metrics_toolkit.analysis.reads import RolledRow
from metrics_toolkit.intervals import Interval, bucket_start
from metrics_toolkit.rollup.arrays import floor_ticks
from metrics_toolkit.rollup.stats import metrics_of as stats_metrics_of

ROW = "_row"
SECONDS = (ROW, "seconds")
STATS = ("sum", "count", "min", "max")
Floats = npt.NDArray[np.float64]


#: The metric paths of a bucket frame, in column order (its row column is ``_row``).
metrics_of = partial(stats_metrics_of, row_column=ROW)


def with_widths(
    loaded: pd.DataFrame, width: Interval, rolled: Sequence[RolledRow] = ()
) -> pd.DataFrame:
    """A bucket frame from ``load_frame(..., stats=STATS, by_host=True)`` output.

    Adds ``mean`` per metric and the row width: ``width``, or the stored width of a
    rolled-up row coarser than ``width`` that starts in the bucket. Rows without any
    sample of any metric are dropped. The input is not modified.
    """
    frame = loaded.copy()
    metrics = metrics_of(frame)
    counts = frame.xs("count", axis=1, level=1) if metrics else pd.DataFrame(index=frame.index)
    if metrics:
        frame = frame.loc[(counts.fillna(0) > 0).any(axis=1).to_numpy()]
    columns = {}
    for metric in metrics:
        for stat in STATS:
            columns[metric, stat] = frame[metric, stat].to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            columns[metric, "mean"] = columns[metric, "sum"] / columns[metric, "count"]
        columns[metric, "count"] = np.nan_to_num(columns[metric, "count"], nan=0.0)
    seconds = np.full(len(frame), float(width.seconds))
    if rolled and len(frame):
        seconds = _rolled_widths(frame.index, seconds, width, rolled)
    columns[SECONDS] = seconds
    out = pd.DataFrame(columns, index=frame.index)
    out.columns = pd.MultiIndex.from_tuples(list(columns), names=["metric", "stat"])
    return out


def _rolled_widths(
    index: pd.Index, seconds: Floats, width: Interval, rolled: Sequence[RolledRow]
) -> Floats:
    coarse = [row for row in rolled if row.seconds > width.seconds]
    if not coarse:
        return seconds
    position = {key: i for i, key in enumerate(index)}
    out = seconds.copy()
    for row in coarse:
        stamp = pd.Timestamp(bucket_start(row.timestamp, width))
        i = position.get((row.host, stamp))
        if i is not None:
            reach = (pd.Timestamp(row.timestamp) - stamp).total_seconds() + row.seconds
            out[i] = max(out[i], reach)
    return out


def samples(frame: pd.DataFrame) -> Floats:
    """Snapshots per row: the largest count of any metric (a snapshot holding any of them)."""
    metrics = metrics_of(frame)
    if not metrics or not len(frame):
        return np.zeros(len(frame))
    counts = np.column_stack([frame[m, "count"].to_numpy(dtype=np.float64) for m in metrics])
    result: Floats = np.nanmax(counts, axis=1)
    return result


def merge(frame: pd.DataFrame, width: Interval) -> pd.DataFrame:
    """Merge a bucket frame into epoch-aligned buckets of ``width`` (the rollup rule)."""
    metrics = metrics_of(frame)
    if not len(frame):
        return frame.copy()
    hosts = frame.index.get_level_values("host")
    stamps = pd.DatetimeIndex(frame.index.get_level_values("timestamp"))
    micros = stamps.as_unit("us").asi8
    starts = floor_ticks(micros, width, "us")
    ends = micros + (frame[SECONDS].to_numpy(dtype=np.float64) * 1e6).astype(np.int64)
    keys = [pd.Index(hosts, name="host"), pd.Index(starts, name="timestamp")]
    data: dict[tuple[str, str], pd.Series] = {}
    for metric in metrics:
        group = frame[metric].groupby(keys, sort=True)
        summed = group[["sum", "count"]].sum(min_count=1)
        data[metric, "sum"] = summed["sum"]
        data[metric, "count"] = summed["count"].fillna(0.0)
        data[metric, "min"] = group["min"].min()
        data[metric, "max"] = group["max"].max()
    reach = pd.Series(ends, index=frame.index).groupby(keys, sort=True).max()
    out = pd.DataFrame(data)
    if not metrics:
        out = pd.DataFrame(index=reach.index)
    for metric in metrics:
        with np.errstate(invalid="ignore", divide="ignore"):
            out[metric, "mean"] = out[metric, "sum"] / out[metric, "count"].replace(0.0, np.nan)
    bucket_us = reach.index.get_level_values("timestamp").to_numpy(dtype=np.int64)
    span = (reach.to_numpy(dtype=np.int64) - bucket_us) / 1e6
    out[SECONDS] = np.maximum(span, float(width.seconds))
    stamps_out = pd.to_datetime(bucket_us, unit="us", utc=True)
    out.index = pd.MultiIndex.from_arrays(
        [reach.index.get_level_values("host"), pd.DatetimeIndex(stamps_out, name="timestamp")],
        names=["host", "timestamp"],
    )
    ordered = [(m, s) for m in metrics for s in (*STATS, "mean")] + [SECONDS]
    out = out[ordered]
    out.columns = pd.MultiIndex.from_tuples(ordered, names=["metric", "stat"])
    return out


__all__ = [
    "ROW",
    "SECONDS",
    "STATS",
    "merge",
    "metrics_of",
    "samples",
    "with_widths",
]
