"""Rolled-up documents from a stats frame, built in bulk (the archive runner's fast path).

:func:`gauge_documents` returns what ``rollup_output.to_snapshot_docs`` returns for a
resampled stats frame whose leaves are all gauges or rates (tests prove them equal), about
ten times faster: the statistics are read as one matrix per statistic, each leaf's path is
split once, and the nested maps are filled directly rather than through
``documents.set_path`` per value. Counter leaves and unresampled rows are refused: use
``to_snapshot_docs``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from metrics_toolkit import catalog
from metrics_toolkit.documents import ROLLUP_KEY, split_path
from metrics_toolkit.errors import InvalidSnapshot, MetricsToolkitError
from metrics_toolkit.intervals import Interval
from metrics_toolkit.rollup.rule import EPOCH, GAUGE_STATS, KindOf, Row
from metrics_toolkit.rollup.stats import ROW_METRIC, metrics_of

#: Statistics stored as floats (``count`` is an int).
_FLOAT_STATS = tuple(s for s in GAUGE_STATS if s != "count")


def gauge_documents(
    stats: pd.DataFrame,
    labels: Sequence[dict[str, Any]],
    *,
    kind_of: KindOf = catalog.kind_of,
) -> list[Row]:
    """The rows ``(bucket_start, metric_type, doc)`` of a resampled, gauge-only stats frame.

    ``stats`` is indexed by ``host``, ``metric_type`` and ``timestamp`` (as
    ``rollup_frame.resample_stats`` returns it); ``labels[i]`` is the label document of
    row ``i`` (a fresh nested dict, used as is: not copied). Raises
    :class:`MetricsToolkitError` for a counter leaf or a row without an interval, and
    :class:`InvalidSnapshot` for a statistic that is not finite (JSON cannot hold it).
    """
    metrics = metrics_of(stats)
    counters = [path for path in metrics if kind_of(path) == "counter"]
    if (ROW_METRIC, "labels") in stats.columns:
        stats = stats.drop(columns=[(ROW_METRIC, "labels")])
    intervals = stats[ROW_METRIC, "interval"].to_numpy(dtype=np.float64)
    if counters or not (intervals > 0).all():
        msg = "gauge_documents takes resampled gauge and rate leaves only; use to_snapshot_docs."
        raise MetricsToolkitError(msg)
    position = {column: k for k, column in enumerate(stats.columns)}
    data = stats.to_numpy(dtype=np.float64)  # one copy; column lookups cost more than it
    matrices = {stat: data[:, [position[path, stat] for path in metrics]] for stat in GAUGE_STATS}
    samples = stats[ROW_METRIC, "samples"].to_numpy(dtype=np.float64)
    keys = [split_path(path) for path in metrics]
    parents = {path_keys[:depth] for path_keys in keys for depth in range(1, len(path_keys))}
    clash = next((m for m, k in zip(metrics, keys, strict=True) if k in parents), None)
    if clash is not None:
        msg = f"Conflicting document shape: {clash!r} is a leaf and also holds other leaves."
        raise InvalidSnapshot(msg)
    tree = _Tree(keys)
    complete = (matrices["count"] > 0).all(axis=1)
    for stat in _FLOAT_STATS:
        complete &= np.isfinite(matrices[stat]).all(axis=1)
    index = stats.index
    hosts = index.get_level_values("host")
    metric_types = index.get_level_values("metric_type")
    micros = index.get_level_values("timestamp").as_unit("us").asi8
    out: list[Row] = []
    for i in range(len(stats)):
        label = labels[i]
        host = hosts[i]
        if host and "host" not in label:
            label = {**label, "host": host}
        row = {stat: matrix[i].tolist() for stat, matrix in matrices.items()}
        if complete[i]:  # every leaf present, every statistic finite: fill maps in bulk
            doc = _complete_document(label, tree, row)
        else:
            doc = _document(label, keys, metrics, row)
        doc[ROLLUP_KEY] = {
            "interval": str(Interval(int(intervals[i]))),
            "samples": int(samples[i]),
            **doc.pop(ROLLUP_KEY),
        }
        out.append((EPOCH + timedelta(microseconds=int(micros[i])), str(metric_types[i]), doc))
    return out


class _Tree:
    """Leaf paths grouped by parent: ``[(parent keys, [(leaf index, leaf key), ...]), ...]``."""

    def __init__(self, keys: list[tuple[str, ...]]) -> None:
        groups: dict[tuple[str, ...], list[tuple[int, str]]] = {}
        for j, path_keys in enumerate(keys):
            groups.setdefault(path_keys[:-1], []).append((j, path_keys[-1]))
        self.groups = list(groups.items())

    def nest(self, values: list[Any]) -> dict[str, Any]:
        """A fresh nested map holding ``values[j]`` at leaf ``j``'s path."""
        out: dict[str, Any] = {}
        for parent, leaves in self.groups:
            node = out
            for key in parent:
                node = node.setdefault(key, {})
            node.update({key: values[j] for j, key in leaves})
        return out

    def fill(self, doc: dict[str, Any], values: list[Any]) -> None:
        """Set ``values[j]`` at leaf ``j``'s path in ``doc``, replacing what is there."""
        for parent, leaves in self.groups:
            node = doc
            for key in parent:
                child = node.get(key)
                if type(child) is not dict:
                    child = node[key] = {}
                node = child
            node.update({key: values[j] for j, key in leaves})


def _complete_document(
    doc: dict[str, Any], tree: _Tree, row: dict[str, list[float]]
) -> dict[str, Any]:
    """:func:`_document` for a row where every leaf is present and every statistic finite."""
    counts = [int(c) for c in row["count"]]
    meta: dict[str, Any] = {"count": tree.nest(counts)}
    meta.update((stat, tree.nest(row[stat])) for stat in _FLOAT_STATS if counts)
    tree.fill(doc, [total / n for total, n in zip(row["sum"], counts, strict=True)])
    doc[ROLLUP_KEY] = meta
    return doc


def _document(
    doc: dict[str, Any],
    keys: list[tuple[str, ...]],
    metrics: list[str],
    row: dict[str, list[float]],
) -> dict[str, Any]:
    """One bucket's document, as ``rollup.rollup_document`` builds it (leaf by leaf)."""
    maps: dict[str, dict[str, Any]] = {stat: {} for stat in GAUGE_STATS}
    counts = row["count"]
    for j, path_keys in enumerate(keys):
        count = counts[j]
        if not count > 0:
            continue
        _put(maps["count"], path_keys, int(count))
        for stat in _FLOAT_STATS:
            value = row[stat][j]
            if math.isnan(value):
                continue  # as rollup_document: an undefined statistic is left out
            if math.isinf(value):
                msg = (
                    f"The {stat} of leaf {metrics[j]!r} is {value} (its values overflow a "
                    "float); JSON cannot store it. Keep leaves in units that fit."
                )
                raise InvalidSnapshot(msg)
            _put(maps[stat], path_keys, value)
        _put(doc, path_keys, row["sum"][j] / int(count))
    doc[ROLLUP_KEY] = {stat: m for stat, m in maps.items() if m or stat == "count"}
    return doc


def _put(doc: dict[str, Any], keys: tuple[str, ...], value: Any) -> None:
    """``documents.set_path(doc, path, value, replace=True)`` with the path already split."""
    node = doc
    for key in keys[:-1]:
        child = node.get(key)
        if type(child) is not dict:
            child = node[key] = {}
        node = child
    node[keys[-1]] = value
