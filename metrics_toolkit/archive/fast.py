"""The archive runner's fast path: a chunk of raw rows read and rolled up as columns.

:mod:`metrics_toolkit.archive.runner` rolls a chunk up through this module when every row of the
chunk is raw (no ``"_rollup"`` key) and no leaf is a ``counter``; anything else keeps the
general path (``rollup.rollup_rows`` over documents). Both give the same rolled-up
documents (tests compare them leaf by leaf).

Reading
    The chunk's rows come back with each document as JSON *text* (PostgreSQL:
    ``metric_data::text``, JSONB's canonical text; SQLite: the text as stored), never as
    Python dicts. The text is parsed once, column-wise, by Arrow's JSON reader: every key
    of every row becomes a (nested) column, so the leaf set is exact by construction, and
    its numeric columns are the leaves of :func:`metrics_toolkit.documents.flatten` (ints
    as floats; non-finite numbers are missing; bools, strings, nulls and lists are
    labels). Documents the reader cannot take as columns (a value that is a number in one
    row and something else in another, a non-object document, a huge number) make the
    chunk go the general path instead: :func:`read_raw_chunk` returns ``None``.

Rolling up
    The leaves form a value frame (``host``/``metric_type`` key levels, UTC timestamps)
    that ``rollup_frame.resample_stats`` resamples; labels come from each bucket's latest
    row (latest timestamp, ties: the later id), as in ``rollup.rollup_rows``; then
    ``rollup_docs.gauge_documents`` (``rollup_output.to_snapshot_docs``, in bulk). The
    counts the runner verifies the rollups against (samples and per-leaf counts per
    bucket) are computed separately from the same columns with ``numpy.bincount``. The
    runner reads the next chunk while this one is worked on (``archive._Reader``).

Archiving
    The Parquet tables (one per metric_type and UTC date) are built from the same columns:
    the ``document`` column holds each row's JSON text as read (no re-serialisation: on
    PostgreSQL this is JSONB's canonical text, equal as JSON to the stored document).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
from sqlalchemy import Connection, bindparam, text

from metrics_toolkit import catalog
from metrics_toolkit.archive.store import BASE_COLUMNS, BASE_FIELDS
from metrics_toolkit.documents import ROLLUP_KEY, escape_key, strip_metrics
from metrics_toolkit.intervals import EPOCH, Interval, bucket_start_ticks
from metrics_toolkit.rollup.docs import gauge_documents
from metrics_toolkit.rollup.frame import resample_stats
from metrics_toolkit.rollup.rule import KindOf, Row
from metrics_toolkit.store.models import MetricsSnapshot
from metrics_toolkit.store.sqltypes import UTCDateTime

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ObjectArray = npt.NDArray[np.object_]
#: (host, metric_type, bucket start) as ``archive`` keys its verification counts.
BucketKey = tuple[str, str, datetime]
Expected = dict[BucketKey, tuple[int, dict[str, float]]]

_TABLE = MetricsSnapshot.__tablename__
_MICROS_PER_DAY = 86_400_000_000
_TIMESTAMP_TYPE = pa.timestamp("us", tz="UTC")
_FETCH_ROWS = 5000
# The chunk's big, short-lived Arrow buffers come from the system allocator: Arrow's
# default pool (mimalloc) keeps freed pages, which adds tens of MB to the peak.
_POOL = pa.system_memory_pool()


class _NotColumnar(Exception):
    """The chunk does not fit the fast path (internal; the runner takes the general one)."""


@dataclass(frozen=True)
class RawChunk:
    """The raw rows of one chunk as columns, in ``(timestamp, id)`` order.

    ``hosts`` is each row's host key (``""`` when missing or not a string, as
    ``rollup.host_of``); ``host_labels`` the archive's ``host`` column (``None`` then).
    ``values`` maps each numeric leaf path to its floats (``NaN`` where the row lacks it).
    """

    ids: IntArray
    micros: IntArray
    metric_types: ObjectArray
    hosts: ObjectArray
    host_labels: pa.Array
    documents: pa.Array
    values: dict[str, FloatArray]
    kind_of: KindOf = catalog.kind_of

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def _keys(self) -> tuple[pd.Categorical, pd.Categorical]:
        """Each row's host and metric_type, factorised once per chunk."""
        return pd.Categorical(self.hosts), pd.Categorical(self.metric_types)

    def _bucket_micros(self, interval: Interval) -> IntArray:
        out: IntArray = bucket_start_ticks(self.micros, interval.seconds * 1_000_000)
        return out

    def rollups(self, interval: str | Interval) -> list[Row]:
        """The rolled-up rows ``(bucket_start, metric_type, doc)`` of the chunk (the rule)."""
        stats, labels = self.rollup_stats(interval)
        return gauge_documents(stats, labels, kind_of=self.kind_of)

    def rollup_stats(self, interval: str | Interval) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
        """The chunk resampled to ``interval`` (a stats frame) and each bucket's labels."""
        width = Interval.parse(interval)
        stamps = pd.DatetimeIndex(self.micros.view("datetime64[us]"), name="timestamp")
        index = pd.MultiIndex.from_arrays(
            [*self._keys, stamps.tz_localize("UTC")],
            names=["host", "metric_type", "timestamp"],
        )
        frame = pd.DataFrame(self.values, index=index, columns=list(self.values), copy=False)
        stats = resample_stats(frame, width, kind_of=self.kind_of)
        return stats, self._labels(stats.index, width)

    def bucket_labels(self, index: pd.Index, width: Interval) -> list[dict[str, Any]]:
        """Fresh label documents of the buckets of ``index`` (a ``rollup_stats`` index)."""
        return self._labels(index, width)

    def _labels(self, index: pd.Index, width: Interval) -> list[dict[str, Any]]:
        """The labels of each bucket's latest row (rows are in time, then id, order)."""
        buckets = self._bucket_micros(width)
        codes, count = _group_codes(*(key.codes for key in self._keys), buckets)
        latest = _last_rows(codes, count).tolist()
        where = {(self.hosts[i], self.metric_types[i], int(buckets[i])): i for i in latest}
        keys = zip(
            index.get_level_values("host"),
            index.get_level_values("metric_type"),
            index.get_level_values("timestamp").as_unit("us").asi8.tolist(),
            strict=True,
        )
        return [strip_metrics(json.loads(self.documents[where[key]].as_py())) for key in keys]

    def expected_counts(self, interval: str | Interval) -> Expected:
        """Samples and per-leaf counts per bucket, for the runner's verification."""
        buckets = self._bucket_micros(Interval.parse(interval))
        codes, n = _group_codes(*(key.codes for key in self._keys), buckets)
        samples = np.bincount(codes, minlength=n).tolist()
        counts = {
            path: np.bincount(codes, weights=~np.isnan(column), minlength=n).tolist()
            for path, column in self.values.items()
        }
        out: Expected = {}
        for g, row in enumerate(_first_rows(codes, n).tolist()):
            leaves = {path: c[g] for path, c in counts.items() if c[g] > 0}
            start = EPOCH + timedelta(microseconds=int(buckets[row]))
            out[(str(self.hosts[row]), str(self.metric_types[row]), start)] = (samples[g], leaves)
        return out

    def archive_tables(self) -> dict[tuple[str, date], pa.Table]:
        """The archive's Parquet tables, one per (metric_type, UTC date)."""
        days = self.micros // _MICROS_PER_DAY
        codes, n = _group_codes(self._keys[1].codes, days)
        tables: dict[tuple[str, date], pa.Table] = {}
        for g, first in enumerate(_first_rows(codes, n).tolist()):
            rows = np.flatnonzero(codes == g) if n > 1 else np.arange(len(codes))
            take = pa.array(rows)
            columns: dict[str, pa.Array] = {
                "id": pa.array(self.ids[rows], pa.int64()),
                "timestamp": pa.array(self.micros[rows], pa.int64()).cast(_TIMESTAMP_TYPE),
                "host": self.host_labels.take(take),
                "rollup_interval": pa.nulls(len(rows), pa.string()),
                "document": pc.take(self.documents, take, memory_pool=_POOL),
            }
            fields = list(BASE_FIELDS)
            for path in sorted(self.values):
                column = self.values[path][rows]
                if path in BASE_COLUMNS or np.isnan(column).all():
                    continue  # as write_pending: absent leaves get no column
                columns[path] = pa.array(column, pa.float64(), from_pandas=True, memory_pool=_POOL)
                fields.append(pa.field(path, pa.float64()))
            table = pa.table(columns, schema=pa.schema(fields))
            day = (EPOCH + timedelta(days=int(days[first]))).date()
            tables[str(self.metric_types[first]), day] = table
        return tables


