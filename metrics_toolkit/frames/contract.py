"""The frame contract: what every ``load_frame`` reader shares.

The database reader (:mod:`metrics_toolkit.frames.load`), the Parquet archive reader
(:mod:`metrics_toolkit.frames.archive`) and the Dask reader (:mod:`metrics_toolkit.frames.dask`)
take the same arguments and return the same shape; this module holds what makes that so:
time parsing, argument checks, the automatic interval, the frame's shape and its notes.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from metrics_toolkit import catalog
from metrics_toolkit.documents import ROLLUP_KEY, split_path
from metrics_toolkit.errors import InvalidInterval, MetricsToolkitError, UnknownMetric
from metrics_toolkit.intervals import Interval
from metrics_toolkit.rollup.output import FINAL_STATS, finalize

TIMESTAMP = "timestamp"
DEFAULT_POINT_BUDGET = 400
MAX_PATH_LENGTH = 512
#: Widths ``interval="auto"`` chooses from (each nests into the next coarser ones).
AUTO_WIDTHS = tuple(
    Interval.parse(w)
    for w in (
        "1s", "5s", "10s", "30s", "1min", "5min", "10min", "15min", "30min",
        "1h", "2h", "3h", "6h", "12h", "1D", "7D",
    )
)  # fmt: skip


COUNTER_STATS = ("increase", "resets", "max_rate")
TimeLike: TypeAlias = datetime | str | pd.Timestamp | None


@dataclass(frozen=True)
class MetricInfo:
    """A metric path present in the data, with its catalog kind and unit."""

    path: str
    kind: catalog.Kind
    unit: str
    description: str

    @property
    def area(self) -> str:
        """The first path segment (``cpu``, ``memory``...), for grouping in menus."""
        return split_path(self.path)[0]


def parse_time(value: TimeLike, name: str = "time") -> datetime | None:
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        msg = f"Invalid {name} {value!r}: expected a datetime or an ISO 8601 string."
        raise MetricsToolkitError(msg) from None
    if stamp is pd.NaT:
        msg = f"Invalid {name} {value!r}: expected a datetime or an ISO 8601 string."
        raise MetricsToolkitError(msg)
    try:
        stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
        result: datetime = stamp.to_pydatetime()
    except (ValueError, OverflowError):  # before year 1 or after 9999
        msg = f"Invalid {name} {value!r}: expected a time between the years 1 and 9999."
        raise MetricsToolkitError(msg) from None
    return result


def check_metrics(metrics: Sequence[str]) -> list[str]:
    if isinstance(metrics, str):
        metrics = [metrics]
    checked = []
    for path in metrics:
        if not isinstance(path, str) or not path or len(path) > MAX_PATH_LENGTH:
            shown = path if not isinstance(path, str) else path[:60]
            msg = (
                f"Invalid metric path {shown!r}: expected a dotted path such as "
                f"'cpu.usage_percent' of at most {MAX_PATH_LENGTH} characters."
            )
            raise UnknownMetric(msg)
        if path.split(".", 1)[0] == ROLLUP_KEY:
            msg = f"Invalid metric path {path!r}: '{ROLLUP_KEY}' holds rollup statistics."
            raise UnknownMetric(msg)
        if path not in checked:
            checked.append(path)
    return checked


def check_stats(stats: Sequence[str]) -> list[str]:
    wanted = [stats] if isinstance(stats, str) else list(stats)
    bad = [s for s in wanted if s not in FINAL_STATS]
    if bad or not wanted:
        name = bad[0] if bad else "(none)"
        msg = f"Unknown statistic {name!r}: choose from {', '.join(FINAL_STATS)}."
        raise MetricsToolkitError(msg)
    return list(dict.fromkeys(wanted))


def choose_interval(
    start: datetime, end: datetime, *, point_budget: int = DEFAULT_POINT_BUDGET
) -> Interval:
    """The finest standard width that keeps ``[start, end)`` under ``point_budget`` buckets."""
    span = max((end - start).total_seconds(), 1.0)
    for width in AUTO_WIDTHS:
        if math.ceil(span / width.seconds) <= point_budget:
            return width
    return AUTO_WIDTHS[-1]


def empty_index(by_host: bool) -> pd.Index:
    stamps = pd.DatetimeIndex([], tz=UTC, name=TIMESTAMP)
    if by_host:
        return pd.MultiIndex.from_arrays(
            [pd.Index([], dtype=object), stamps], names=["host", TIMESTAMP]
        )
    return stamps


def shape(
    columns: dict[tuple[str, str], Any], paths: list[str], stats: list[str], index: pd.Index
) -> pd.DataFrame:
    data = {}
    for path in paths:
        for stat in stats:
            data[path if len(stats) == 1 else (path, stat)] = columns.get((path, stat), np.nan)
    frame = pd.DataFrame(data, index=index, dtype=np.float64)
    if len(stats) > 1:
        frame.columns = pd.MultiIndex.from_tuples(
            [(p, s) for p in paths for s in stats], names=["metric", "stat"]
        )
    else:
        frame.columns = pd.Index(paths, name="metric")
    return frame


def stored_intervals(names: Iterable[str]) -> list[str]:
    """Valid rollup widths named by rolled-up rows, finest first (junk is ignored)."""
    found: set[Interval] = set()
    for name in names:
        try:
            found.add(Interval.parse(name))
        except InvalidInterval:
            continue
    return [str(width) for width in sorted(found)]


def notes(width: Interval, stored: list[str]) -> list[str]:
    coarser = [s for s in stored if Interval.parse(s).seconds > width.seconds]
    if not coarser:
        return []
    return [
        f"Part of the range is stored rolled up to {', '.join(coarser)}, coarser than the "
        f"requested {width}: those buckets hold one point per stored bucket."
    ]


class MissingDataWarning(UserWarning):
    """``load_frame`` found nothing for a metric or a host that was asked for by name."""


def absent_notes(frame: pd.DataFrame, metrics: Sequence[str] | None, host: str | None) -> list[str]:
    """Notes naming what was asked for by name and not found in the frame: each requested
    metric without any value, and a requested host without any row (each also warned as a
    :class:`MissingDataWarning`, so a typo in a notebook does not pass silently)."""
    found: list[str] = []
    if host is not None and not len(frame):
        found.append(f"No rows for host {host!r} in this range (check the name: list_hosts).")
    elif metrics is not None:
        names = frame.columns.get_level_values(0)
        stats = (
            frame.columns.get_level_values(1)
            if isinstance(frame.columns, pd.MultiIndex)
            else pd.Index(["value"] * len(names))
        )
        for path in dict.fromkeys([metrics] if isinstance(metrics, str) else metrics):
            values = frame.loc[:, np.asarray(names == path)].to_numpy(dtype=np.float64)
            counts = np.asarray(stats[np.asarray(names == path)] == "count")
            has = (
                np.isfinite(values[:, ~counts]).any()
                or (np.nan_to_num(values[:, counts]) > 0).any()
            )
            if not has:
                found.append(
                    f"No values of metric {path!r} in this range (check the path: list_metrics)."
                )
    for note in found:
        warnings.warn(note, MissingDataWarning, stacklevel=3)
    return found


def stats_columns(
    buckets: pd.DataFrame, paths: list[str], stats: list[str], *, by_host: bool
) -> tuple[dict[tuple[str, str], Any], pd.Index]:
    """The columns and index of a bucketed frame, from per-host stats buckets.

    Every reader that resamples in pandas (the database's pandas path, the Parquet archive)
    ends here: hosts are pooled by the pooling law unless ``by_host``, and a statistic
    no bucket holds is NaN (``count`` is 0). Feed the result to :func:`shape`.
    """
    final = finalize(buckets, stats, pool=None if by_host else "host").droplevel("metric_type")
    columns: dict[tuple[str, str], Any] = {}
    for path in paths:
        for stat in stats:
            key: Any = path if len(stats) == 1 else (path, stat)
            if key in final.columns:
                columns[path, stat] = final[key].to_numpy(dtype=np.float64)
            elif stat == "count":
                columns[path, stat] = np.zeros(len(final))
    return columns, final.index
