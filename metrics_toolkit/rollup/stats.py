"""Stats frames of the rollup rule: per-row mergeable statistics as a pandas frame.

See :mod:`metrics_toolkit.rollup.frame` for the frame shapes and the pipeline, and
:mod:`metrics_toolkit.rollup.rule` for the semantics of every statistic. This module builds and
checks stats frames (from rows, value frames or stats frames); ``rollup_frame`` resamples
them and ``rollup_output`` turns them into columns, documents and coverage.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd

from metrics_toolkit import catalog
from metrics_toolkit.documents import strip_metrics
from metrics_toolkit.errors import InvalidSnapshot, MetricsToolkitError
from metrics_toolkit.rollup.arrays import TIMESTAMP, FloatArray, layout
from metrics_toolkit.rollup.rule import (
    COUNTER_STATS,
    GAUGE_STATS,
    LEAF_STATS,
    KindOf,
    Part,
    Row,
    read_parts,
)

#: The reserved "metric" of a stats frame's row columns.
ROW_METRIC = "_rollup"
#: Row columns of a stats frame (``labels`` only when built from documents).
ROW_STATS = ("samples", "interval", "labels")
DEFAULT_KEYS = ("host", "metric_type")
#: The pooling law: how one bucket's statistic merges over the separate series (hosts) it
#: pools, and over partial aggregates of one bucket. Counts, sums, increases and resets
#: add; min of mins, max of maxes, the highest ``max_rate``; ``first``/``last`` are the
#: values at the earliest ``first_time`` / latest ``last_time``, ties broken by the row
#: order (pooled hosts: host label, then each host's own order: row time, then id); see
#: :func:`metrics_toolkit.rollup.frame.pool_stats`.
POOL_LAW = {
    "count": "sum",
    "sum": "sum",
    "increase": "sum",
    "resets": "sum",
    "min": "min",
    "max": "max",
    "max_rate": "max",
    "first_time": "min",
    "last_time": "max",
    "samples": "sum",
    "interval": "max",
}


def stats_for(kind: catalog.Kind) -> tuple[str, ...]:
    """The statistics a stats frame keeps for a leaf of ``kind``."""
    return COUNTER_STATS if kind == "counter" else GAUGE_STATS


def is_stats_frame(frame: pd.DataFrame) -> bool:
    """True for a stats frame ((metric, stat) columns), False for a value frame."""
    return isinstance(frame.columns, pd.MultiIndex) and frame.columns.nlevels == 2


def metrics_of(frame: pd.DataFrame, *, row_column: str = ROW_METRIC) -> list[str]:
    """The metric paths of a frame with (metric, stat) columns, in column order.

    Without the column group describing the row itself: ``"_rollup"`` in a stats frame (the
    default), ``"_row"`` in a report's bucket frame (:mod:`metrics_toolkit.reporting.buckets`).
    """
    seen = dict.fromkeys(str(m) for m in frame.columns.get_level_values(0))
    seen.pop(row_column, None)
    return list(seen)


def stats_frame(
    data: pd.DataFrame | Iterable[Row],
    *,
    keys: Sequence[str] = DEFAULT_KEYS,
    kind_of: KindOf = catalog.kind_of,
) -> pd.DataFrame:
    """The per-row partial statistics of rows, a value frame or a stats frame.

    - rows ``(timestamp, metric_type, doc)``, raw or rolled up: indexed by ``keys`` (a
      subset of ``("host", "metric_type")``, in that order) then ``timestamp``. With
      ``keys=()`` the rows must form a single series, else :class:`InvalidSnapshot`;
    - a value frame: each non-missing value becomes a bucket of one sample;
    - a stats frame: checked and returned as a sorted copy.

    Rows come out ordered by key, then time (stable). Materialising per-sample
    statistics of many raw rows is memory-hungry: to resample, pass value frames to
    :func:`resample_stats` directly.
    """
    if isinstance(data, pd.DataFrame):
        if is_stats_frame(data):
            return checked_stats(data, kind_of)
        return expand_values(data, kind_of)
    return _from_rows(data, tuple(keys), kind_of)


def _from_rows(rows: Iterable[Row], keys: tuple[str, ...], kind_of: KindOf) -> pd.DataFrame:
    return parts_frame(read_keyed(rows, keys, kind_of), keys, kind_of)


def read_keyed(rows: Iterable[Row], keys: tuple[str, ...], kind_of: KindOf) -> list[Part]:
    """``rollup.read_parts`` after checking ``keys`` (and that ``keys=()`` means one series)."""
    unknown = [k for k in keys if k not in DEFAULT_KEYS]
    if unknown:
        msg = f"Unknown key {unknown[0]!r}: keys are a subset of {', '.join(DEFAULT_KEYS)}."
        raise MetricsToolkitError(msg)
    parts = read_parts(rows, kind_of=kind_of)
    if not keys and len({(p.host, p.metric_type) for p in parts}) > 1:
        msg = (
            "These rows hold several (host, metric_type) series; pass keys=('host', "
            "'metric_type') so that they are never merged."
        )
        raise InvalidSnapshot(msg)
    return parts


def parts_frame(parts: list[Part], keys: tuple[str, ...], kind_of: KindOf) -> pd.DataFrame:
    """The stats frame of parts in row order, indexed by ``keys`` then ``timestamp``."""
    n = len(parts)
    raw = [i for i, p in enumerate(parts) if p.stats is None]
    data: dict[tuple[str, str], Any] = {}
    if raw:
        values, paths = value_matrix([parts[i].values for i in raw])
        seconds = np.array([parts[i].micros for i in raw], dtype=np.int64) / 1_000_000
        for key, column in _expand_columns(values, paths, seconds, kind_of).items():
            data[key] = np.full(n, np.nan)
            data[key][raw] = column
    labels = np.empty(n, dtype=object)
    for i, part in enumerate(parts):
        if part.stats is None:
            labels[i] = strip_metrics(part.doc)
            continue
        labels[i] = part.stats.labels
        for path, s in part.stats.leaves.items():
            for stat in stats_for(kind_of(path)):
                if (path, stat) not in data:
                    data[path, stat] = np.full(n, np.nan)
                data[path, stat][i] = s.get(stat)
    data[ROW_METRIC, "samples"] = np.array([_samples(p) for p in parts], dtype=np.float64)
    data[ROW_METRIC, "interval"] = np.array([_interval(p) for p in parts], dtype=np.float64)
    data[ROW_METRIC, "labels"] = labels
    return make_frame(data, parts_index(parts, keys))


def value_matrix(flats: list[dict[str, float]]) -> tuple[FloatArray, list[str]]:
    """Flat documents as a (rows x paths) float matrix, NaN where a leaf is missing."""
    paths = list(dict.fromkeys(chain.from_iterable(flats)))
    if not flats or not paths:
        return np.empty((len(flats), len(paths))), paths
    # numpy turns the None of a missing leaf into NaN in a float array
    rows = [list(map(flat.get, paths)) for flat in flats]
    return np.array(rows, dtype=np.float64), paths


def _samples(part: Part) -> int:
    return 1 if part.stats is None else part.stats.samples


def _interval(part: Part) -> int:
    return 0 if part.stats is None else part.stats.interval_seconds


def parts_index(parts: list[Part], keys: Sequence[str]) -> pd.Index:
    """The (keys..., timestamp) index of parts, in UTC microseconds."""
    micros = np.array([p.micros for p in parts], dtype=np.int64)
    stamps = pd.DatetimeIndex(micros.view("datetime64[us]"), name=TIMESTAMP).tz_localize("UTC")
    if not keys:
        return stamps
    by_key = {"host": [p.host for p in parts], "metric_type": [p.metric_type for p in parts]}
    return pd.MultiIndex.from_arrays([*(by_key[k] for k in keys), stamps], names=[*keys, TIMESTAMP])


def make_frame(data: dict[tuple[str, str], Any], index: pd.Index) -> pd.DataFrame:
    """A stats frame from ``{(metric, stat): column}``."""
    frame = pd.DataFrame(data, index=index)
    frame.columns = pd.MultiIndex.from_tuples(list(data), names=["metric", "stat"])
    return frame


def float_values(frame: pd.DataFrame) -> FloatArray:
    """A value frame's numbers as a float matrix (NaN where missing), or a clear error."""
    try:
        return np.asarray(frame.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    except (TypeError, ValueError) as error:
        msg = f"A value frame must hold numbers only (one column per metric path): {error}"
        raise MetricsToolkitError(msg) from error


def expand_values(frame: pd.DataFrame, kind_of: KindOf) -> pd.DataFrame:
    """The stats frame of a value frame: every value a bucket of one sample."""
    rows = layout(frame.index)
    values = float_values(frame)[rows.order]
    paths = [str(name) for name in frame.columns]
    data = _expand_columns(values, paths, rows.seconds, kind_of)
    data[ROW_METRIC, "samples"] = np.ones(len(rows.order))
    data[ROW_METRIC, "interval"] = np.zeros(len(rows.order))
    return make_frame(data, rows.index_for(np.arange(len(rows.order)), rows.ticks))


def _expand_columns(
    values: FloatArray, paths: list[str], seconds: FloatArray, kind_of: KindOf
) -> dict[tuple[str, str], Any]:
    """Per-sample statistics of raw values (rows x paths): each value a bucket of one."""
    data: dict[tuple[str, str], Any] = {}
    for j, path in enumerate(paths):
        column = values[:, j]
        present = ~np.isnan(column)
        times = np.where(present, seconds, np.nan)
        zeros = np.where(present, 0.0, np.nan)
        by_stat = {
            "count": np.where(present, 1.0, np.nan),
            "sum": column,
            "min": column,
            "max": column,
            "first": column,
            "last": column,
            "first_time": times,
            "last_time": times,
            "increase": zeros,
            "resets": zeros,
            "max_rate": np.full(len(column), np.nan),
        }
        for stat in stats_for(kind_of(path)):
            data[path, stat] = by_stat[stat]
    return data


def checked_stats(stats: pd.DataFrame, kind_of: KindOf) -> pd.DataFrame:
    """A checked copy of a stats frame, rows in key-then-time order."""
    rows = layout(stats.index)
    for stat in ("samples", "interval"):
        if (ROW_METRIC, stat) not in stats.columns:
            msg = f"A stats frame needs the row column ({ROW_METRIC!r}, {stat!r})."
            raise MetricsToolkitError(msg)
    present = set(stats.columns)
    for path in metrics_of(stats):
        kind = kind_of(path)
        missing = [s for s in stats_for(kind) if (path, s) not in present and s != "max_rate"]
        if missing:
            msg = (
                f"Stats frame column {path!r} ({kind}) lacks {', '.join(missing)}; a {kind} "
                f"keeps {', '.join(stats_for(kind))}."
            )
            raise MetricsToolkitError(msg)
    unknown = [c for c in stats.columns if c[0] != ROW_METRIC and c[1] not in LEAF_STATS]
    unknown += [c for c in stats.columns if c[0] == ROW_METRIC and c[1] not in ROW_STATS]
    if unknown:
        msg = f"Unknown stats frame column {unknown[0]!r}; statistics are {', '.join(LEAF_STATS)}."
        raise MetricsToolkitError(msg)
    out = stats.iloc[rows.order].copy()
    out.index = rows.index_for(np.arange(len(rows.order)), rows.ticks)
    return out


def column_of(stats: pd.DataFrame, path: str, stat: str) -> FloatArray:
    """One statistic of one leaf as floats (all NaN when the frame lacks it)."""
    if (path, stat) in stats.columns:
        return np.asarray(stats[path, stat].to_numpy(dtype=np.float64), dtype=np.float64)
    return np.full(len(stats), np.nan)


def present_mask(count: FloatArray, first_time: FloatArray) -> FloatArray:
    """Rows where the leaf has samples."""
    with np.errstate(invalid="ignore"):
        return np.asarray((count > 0) & ~np.isnan(first_time))