def _group_codes(*columns: npt.NDArray[Any]) -> tuple[IntArray, int]:
    """Group ids ``0..n-1`` of rows by their values in ``columns``, and ``n``."""
    codes = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        own, uniques = pd.factorize(column)
        codes = np.asarray(pd.factorize(codes * len(uniques) + own)[0], dtype=np.int64)
    return codes, int(codes.max()) + 1 if len(codes) else 0


def _first_rows(codes: IntArray, n: int) -> IntArray:
    """The first row of each group."""
    out: IntArray = np.unique(codes, return_index=True)[1][:n]
    return out


def _last_rows(codes: IntArray, n: int) -> IntArray:
    """The last row of each group."""
    out: IntArray = len(codes) - 1 - _first_rows(codes[::-1].copy(), n)
    return out


def read_raw_chunk(
    connection: Connection, lo: datetime, hi: datetime, *, kind_of: KindOf = catalog.kind_of
) -> RawChunk | None:
    """The rows with ``lo <= timestamp < hi`` as a :class:`RawChunk`, or ``None``.

    ``None`` means the chunk is not for the fast path (a rolled-up row, a counter leaf,
    documents that do not parse as columns; see the module docstring): the caller reads
    it the general way. Runs inside the caller's transaction and changes nothing.
    """
    try:
        read = _read_postgres if connection.dialect.name == "postgresql" else _read_generic
        return _columns(*read(connection, lo, hi), kind_of=kind_of)
    except _NotColumnar:
        return None


