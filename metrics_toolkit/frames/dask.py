"""The rollup rule over the Parquet archive on Dask: bounded memory, load_frame's numbers.

:func:`load_dask_frame` builds one task per ``date=`` partition of the archive; each reads
that partition only (its columns, its rows in the range) and reduces it to *partial
statistics* per bucket (count, sum, min, max, first, last and their times: a stats frame,
:func:`metrics_toolkit.frames.archive.partition_stats`). Partials are merged by the rollup
rule's merge law (:func:`~metrics_toolkit.frames.archive.merge_stats`, which reuses
:func:`~metrics_toolkit.rollup.frame.resample_stats`), so the numbers equal the pandas path
(``load_frame``), tests prove it on a real ``LocalCluster``.

Output partitions are groups of date partitions whose buckets never cross a group's edge:
one date per group for widths up to a day, the dates of one epoch-aligned bucket for wider
ones. Each group is finalised on its own; counters' presented increases (only they) need
each series' previous sample, which a chain of tiny tasks (the latest statistics per series
and leaf of the groups before) then carries from group to group. A worker thus holds one
date partition and one group's buckets at a time, however many years the archive holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dask.dataframe as dd
import numpy as np
import pandas as pd
from dask.base import compute as dask_compute
from dask.delayed import delayed

from metrics_toolkit import catalog
from metrics_toolkit.archive.location import ArchiveSource, open_archive
from metrics_toolkit.archive.store import ArchiveStore
from metrics_toolkit.errors import InvalidArgument, InvalidInterval
from metrics_toolkit.frames.archive import (
    ArchiveQuery,
    archive_query,
    merge_stats,
    metric_columns,
    partition_stats,
    stats_to_frame,
)
from metrics_toolkit.frames.contract import (
    COUNTER_STATS,
    TIMESTAMP,
    TimeLike,
    check_stats,
    choose_interval,
    notes,
)
from metrics_toolkit.intervals import Interval, bucket_start_ticks
from metrics_toolkit.rollup.frame import ROW_METRIC
from metrics_toolkit.rollup.stats import metrics_of

SECONDS_PER_DAY = 86_400
#: Separator of ``metric`` and ``stat`` in a flat column name (dask has no MultiIndex).
STAT_SEPARATOR = ":"


def load_dask_frame(
    archive: ArchiveSource,
    start: TimeLike = None,
    end: TimeLike = None,
    *,
    metrics: Sequence[str] | None = None,
    metric_type: str = "aggregated",
    host: str | None = None,
    interval: str | Interval | timedelta = "1D",
    stats: Sequence[str] = ("mean",),
    by_host: bool = False,
    compute: bool = False,
) -> dd.DataFrame | pd.DataFrame:
    """Buckets of the archive computed by Dask (on the active ``distributed`` client, if any).

    Parameters as :func:`metrics_toolkit.frames.load.load_frame`, with an ``interval`` always
    (``"auto"`` needs ``start`` and ``end``). ``metrics=None`` takes every float column of
    the range's files (read from their footers; unlike ``load_frame`` a column holding
    only nulls in the range is kept).

    :param compute: ``False`` (default) returns a lazy ``dask.dataframe.DataFrame``
        indexed by bucket start (UTC, ``datetime64[us]``, known divisions: one partition
        per group of dates), ``host`` a column when ``by_host``, and flat column names
        (``"cpu.usage_percent"``, or ``"cpu.usage_percent:max"`` for several stats) since
        dask has no MultiIndex. ``True`` computes it and returns exactly the frame
        ``load_frame`` would (same index, columns and ``attrs``): what a notebook wants
        when the result (buckets) is small, which it is for any sensible width.
    """
    wanted = check_stats(stats)
    store = open_archive(archive)
    query, partitions = archive_query(
        store, start, end, metrics=metrics or (), metric_type=metric_type, host=host,
        by_host=by_host,
    )  # fmt: skip
    if metrics is None:
        files = [f for group in partitions.values() for f in group]
        query = replace(query, metrics=tuple(metric_columns(store, files)))
    width = _width(interval, query)
    groups = _groups(partitions, width)
    frames = _group_tasks(store, query, width, wanted, groups)
    if compute:
        parts = dask_compute(*frames) if frames else []  # type: ignore[no-untyped-call]
        return _concat(list(parts), query, width, wanted)
    meta = flat_frame(stats_to_frame(pd.DataFrame(), query, width, wanted), by_host)
    if not frames:
        return dd.from_pandas(meta, npartitions=1)  # type: ignore[no-untyped-call]
    starts = [_group_start(key, width) for key in groups]
    last = _group_end(list(groups)[-1], width) - timedelta(seconds=width.seconds)
    divisions = [pd.Timestamp(s).as_unit("us") for s in [*starts, max(last, starts[-1])]]
    flats = [delayed(flat_frame)(f, by_host) for f in frames]
    return dd.from_delayed(flats, meta=meta, divisions=tuple(divisions), verify_meta=False)


def _width(interval: str | Interval | timedelta, query: ArchiveQuery) -> Interval:
    if interval == "auto":
        if query.start is None or query.end is None:
            msg = "interval='auto' on Dask needs start and end; or pass a width such as '1D'."
            raise InvalidArgument(msg)
        return choose_interval(query.start, query.end)
    try:
        return Interval.parse(interval)
    except InvalidInterval as error:
        raise InvalidInterval(f"{error} Or use interval='auto'.") from None


def _groups(partitions: dict[date, list[str]], width: Interval) -> dict[int, list[list[str]]]:
    """Date partitions grouped so that no bucket crosses a group (keys in time order)."""
    groups: dict[int, list[list[str]]] = {}
    for day, files in partitions.items():
        seconds = (day - date(1970, 1, 1)).days * SECONDS_PER_DAY
        span = max(width.seconds, SECONDS_PER_DAY)  # widths below a day divide it
        groups.setdefault(bucket_start_ticks(seconds, span), []).append(files)
    return groups


def _group_start(key: int, width: Interval) -> datetime:
    return datetime.fromtimestamp(key, UTC)


def _group_end(key: int, width: Interval) -> datetime:
    return datetime.fromtimestamp(key + max(width.seconds, SECONDS_PER_DAY), UTC)


def _group_tasks(
    store: ArchiveStore,
    query: ArchiveQuery,
    width: Interval,
    stats: list[str],
    groups: dict[int, list[list[str]]],
) -> list[Any]:
    """One delayed load_frame-shaped frame per group (see the module docstring)."""
    partial = delayed(partition_stats, pure=True)
    merge = delayed(merge_stats, pure=True)
    # Only counters' presented increase, resets and max_rate look at the previous group;
    # without them the groups are independent (no chain of tasks).
    chained = bool(set(stats) & set(COUNTER_STATS)) and any(
        catalog.kind_of(m) == "counter" for m in query.metrics
    )
    out = []
    tail: Any = None
    for key, dates in groups.items():
        merged = merge([partial(store, files, query, width) for files in dates], width)
        out.append(delayed(finalize_group)(merged, tail, query, width, stats, key))
        if chained:
            tail = delayed(latest_rows)(tail, merged, width)
    return out


def latest_rows(
    previous: pd.DataFrame | None, stats: pd.DataFrame, width: Interval
) -> pd.DataFrame:
    """Per series and leaf, the latest stats row of ``previous`` and ``stats`` together.

    Enough for a later group's counters to count the step from each series' previous
    sample (their presented increase); a few rows per series.
    """
    both = stats if previous is None else merge_stats([previous, stats], width)
    if not len(both):
        return both
    keys = [n for n in both.index.names if n != TIMESTAMP]
    keep = np.zeros(len(both), dtype=bool)
    positions = pd.Series(np.arange(len(both)), index=both.index)
    for path in metrics_of(both):
        present = both[path, "count"].to_numpy(dtype=np.float64) > 0
        if present.any():
            rows = positions[present]
            last = rows.groupby(level=keys).max() if keys else rows.iloc[[-1]]
            keep[last.to_numpy()] = True
    out = both.iloc[np.flatnonzero(keep)]
    return out.drop(columns=[(ROW_METRIC, "labels")], errors="ignore")


def finalize_group(
    merged: pd.DataFrame,
    tail: pd.DataFrame | None,
    query: ArchiveQuery,
    width: Interval,
    stats: list[str],
    key: int,
) -> pd.DataFrame:
    """One group's buckets, shaped as ``load_frame`` returns them."""
    if tail is None or not len(tail) or not len(merged):
        return stats_to_frame(merged, query, width, stats)
    both = pd.concat([tail, merged])
    both.attrs = merged.attrs
    frame = stats_to_frame(both, query, width, stats)
    start = pd.Timestamp(_group_start(key, width))
    keep = frame.index.get_level_values(TIMESTAMP) >= start
    out = frame.loc[keep]
    out.attrs = frame.attrs
    return out


