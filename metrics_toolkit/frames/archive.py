"""Frames from the Parquet archive: ``load_frame``'s semantics without a database.

``load_frame(source, ...)`` hands a ``source`` that :func:`is_archive_source` recognises (a
local directory, an fsspec URL such as ``s3://bucket/prefix`` or ``file:///...``, or an
:class:`~metrics_toolkit.archive.store.ArchiveStore`) to :func:`load_archive_frame`, which
returns the frame the database would give for the same rows (tests prove it on SQLite and
PostgreSQL).

What is read
    Only the partitions the filters need: files are chosen by their ``metric_type=`` and
    ``date=`` directories (no file is opened for a pruned partition), and only the
    requested metric columns plus ``timestamp``, ``id`` and ``host`` are read from them
    (column projection; the time and host filters are pushed into the Parquet scan).

How buckets are made
    Raw rows (``rollup_interval`` null) take the value-frame fast path of
    :func:`~metrics_toolkit.rollup.frame.resample_stats`: their float columns are resampled
    directly. Rolled-up rows are few; their JSON ``document`` is parsed so that they are
    merged by their stored ``_rollup`` statistics, never by averaging means. The two partial
    stats frames are merged by the same law (merging is associative), then
    :func:`~metrics_toolkit.rollup.output.finalize` gives the columns.

:func:`partition_stats` is that computation for any subset of files; the Dask entry point
(:mod:`metrics_toolkit.frames.dask`) runs it once per date partition.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from metrics_toolkit.archive.location import ArchiveSource, is_archive_source, open_archive
from metrics_toolkit.archive.store import BASE_COLUMNS, ArchiveStore
from metrics_toolkit.documents import ROLLUP_KEY
from metrics_toolkit.errors import InvalidInterval
from metrics_toolkit.frames.contract import (
    AUTO_WIDTHS,
    COUNTER_STATS,
    DEFAULT_POINT_BUDGET,
    TIMESTAMP,
    TimeLike,
    check_metrics,
    check_stats,
    choose_interval,
    empty_index,
    notes,
    parse_time,
    shape,
    stats_columns,
    stored_intervals,
)
from metrics_toolkit.intervals import Interval
from metrics_toolkit.rollup.frame import ROW_METRIC, resample_stats

#: Columns that are not metrics (the archive's base columns and its partition keys).
RESERVED_COLUMNS = frozenset({*BASE_COLUMNS, "metric_type", "date"})
#: Rows of equal timestamps (hosts pooled) are ordered by host, then by database id, as
#: the rollup rule's row order breaks first/last ties.
ROW_ORDER = [("timestamp", "ascending"), ("host", "ascending"), ("id", "ascending")]


@dataclass(frozen=True)
class ArchiveQuery:
    """What to read from the archive: the filters of ``load_frame``."""

    metric_type: str
    start: datetime | None
    end: datetime | None
    host: str | None
    metrics: tuple[str, ...]
    by_host: bool = False

    @property
    def keys(self) -> tuple[str, ...]:
        """The key levels of the stats frames: always per host (pooled when finalised)."""
        return ("host", "metric_type")


def select_partitions(store: ArchiveStore, query: ArchiveQuery) -> dict[date, list[str]]:
    """The archive files of ``query.metric_type`` whose date may hold rows in the range.

    Pruned from the ``metric_type=``/``date=`` directory names alone. Returns ``{date:
    [file, ...]}`` in date order (paths as the store's file system names them).
    """
    first = query.start.astimezone(UTC).date() if query.start is not None else None
    last = (query.end - timedelta(microseconds=1)).astimezone(UTC).date() if query.end else None
    found: dict[date, list[str]] = defaultdict(list)
    for path in store.files():
        metric_type = unquote(path.parent.parent.name.split("=", 1)[1])
        day = date.fromisoformat(path.parent.name.split("=", 1)[1])
        if metric_type != query.metric_type:
            continue
        if (first is not None and day < first) or (last is not None and day > last):
            continue
        found[day].append(str(path))
    return dict(sorted(found.items()))


def metric_columns(store: ArchiveStore, files: list[str]) -> list[str]:
    """The metric columns of ``files`` (union of their schemas, by name), sorted.

    Reads each file's footer only.
    """
    fs = store.arrow_filesystem
    names: set[str] = set()
    for path in files:
        schema = pq.read_schema(path, filesystem=fs)
        names.update(
            f.name
            for f in schema
            if f.name not in RESERVED_COLUMNS and pa.types.is_floating(f.type)
        )
    return sorted(names)


def _dataset(store: ArchiveStore, files: list[str], metrics: tuple[str, ...]) -> ds.Dataset:
    # Every metric column is float64: naming them in the schema unifies files by name,
    # and pyarrow reads a column a file lacks as nulls (no footer needs opening here).
    fields = [
        pa.field("id", pa.int64()),
        pa.field("timestamp", pa.timestamp("us", tz="UTC")),
        pa.field("host", pa.string()),
        pa.field("rollup_interval", pa.string()),
        pa.field("document", pa.string()),
        *(pa.field(m, pa.float64()) for m in metrics),
    ]
    return ds.dataset(
        files, schema=pa.schema(fields), format="parquet", filesystem=store.arrow_filesystem
    )


def _filter(query: ArchiveQuery, rolled: bool | None) -> Any:
    clauses = []
    if query.start is not None:
        clauses.append(ds.field("timestamp") >= pa.scalar(query.start, pa.timestamp("us", "UTC")))
    if query.end is not None:
        clauses.append(ds.field("timestamp") < pa.scalar(query.end, pa.timestamp("us", "UTC")))
    if query.host == "":  # the database reads a missing host as ""
        clauses.append(ds.field("host").is_null() | (ds.field("host") == ""))
    elif query.host is not None:
        clauses.append(ds.field("host") == query.host)
    if rolled is True:
        clauses.append(ds.field("rollup_interval").is_valid())
    elif rolled is False:
        clauses.append(ds.field("rollup_interval").is_null())
    condition = None
    for clause in clauses:
        condition = clause if condition is None else condition & clause
    return condition


def read_table(
    store: ArchiveStore,
    files: list[str],
    query: ArchiveQuery,
    *,
    rolled: bool | None = None,
    document: bool = False,
) -> pa.Table:
    """The matching rows of ``files`` in the rollup rule's row order (see :data:`ROW_ORDER`).

    ``rolled``: ``False`` raw rows only, ``True`` rolled-up rows only, ``None`` both.
    Columns: ``id``, ``timestamp``, ``host`` (null read as ``""``), ``rollup_interval``,
    ``document`` when asked, then the query's metrics (null where a row lacks the leaf).
    """
    columns = ["id", "timestamp", "host", "rollup_interval"]
    columns += ["document"] if document else []
    columns += list(query.metrics)
    if not files:
        return _dataset(store, [], query.metrics).schema.empty_table().select(columns)
    table = (
        _dataset(store, files, query.metrics)
        .scanner(columns=columns, filter=_filter(query, rolled))
        .to_table()
    )
    table = table.set_column(
        table.schema.get_field_index("host"), "host", pc.fill_null(table["host"], "")
    )
    return table.sort_by(ROW_ORDER)


def _stamps(table: pa.Table) -> pd.DatetimeIndex:
    micros = table["timestamp"].to_numpy().astype("datetime64[us]")
    return pd.DatetimeIndex(micros, name=TIMESTAMP).tz_localize(UTC)


def _keyed_index(table: pa.Table, query: ArchiveQuery, keys: tuple[str, ...]) -> pd.Index:
    stamps = _stamps(table)
    levels = {
        "host": pd.Index(table["host"].to_pylist(), dtype=object),
        "metric_type": pd.Index([query.metric_type] * len(table), dtype=object),
    }
    return pd.MultiIndex.from_arrays([*(levels[k] for k in keys), stamps], names=[*keys, TIMESTAMP])


def _value_matrix(table: pa.Table, metrics: tuple[str, ...]) -> np.ndarray:
    if not metrics:
        return np.empty((len(table), 0))
    return np.column_stack(
        [table[m].to_numpy(zero_copy_only=False).astype(np.float64) for m in metrics]
    )


def _span_seconds(doc: Any, stored: str | None) -> tuple[int, float]:
    """``(interval seconds, samples)`` of a rolled-up document (0, 0 when unreadable)."""
    meta = doc.get(ROLLUP_KEY) if isinstance(doc, dict) else None
    samples = meta.get("samples") if isinstance(meta, dict) else None
    try:
        width = Interval.parse(stored or "").seconds
    except InvalidInterval:
        width = 0
    return width, float(samples) if isinstance(samples, int | float) else 0.0


def current_versions(
    store: ArchiveStore, query: ArchiveQuery, rolled: pa.Table, docs: list[Any]
) -> np.ndarray:
    """Which rolled-up rows of ``rolled`` hold samples no other archived row holds.

    The archive is a log: every row the database replaced or deleted is in it. So a span
    can be there twice: as the raw rows a rollup replaced (archived then) and as that
    rollup (archived when retention deleted it), or as two versions of one rollup (before
    and after late rows were merged into it). Raw rows are the ground truth: a rolled-up
    row is dropped when an archived raw row of its host lies in its span ``[timestamp,
    timestamp + interval)``. Of overlapping rolled-up rows of one host the widest span
    wins, then the most samples, then the latest id (the database's final version).
    Limit: should a coarser rollup and later finer rollups of one span both hold samples
    no raw row holds (the policy interval made finer while late rows kept arriving, with
    archiving off), the finer ones are dropped.
    """
    n = len(rolled)
    if not n:
        return np.zeros(0, dtype=bool)
    starts = rolled["timestamp"].to_numpy().astype("datetime64[us]").astype(np.int64)
    spans = [
        _span_seconds(doc, stored)
        for doc, stored in zip(docs, rolled["rollup_interval"].to_pylist(), strict=True)
    ]
    ends = starts + np.array([w for w, _ in spans], dtype=np.int64) * 1_000_000
    samples = np.array([c for _, c in spans])
    hosts = np.array(rolled["host"].to_pylist(), dtype=object)
    ids = rolled["id"].to_numpy()
    keep = ends > starts
    # Raw rows in the spans (the spans may reach past the query's range and files).
    lo = datetime.fromtimestamp(int(starts.min()) / 1e6, UTC)
    hi = datetime.fromtimestamp(int(ends.max()) / 1e6, UTC)
    span_query = replace(query, start=lo, end=hi, metrics=())
    span_files = [f for group in select_partitions(store, span_query).values() for f in group]
    raw = read_table(store, span_files, span_query, rolled=False)
    raw_hosts = np.array(raw["host"].to_pylist(), dtype=object)
    raw_micros = raw["timestamp"].to_numpy().astype("datetime64[us]").astype(np.int64)
    for host in set(hosts):
        mine = np.flatnonzero(hosts == host)
        times = np.sort(raw_micros[raw_hosts == host])
        inside = np.searchsorted(times, ends[mine]) > np.searchsorted(times, starts[mine])
        keep[mine[inside]] = False
        # Widest span first, then most samples, then latest id; a row starting inside the
        # span of a row kept before it is an older or partial version.
        candidates = mine[keep[mine]]
        order = np.lexsort((-ids[candidates], -samples[candidates], -ends[candidates],
                            starts[candidates]))  # fmt: skip
        covered_until = np.iinfo(np.int64).min
        for i in candidates[order]:
            if starts[i] < covered_until:
                keep[i] = False
            else:
                covered_until = ends[i]
    return np.asarray(keep, dtype=bool)


def partition_stats(
    store: ArchiveStore, files: list[str], query: ArchiveQuery, width: Interval
) -> pd.DataFrame:
    """Partial statistics (a stats frame) of the matching rows of ``files`` at ``width``.

    Raw rows are resampled from their float columns, rolled-up rows (the current versions
    only, see :func:`current_versions`) from their documents' ``_rollup`` statistics; the
    result has one row per (keys..., bucket) and is merged with other partitions' by
    :func:`merge_stats`. ``frame.attrs["stored_intervals"]`` lists the stored widths met.
    """
    parts = []
    raw = read_table(store, files, query, rolled=False)
    if len(raw):
        values = pd.DataFrame(
            _value_matrix(raw, query.metrics),
            index=_keyed_index(raw, query, query.keys),
            columns=list(query.metrics),
        )
        parts.append(resample_stats(values, width))
    rolled, docs = read_rolled(store, files, query)
    if len(rolled):
        rows = [
            (ts, query.metric_type, doc)
            for ts, doc in zip(_stamps(rolled).to_pydatetime(), docs, strict=True)
        ]
        merged = resample_stats(rows, width, keys=query.keys)
        wanted = [c for c in merged.columns if c[0] in query.metrics or c[0] == ROW_METRIC]
        parts.append(merged.loc[:, wanted].drop(columns=[(ROW_METRIC, "labels")], errors="ignore"))
    if not parts:
        parts.append(_empty_stats(query, width))
    parts[0].attrs["stored_intervals"] = sorted(set(rolled["rollup_interval"].to_pylist()))
    return merge_stats(parts, width)


def read_rolled(
    store: ArchiveStore, files: list[str], query: ArchiveQuery
) -> tuple[pa.Table, list[Any]]:
    """The current versions of the rolled-up rows of ``files`` and their parsed documents."""
    rolled = read_table(store, files, query, rolled=True, document=True)
    docs = [json.loads(doc) for doc in rolled["document"].to_pylist()]
    keep = current_versions(store, query, rolled, docs)
    return rolled.filter(pa.array(keep)), [d for d, k in zip(docs, keep, strict=True) if k]


def _empty_stats(query: ArchiveQuery, width: Interval) -> pd.DataFrame:
    empty = pd.DataFrame(
        np.empty((0, len(query.metrics))),
        index=_keyed_index(pa.table({"timestamp": pa.array([], pa.timestamp("us", "UTC")),
                                     "host": pa.array([], pa.string())}), query, query.keys),
        columns=list(query.metrics),
    )  # fmt: skip
    return resample_stats(empty, width)


def merge_stats(parts: list[pd.DataFrame], width: Interval) -> pd.DataFrame:
    """Merge partial stats frames by the rollup rule (their stored widths are kept)."""
    stored = sorted({s for p in parts for s in p.attrs.get("stored_intervals", [])})
    nonempty = [p for p in parts if len(p)]
    if not nonempty:
        merged = parts[0] if parts else pd.DataFrame()
    elif len(nonempty) == 1:
        merged = nonempty[0]
    else:
        merged = resample_stats(pd.concat(nonempty), width)
    merged = merged.copy()
    merged.attrs["stored_intervals"] = stored
    return merged


def stats_to_frame(
    buckets: pd.DataFrame, query: ArchiveQuery, width: Interval, stats: list[str]
) -> pd.DataFrame:
    """``load_frame``'s output from merged partial statistics."""
    paths = list(query.metrics)
    stored = stored_intervals(buckets.attrs.get("stored_intervals", []))
    if not len(buckets):
        frame = shape({}, paths, stats, empty_index(query.by_host))
    else:
        columns, index = stats_columns(buckets, paths, stats, by_host=query.by_host)
        frame = shape(columns, paths, stats, _object_hosts(index))
    frame.attrs.update(
        interval=str(width), method="archive", stored_intervals=stored, notes=notes(width, stored)
    )
    return frame


def _object_hosts(index: pd.Index) -> pd.Index:
    """The index with its ``host`` level as ``object`` strings, as the database path has."""
    if not isinstance(index, pd.MultiIndex):
        return index
    hosts = pd.Index(index.get_level_values("host").to_numpy(dtype=object), dtype=object)
    return pd.MultiIndex.from_arrays(
        [hosts, index.get_level_values(TIMESTAMP)], names=["host", TIMESTAMP]
    )


def _values_frame(
    store: ArchiveStore, files: list[str], query: ArchiveQuery, stats: list[str]
) -> pd.DataFrame:
    raw = read_table(store, files, query, rolled=False)
    rolled, _ = read_rolled(store, files, query)
    columns_wanted = raw.column_names
    table = pa.concat_tables([raw, rolled.select(columns_wanted)]).sort_by(ROW_ORDER)
    paths = list(query.metrics)
    # raw rows of several hosts always keep the host level, as the database reader's
    by_host = query.by_host or len(pc.unique(table["host"])) > 1
    if len(table):
        stamps = _stamps(table)
        index: pd.Index = stamps
        if by_host:
            index = pd.MultiIndex.from_arrays(
                [pd.Index(table["host"].to_pylist(), dtype=object), stamps],
                names=["host", TIMESTAMP],
            )
    else:
        index = empty_index(by_host)
    values = _value_matrix(table, query.metrics)
    columns: dict[tuple[str, str], Any] = {}
    for j, path in enumerate(paths):
        for stat in stats:
            if stat == "count":
                columns[path, stat] = (~np.isnan(values[:, j])).astype(np.float64)
            elif stat in COUNTER_STATS:
                columns[path, stat] = np.full(len(table), np.nan)
            else:
                columns[path, stat] = values[:, j]
    frame = shape(columns, paths, stats, index)
    frame.attrs.update(interval=None, method="archive", stored_intervals=[], notes=[])
    return frame


def resolve_width(
    store: ArchiveStore,
    files: list[str],
    query: ArchiveQuery,
    interval: str | Interval | timedelta | None,
    point_budget: int,
) -> Interval | None:
    """The bucket width of ``interval`` (``"auto"``: chosen under ``point_budget``)."""
    if interval is None:
        return None
    if interval == "auto":
        if query.start is not None and query.end is not None:
            return choose_interval(query.start, query.end, point_budget=point_budget)
        found = read_table(store, files, replace(query, metrics=()))["timestamp"]
        if not len(found):
            return AUTO_WIDTHS[0]
        bounds = pc.min_max(found)
        lo = query.start or bounds["min"].as_py()
        hi = query.end or bounds["max"].as_py() + timedelta(seconds=1)
        return choose_interval(lo, hi, point_budget=point_budget)
    try:
        return Interval.parse(interval)
    except InvalidInterval as error:
        raise InvalidInterval(f"{error} Or use interval='auto' or None.") from None


def archive_query(
    store: ArchiveStore,
    start: TimeLike,
    end: TimeLike,
    *,
    metrics: Sequence[str] | None,
    metric_type: str,
    host: str | None,
    by_host: bool,
) -> tuple[ArchiveQuery, dict[date, list[str]]]:
    """The checked query and its pruned partitions (metrics found in them when ``None``)."""
    query = ArchiveQuery(
        metric_type=metric_type,
        start=parse_time(start, "start"),
        end=parse_time(end, "end"),
        host=host,
        metrics=tuple(check_metrics(metrics)) if metrics is not None else (),
        by_host=by_host,
    )
    partitions = select_partitions(store, query)
    if metrics is None:
        files = [f for group in partitions.values() for f in group]
        found = _present(store, files, replace(query, metrics=tuple(metric_columns(store, files))))
        query = replace(query, metrics=found)
    return query, partitions


def _present(store: ArchiveStore, files: list[str], query: ArchiveQuery) -> tuple[str, ...]:
    """The query's metrics that hold a value in at least one matching row."""
    if not files or not query.metrics:
        return ()
    scanner = _dataset(store, files, query.metrics).scanner(
        columns=list(query.metrics), filter=_filter(query, None)
    )
    seen: set[str] = set()
    for batch in scanner.to_batches():
        seen.update(m for m in query.metrics if batch[m].null_count < batch.num_rows)
        if len(seen) == len(query.metrics):
            break
    return tuple(m for m in query.metrics if m in seen)


def load_archive_frame(
    source: ArchiveSource,
    start: TimeLike = None,
    end: TimeLike = None,
    *,
    metrics: Sequence[str] | None = None,
    metric_type: str = "aggregated",
    host: str | None = None,
    interval: str | Interval | timedelta | None = None,
    stats: Sequence[str] = ("mean",),
    by_host: bool = False,
    point_budget: int = DEFAULT_POINT_BUDGET,
) -> pd.DataFrame:
    """``load_frame`` over the Parquet archive (see :func:`metrics_toolkit.frames.load.load_frame`).

    Same parameters, same frame: a UTC ``DatetimeIndex`` named ``timestamp`` (with a
    ``host`` level when ``by_host``), one column per metric path (``(metric, stat)``
    columns for several stats), ``frame.attrs`` with ``interval``, ``stored_intervals``
    and ``notes``; ``method`` is ``"archive"``. With ``metrics=None`` the metrics are the
    float columns holding a value in the range (sorted). Reads only the partitions of
    ``metric_type`` whose dates meet ``[start, end)``, and only the needed columns.
    """
    wanted = check_stats(stats)
    store = open_archive(source)
    with store.reading():  # a damaged file: one DamagedArchive line naming it
        query, partitions = archive_query(
            store, start, end, metrics=metrics, metric_type=metric_type, host=host, by_host=by_host
        )
        files = [f for group in partitions.values() for f in group]
        width = resolve_width(store, files, query, interval, point_budget)
        if width is None:
            return _values_frame(store, files, query, wanted)
        return stats_to_frame(partition_stats(store, files, query, width), query, width, wanted)


__all__ = [
    "ArchiveQuery",
    "ArchiveSource",
    "archive_query",
    "is_archive_source",
    "load_archive_frame",
    "merge_stats",
    "open_archive",
    "partition_stats",
    "read_table",
    "select_partitions",
    "stats_to_frame",
]