def _read_postgres(
    connection: Connection, lo: datetime, hi: datetime
) -> tuple[IntArray, IntArray, ObjectArray, pa.Array]:
    # A server-side cursor read in batches: neither libpq nor Python ever holds the whole
    # chunk as row objects (the chunk's peak memory is its Arrow columns). A plain cursor
    # beats COPY TO here, which yields one message per row, each a round of Python code.
    query = (
        "SELECT id, (extract(epoch FROM timestamp) * 1000000)::int8, metric_type, "
        f"metric_data::text FROM {_TABLE} WHERE timestamp >= %s AND timestamp < %s "
        "ORDER BY timestamp, id"
    )
    parts = []
    cursor = connection.connection.cursor(name="archive_chunk")
    try:
        cursor.execute(query, (lo, hi))
        while batch := cursor.fetchmany(_FETCH_ROWS):
            parts.append(_arrays(batch))
    finally:
        cursor.close()
    if not parts:
        return _arrays([])
    ids, micros, metric_types, documents = zip(*parts, strict=True)
    return (
        np.concatenate(ids),
        np.concatenate(micros),
        np.concatenate(metric_types),
        _concat(documents),
    )


def _read_generic(
    connection: Connection, lo: datetime, hi: datetime
) -> tuple[IntArray, IntArray, ObjectArray, pa.Array]:
    # The raw column values: timestamps as stored (UTC text on SQLite), JSON as text.
    stmt = text(
        f"SELECT id, timestamp, metric_type, metric_data FROM {_TABLE} "
        "WHERE timestamp >= :lo AND timestamp < :hi ORDER BY timestamp, id"
    ).bindparams(bindparam("lo", type_=UTCDateTime), bindparam("hi", type_=UTCDateTime))
    rows = connection.execute(stmt, {"lo": lo, "hi": hi}).all()
    stamps = pd.to_datetime(pd.Series([r[1] for r in rows], dtype=object), utc=True)
    micros = pd.DatetimeIndex(stamps).as_unit("us").asi8
    return _arrays([(r[0], int(m), r[2], r[3]) for r, m in zip(rows, micros, strict=True)])