def flat_frame(frame: pd.DataFrame, by_host: bool) -> pd.DataFrame:
    """A ``load_frame``-shaped frame as dask holds it: flat columns, ``host`` a column."""
    out = frame.copy()
    if isinstance(out.columns, pd.MultiIndex):
        out.columns = pd.Index([f"{m}{STAT_SEPARATOR}{s}" for m, s in out.columns])
    else:
        out.columns = pd.Index([str(c) for c in out.columns])
    if by_host:
        out = out.reset_index("host")
        out["host"] = out["host"].astype(object)
    index = pd.DatetimeIndex(out.index)
    out.index = (
        index.as_unit("us") if index.tz is not None else index.tz_localize(UTC).as_unit("us")
    )
    out.index.name = TIMESTAMP
    out = out.sort_index(kind="stable")  # dask partitions are sorted by their index
    out.attrs = {}
    return out


def _concat(
    parts: list[pd.DataFrame], query: ArchiveQuery, width: Interval, stats: list[str]
) -> pd.DataFrame:
    empty = stats_to_frame(pd.DataFrame(), query, width, stats)
    nonempty = [p for p in parts if len(p)]
    if not nonempty:
        return empty
    frame = pd.concat(nonempty)
    frame.columns = empty.columns
    if query.by_host:  # load_frame orders by host, then time
        frame = frame.sort_index(kind="stable")
    found = {Interval.parse(s) for p in parts for s in p.attrs.get("stored_intervals", [])}
    stored = [str(w) for w in sorted(found)]
    frame.attrs = {**empty.attrs, "stored_intervals": stored, "notes": notes(width, stored)}
    return frame


__all__ = ["STAT_SEPARATOR", "flat_frame", "load_dask_frame"]
