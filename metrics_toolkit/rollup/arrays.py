"""Vectorised building blocks of the rollup rule (numpy/pandas), used by ``rollup_frame``.

The rule itself is defined in :mod:`metrics_toolkit.rollup.rule`; this module holds the array
versions of its pieces: epoch-aligned bucketing of integer timestamps, frame index
normalisation (rows ordered by key then time) and the counter fold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from metrics_toolkit.errors import MetricsToolkitError
from metrics_toolkit.intervals import Interval, bucket_start_ticks

TIMESTAMP = "timestamp"

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Ticks per second of each datetime64 unit.
_TICKS = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def ticks_per_second(unit: str) -> int:
    """Ticks per second of a datetime64 unit (``s``, ``ms``, ``us``, ``ns``)."""
    try:
        return _TICKS[unit]
    except KeyError:
        msg = f"Unknown time unit {unit!r}: expected one of {', '.join(_TICKS)}."
        raise MetricsToolkitError(msg) from None


def floor_ticks(ticks: IntArray, interval: str | Interval | timedelta, unit: str) -> IntArray:
    """Epoch-aligned bucket starts of integer epoch ``ticks`` in ``unit`` (floor, exact)."""
    width = Interval.parse(interval).seconds * ticks_per_second(unit)
    ticks = np.asarray(ticks, dtype=np.int64)
    out: IntArray = bucket_start_ticks(ticks, width)
    return out


def bucket_starts(values: Any, interval: str | Interval | timedelta, *, unit: str = "ns") -> Any:
    """Vectorised :func:`~metrics_toolkit.intervals.bucket_start`: epoch-aligned, left-closed.

    ``values`` may be a ``DatetimeIndex`` or datetime ``Series`` (any resolution; naive
    values count as UTC; the result is UTC in the same resolution) or an int64 array of
    epoch ticks in ``unit`` (``s``, ``ms``, ``us`` or ``ns``; the result is in the same
    unit).

    >>> bucket_starts(np.array([0, 299, 300, -1]), "5min", unit="s").tolist()
    [0, 0, 300, -300]
    """
    if isinstance(values, pd.DatetimeIndex):
        index = _utc_index(values)
        floored = floor_ticks(index.asi8, interval, index.unit)
        return _datetime_index(floored, index.unit, name=values.name)
    if isinstance(values, pd.Series):
        index = _utc_index(pd.DatetimeIndex(values))
        floored = floor_ticks(index.asi8, interval, index.unit)
        return pd.Series(_datetime_index(floored, index.unit), index=values.index, name=values.name)
    return floor_ticks(np.asarray(values), interval, unit)


def _utc_index(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    if index.tz is None:
        return index.tz_localize("UTC")
    return index.tz_convert("UTC")


def _datetime_index(ticks: IntArray, unit: str, name: Any = None) -> pd.DatetimeIndex:
    values = np.asarray(ticks, dtype=np.int64).view(f"datetime64[{unit}]")
    return pd.DatetimeIndex(values, name=name).tz_localize("UTC")


def to_microseconds(ticks: IntArray, unit: str) -> IntArray:
    """Epoch ticks in ``unit`` as whole epoch microseconds (floor)."""
    per_second = ticks_per_second(unit)
    ticks = np.asarray(ticks, dtype=np.int64)
    if per_second >= 1_000_000:
        out: IntArray = ticks // (per_second // 1_000_000)
    else:
        out = ticks * (1_000_000 // per_second)
    return out


def to_seconds(ticks: IntArray, unit: str) -> FloatArray:
    """Epoch seconds as floats, floored to whole microseconds (as ``rollup.epoch_seconds``)."""
    out: FloatArray = to_microseconds(ticks, unit) / 1_000_000
    return out


@dataclass(frozen=True)
class Layout:
    """A frame's rows in key-then-time order, with their series ids and times.

    ``order`` sorts the original rows; ``keys`` holds the key level names (every index
    level but ``timestamp``); ``key_values`` the sorted key arrays; ``series`` numbers the
    (key...) series 0, 1, ... in sorted order; ``ticks`` are epoch ticks in ``unit``.
    """

    order: IntArray
    keys: tuple[str, ...]
    key_values: tuple[npt.NDArray[Any], ...]
    series: IntArray
    ticks: IntArray
    unit: str

    @property
    def seconds(self) -> FloatArray:
        return to_seconds(self.ticks, self.unit)

    def index_for(self, positions: IntArray, ticks: IntArray) -> pd.Index:
        """An index of rows ``positions`` (in sorted order) with timestamps ``ticks``."""
        stamps = _datetime_index(ticks, self.unit, name=TIMESTAMP)
        if not self.keys:
            return stamps
        arrays = [values[positions] for values in self.key_values]
        return pd.MultiIndex.from_arrays([*arrays, stamps], names=[*self.keys, TIMESTAMP])


def layout(index: pd.Index) -> Layout:
    """Check a frame index and order its rows by key levels, then time (stable).

    The index must be a ``DatetimeIndex`` named ``timestamp`` or a ``MultiIndex`` whose last
    level is that (the other levels, such as ``host`` and ``metric_type``, are keys whose
    series are never merged). Raises :class:`MetricsToolkitError` otherwise.
    """
    if isinstance(index, pd.MultiIndex):
        names = [str(n) for n in index.names]
        if names[-1] != TIMESTAMP or len(set(names)) != len(names):
            msg = (
                "A frame's index must be a DatetimeIndex named 'timestamp', or a MultiIndex "
                f"of key levels ending with 'timestamp'; got levels {names}."
            )
            raise MetricsToolkitError(msg)
        stamps = index.get_level_values(-1)
        keys = tuple(names[:-1])
        raw_keys = [np.asarray(index.get_level_values(i), dtype=object) for i in range(len(keys))]
    else:
        if index.name != TIMESTAMP:
            msg = (
                "A frame's index must be a DatetimeIndex named 'timestamp' (or a MultiIndex "
                f"ending with it); got {type(index).__name__} named {index.name!r}."
            )
            raise MetricsToolkitError(msg)
        stamps, keys, raw_keys = index, (), []
    if not isinstance(stamps, pd.DatetimeIndex):
        msg = f"The 'timestamp' index level must hold datetimes, got {stamps.dtype}."
        raise MetricsToolkitError(msg)
    stamps = _utc_index(stamps)
    ticks = np.asarray(stamps.asi8, dtype=np.int64)
    codes = [pd.factorize(values, sort=True, use_na_sentinel=False)[0] for values in raw_keys]
    # np.lexsort is stable and sorts by its last key first.
    order = np.lexsort((ticks, *reversed(codes))) if codes else np.argsort(ticks, kind="stable")
    order = np.asarray(order, dtype=np.int64)
    sorted_codes = [code[order] for code in codes]
    series = _run_ids(sorted_codes, len(order))
    return Layout(
        order=order,
        keys=keys,
        key_values=tuple(values[order] for values in raw_keys),
        series=series,
        ticks=ticks[order],
        unit=stamps.unit,
    )


def _run_ids(columns: list[npt.NDArray[Any]], length: int) -> IntArray:
    """Ids 0, 1, ... of the runs of equal consecutive rows over ``columns``."""
    change = np.zeros(length, dtype=bool)
    for column in columns:
        change[1:] |= column[1:] != column[:-1]
    out: IntArray = np.cumsum(change, dtype=np.int64)
    return out


def bucket_ids(series: IntArray, buckets: IntArray) -> tuple[IntArray, IntArray]:
    """Group ids of sorted rows by (series, bucket), and the first row of each group."""
    ids = _run_ids([series, buckets], len(series))
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else ids
    return ids, np.asarray(starts, dtype=np.int64)


@dataclass(frozen=True)
class Fold:
    """Per part of a counter series (see ``rollup``'s module docstring, "Counters").

    ``own``: the part's internal statistics count; ``link``: it ends a step from the
    latest earlier sample, whose increase/reset/rate are given and whose group is
    ``from_group``.
    """

    own: BoolArray
    link: BoolArray
    increase: FloatArray
    reset: BoolArray
    rate: FloatArray
    from_group: IntArray


def counter_fold(
    series: IntArray,
    groups: IntArray,
    first_time: FloatArray,
    last_time: FloatArray,
    first: FloatArray,
    last: FloatArray,
) -> Fold:
    """The counter fold of ``rollup`` over parts given in row order (arrays aligned)."""
    n = len(series)
    if _is_time_ordered(series, first_time, last_time):
        order = np.arange(n)  # the usual case: already in fold order, skip the sort
    else:
        order = np.lexsort((np.arange(n), last_time, first_time, series))
    s, g = series[order], groups[order]
    f, lt = first_time[order], last_time[order]
    fv, lv = first[order], last[order]
    by_series = pd.Series(lt).groupby(s, sort=False)
    running = by_series.cummax().to_numpy()
    # Index of the latest part holding the running maximum (ties: the later part).
    holder = pd.Series(np.where(lt == running, np.arange(n), np.nan))
    holder = holder.groupby(s, sort=False).ffill()
    previous = holder.groupby(s, sort=False).shift(1).to_numpy()
    seen = pd.Series(running).groupby(s, sort=False).shift(1).to_numpy()
    has_prev = ~np.isnan(previous)
    prev = np.where(has_prev, previous, 0).astype(np.int64)
    with np.errstate(invalid="ignore"):
        starts_after = f > seen
        disjoint = ~has_prev | starts_after
        link = has_prev & (starts_after | (lt > seen))
    target = np.where(starts_after, fv, lv)
    target_time = np.where(starts_after, f, lt)
    delta = target - lv[prev]
    reset = link & (delta < 0)
    increase = np.where(reset, target, delta)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = increase / (target_time - seen)
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.arange(n)
    return Fold(
        own=disjoint[inverse],
        link=link[inverse],
        increase=np.where(link, increase, 0.0)[inverse],
        reset=reset[inverse],
        rate=np.where(link, rate, np.nan)[inverse],
        from_group=np.where(has_prev, g[prev], -1)[inverse],
    )


def _is_time_ordered(series: IntArray, first_time: FloatArray, last_time: FloatArray) -> bool:
    """True when rows are already sorted by (series, first_time, last_time)."""
    if len(series) < 2:
        return True
    s0, s1 = series[:-1], series[1:]
    f0, f1 = first_time[:-1], first_time[1:]
    l0, l1 = last_time[:-1], last_time[1:]
    ordered = (s0 < s1) | ((s0 == s1) & ((f0 < f1) | ((f0 == f1) & (l0 <= l1))))
    return bool(ordered.all())