def _arrays(rows: Sequence[Sequence[Any]]) -> tuple[IntArray, IntArray, ObjectArray, pa.Array]:
    """Rows ``(id, epoch microseconds, metric_type, JSON text)`` as columns."""
    if not all(isinstance(r[3], str) for r in rows):
        raise _NotColumnar
    ids, micros, metric_types, texts = zip(*rows, strict=True) if rows else ([],) * 4
    documents = pa.array(texts, type=pa.string(), memory_pool=_POOL)
    if isinstance(documents, pa.ChunkedArray):  # over 2 GiB of text: too big to parse at once
        raise _NotColumnar
    return (
        np.array(ids, dtype=np.int64),
        np.array(micros, dtype=np.int64),
        np.array(metric_types, dtype=object),
        documents,
    )


def _concat(arrays: Sequence[pa.Array]) -> pa.Array:
    """One string array (a chunk over 2 GiB of text is too big to parse at once)."""
    try:
        return pa.concat_arrays(list(arrays), memory_pool=_POOL)
    except pa.ArrowInvalid:  # offsets overflow
        raise _NotColumnar from None


def _ndjson(documents: pa.Array) -> npt.NDArray[np.uint8]:
    """The documents as newline-delimited JSON (one line each: JSON text has no raw newline)."""
    _, offsets_buffer, data_buffer = documents.buffers()
    offsets = np.frombuffer(
        offsets_buffer, dtype=np.int32, count=len(documents) + 1, offset=documents.offset * 4
    )
    data = np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0] : offsets[-1]]
    return np.insert(data, offsets[1:] - offsets[0], ord("\n"))


def _columns(
    ids: IntArray,
    micros: IntArray,
    metric_types: ObjectArray,
    documents: pa.Array,
    kind_of: KindOf,
) -> RawChunk:
    n = len(ids)
    if n and pc.any(pc.match_substring(documents, "\n")).as_py():
        raise _NotColumnar  # not valid JSON text (JSON escapes newlines in strings)
    parsed = _parse(documents) if n else pa.table({})
    if parsed.num_rows != n or ROLLUP_KEY in parsed.column_names:
        raise _NotColumnar
    values: dict[str, FloatArray] = {}
    for name in parsed.column_names:
        _leaves(parsed[name].combine_chunks(), escape_key(name), values)
    if any(kind_of(path) == "counter" for path in values):
        raise _NotColumnar
    hosts, host_labels = _hosts(parsed, n)
    return RawChunk(
        ids=ids,
        micros=micros,
        metric_types=metric_types,
        hosts=hosts,
        host_labels=host_labels,
        documents=documents,
        values=values,
        kind_of=kind_of,
    )


def _parse(documents: pa.Array) -> pa.Table:
    lengths = pc.binary_length(documents)
    longest = int(pc.max(lengths).as_py() or 0)
    options = pa_json.ReadOptions(block_size=max(1 << 20, 2 * longest + 2))
    try:
        return pa_json.read_json(
            pa.py_buffer(_ndjson(documents)), read_options=options, memory_pool=_POOL
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise _NotColumnar from None


def _leaves(array: pa.Array, path: str, out: dict[str, FloatArray]) -> None:
    """Numeric leaves under ``array`` (flatten's rules); everything else is a label."""
    kind = array.type
    if pa.types.is_struct(kind):
        for field, child in zip(kind, array.flatten(), strict=True):
            _leaves(child, f"{path}.{escape_key(field.name)}", out)
    elif pa.types.is_integer(kind) or pa.types.is_floating(kind):
        cast = pc.cast(array, pa.float64(), safe=False, memory_pool=_POOL)
        column = cast.to_numpy(zero_copy_only=False)
        # Non-finite numbers are not metrics (a copy: Arrow's buffers are read-only).
        out[path] = np.where(np.isfinite(column), column, np.nan)


def _hosts(parsed: pa.Table, n: int) -> tuple[ObjectArray, pa.Array]:
    if "host" not in parsed.column_names or pa.types.is_null(parsed["host"].type):
        return np.full(n, "", dtype=object), pa.nulls(n, pa.string())
    column = parsed["host"].combine_chunks()
    if pa.types.is_string(column.type):
        keys = np.asarray(column.fill_null("").to_numpy(zero_copy_only=False), dtype=object)
        return keys, column
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        return np.full(n, "", dtype=object), pa.nulls(n, pa.string())  # a metric, no label
    raise _NotColumnar  # e.g. a host string Arrow took for a timestamp: keep it exact
