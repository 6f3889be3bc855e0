"""Load snapshots as pandas frames, resampled by the one rollup rule.

``load_frame`` is what notebooks, reports and the explorer call. With ``interval`` the
buckets are computed in the database where it can (PostgreSQL: ``date_bin`` and aggregates
weighted by the stored ``_rollup`` counts; SQLite: floor division of epoch seconds), and
only buckets cross the wire. Counters, and first/last on SQLite, go through the pandas rule
(:mod:`metrics_toolkit.rollup.frame`); tests prove every path gives the same numbers,
including over ranges that mix raw and rolled-up rows.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, TypeAlias

import numpy as np
import pandas as pd
import psycopg
from sqlalchemy import Connection, bindparam, func, select, text, type_coerce
from sqlalchemy import exc as sa_exc

from metrics_toolkit import catalog
from metrics_toolkit.archive.location import ArchiveSource, is_archive_source
from metrics_toolkit.documents import ROLLUP_KEY, flatten, split_path
from metrics_toolkit.errors import InvalidInterval, MetricsToolkitError
from metrics_toolkit.frames.contract import (
    AUTO_WIDTHS,
    COUNTER_STATS,
    DEFAULT_POINT_BUDGET,
    TIMESTAMP,
    MetricInfo,
    TimeLike,
    absent_notes,
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
from metrics_toolkit.frames.parallel import plan_parts, read_parts
from metrics_toolkit.frames.sources import Source, connect
from metrics_toolkit.frames.tiers import TierPlan, spans_clause, tier_rows
from metrics_toolkit.frames.tiers import plan as tier_plan
from metrics_toolkit.intervals import Interval, as_utc
from metrics_toolkit.rollup import blocks
from metrics_toolkit.rollup.frame import resample_stats, stats_frame
from metrics_toolkit.rollup.rule import Row
from metrics_toolkit.rollup.sql import (
    NEEDS,
    Filters,
    Query,
    needed_stats,
    pg_buckets,
    pg_buckets_fast,
    pg_documents_inline,
    pg_has_rollups,
    pg_stored_intervals,
    pg_values,
    sqlite_buckets,
    sqlite_buckets_raw,
    sqlite_has_rollups,
    sqlite_json_path,
    sqlite_stored_intervals,
    sqlite_values,
)
from metrics_toolkit.rollup.stats import POOL_LAW
from metrics_toolkit.store import series
from metrics_toolkit.store.models import MetricsSnapshot
from metrics_toolkit.store.pg_copy import Kind, copy_columns, copy_out
from metrics_toolkit.store.sqltypes import UTCDateTime

Method: TypeAlias = Literal["auto", "sql", "pandas"]


def time_range(
    source: Source,
    *,
    metric_type: str = "aggregated",
    host: str | None = None,
    start: TimeLike = None,
    end: TimeLike = None,
) -> tuple[datetime, datetime] | None:
    """The first and last snapshot times (within the filters), or None without data."""
    with connect(source) as connection:
        return _time_range(
            connection,
            Filters(metric_type, parse_time(start, "start"), parse_time(end, "end"), host),
        )


def _time_range(connection: Connection, filters: Filters) -> tuple[datetime, datetime] | None:
    stamp = MetricsSnapshot.timestamp
    if filters.host is None:
        # The first and the last row in time order: two probes of the timestamp index
        # (min() and max() beside a metric_type condition read the whole table in SQLite).
        rows = _filtered(select(stamp), connection, filters)
        stmt = select(
            rows.order_by(stamp.asc()).limit(1).scalar_subquery(),
            rows.order_by(stamp.desc()).limit(1).scalar_subquery(),
        )
    else:  # a host's rows may be rare: one pass over the range rather than a long probe
        stmt = _filtered(select(func.min(stamp), func.max(stamp)), connection, filters)
    first, last = connection.execute(stmt).one()
    if first is None:
        return None
    return as_utc(first), as_utc(last)


def _host_expr(connection: Connection) -> Any:
    return func.coalesce(MetricsSnapshot.metric_data["host"].as_string(), "")


def list_hosts(
    source: Source,
    *,
    metric_type: str | None = "aggregated",
    start: TimeLike = None,
    end: TimeLike = None,
) -> list[str]:
    """The host labels present (sorted), optionally for one metric_type and time range.

    Answered from the series catalog (docs/design.md §8), one indexed probe per candidate
    series: the snapshots table is never scanned.
    """
    lo, hi = parse_time(start, "start"), parse_time(end, "end")
    with connect(source) as connection:
        stmt = series.hosts_query(connection.dialect.name, metric_type, lo, hi)
        return sorted(str(h) for (h,) in connection.execute(stmt) if h)


def list_metrics(
    source: Source,
    start: TimeLike = None,
    end: TimeLike = None,
    *,
    metric_type: str = "aggregated",
    host: str | None = None,
    sample: int = 500,
) -> list[MetricInfo]:
    """Metric paths present in the data, with their kind and unit from the catalog.

    Reads the ``sample`` newest and ``sample`` oldest snapshots of the range (an index
    scan, however large the table), so a leaf that exists only in the middle of a long
    range may be missed; pass ``metrics=`` explicitly for such leaves.
    """
    filters = Filters(metric_type, parse_time(start, "start"), parse_time(end, "end"), host)
    paths: dict[str, None] = {}
    with connect(source) as connection:
        document = _without_rollup_stats(connection)
        for order in (MetricsSnapshot.timestamp.desc(), MetricsSnapshot.timestamp.asc()):
            stmt = _filtered(select(document), connection, filters)
            for (doc,) in connection.execute(stmt.order_by(order).limit(sample)):
                if isinstance(doc, dict):
                    paths.update(dict.fromkeys(flatten(doc)))
    infos = []
    for path in sorted(paths):
        spec = catalog.lookup(path)
        infos.append(MetricInfo(path, spec.kind, spec.unit, spec.description))
    return infos


def _without_rollup_stats(connection: Connection) -> Any:
    """The document without its top-level ``_rollup`` statistics, cut in the database.

    :func:`flatten` skips them; in a rolled-up row they are most of the text (a mergeable
    statistics block per leaf), so not sending and decoding them reads several times faster.
    """
    data = MetricsSnapshot.metric_data
    removed: Any
    if connection.dialect.name == "sqlite":
        removed = func.json_remove(data, f"$.{ROLLUP_KEY}")
    elif connection.dialect.name == "postgresql":
        removed = data.op("-")(ROLLUP_KEY)
    else:
        return data
    return type_coerce(removed, data.type)


def _filtered(stmt: Any, connection: Connection, filters: Filters) -> Any:
    stmt = stmt.where(MetricsSnapshot.metric_type == filters.metric_type)
    if filters.start is not None:
        stmt = stmt.where(MetricsSnapshot.timestamp >= filters.start)
    if filters.end is not None:
        stmt = stmt.where(MetricsSnapshot.timestamp < filters.end)
    if filters.host is not None:
        stmt = stmt.where(_host_expr(connection) == filters.host)
    if filters.spans is not None:
        stmt = stmt.where(
            spans_clause(filters.spans, MetricsSnapshot.timestamp, _host_expr(connection))
        )
    if filters.exclude:
        stmt = stmt.where(
            ~spans_clause(filters.exclude, MetricsSnapshot.timestamp, _host_expr(connection))
        )
    return stmt


def iter_rows(
    source: Source | Connection,
    start: TimeLike = None,
    end: TimeLike = None,
    *,
    metric_type: str = "aggregated",
    host: str | None = None,
    batch_size: int = 5000,
) -> Iterator[list[Row]]:
    """Snapshot rows ``(timestamp, metric_type, document)`` in time order, in batches."""
    filters = Filters(metric_type, parse_time(start, "start"), parse_time(end, "end"), host)
    yield from _iter_rows(source, filters, batch_size)


def _iter_rows(
    source: Source | Connection, filters: Filters, batch_size: int = 5000
) -> Iterator[list[Row]]:
    with connect(source) as connection:
        stmt = _filtered(
            select(
                MetricsSnapshot.timestamp, MetricsSnapshot.metric_type, MetricsSnapshot.metric_data
            ),
            connection,
            filters,
        ).order_by(MetricsSnapshot.timestamp, MetricsSnapshot.id)
        result = connection.execution_options(yield_per=batch_size).execute(stmt)
        for partition in result.partitions():
            yield [(ts, mt, doc) for ts, mt, doc in partition]


def load_frame(
    source: Source | ArchiveSource,
    start: TimeLike = None,
    end: TimeLike = None,
    *,
    metrics: Sequence[str] | None = None,
    metric_type: str = "aggregated",
    host: str | None = None,
    interval: str | Interval | timedelta | None = None,
    stats: Sequence[str] = ("mean",),
    by_host: bool = False,
    method: Method = "auto",
    point_budget: int = DEFAULT_POINT_BUDGET,
    tiers: bool = True,
) -> pd.DataFrame:
    """Snapshots in ``[start, end)`` as a frame, one column per dotted metric path.

    :param source: a SQLAlchemy Engine, Connection, Session, or a database URL; or the
        Parquet archive (a directory, an fsspec URL such as ``s3://bucket/prefix``, or an
        ``ArchiveStore``), read by :func:`metrics_toolkit.frames.archive.load_archive_frame`
        with the same semantics (``method`` is then ignored).
    :param start, end: datetimes or ISO strings; naive values are UTC. ``None``: unbounded.
    :param metrics: dotted paths (default: every path :func:`list_metrics` finds).
    :param host: one host label; ``None`` takes every host, pooled into the same buckets
        (or kept apart with ``by_host=True``, which adds a ``host`` index level).
        Pooling is the merge of the per-host buckets (``rollup.stats.POOL_LAW``): counts,
        sums, increases and resets add; min of mins, max of maxes, the highest
        ``max_rate``; the mean sample-weighted (a counter's mean is its last value);
        ``first``/``last`` the values of the earliest/latest sample, ties at equal times
        broken by host label (byte order; ``first`` the lowest, ``last`` the highest), then
        by row time and id. So a pooled counter's increase is the sum of each host's own
        increase, never a fold of several hosts' values into one sequence.
        Without an interval, rows of several hosts keep a ``host`` index level (rows in
        time order, equal times by host, then id) whenever more than one host is in the
        result; one host (or ``host=...``) gives the plain ``timestamp`` index.
    :param interval: a bucket width (``"5min"``, ``"1h"``...) to resample with the rollup
        rule; ``"auto"`` picks the finest width giving at most ``point_budget`` buckets;
        ``None`` returns every snapshot (a rolled-up row shows its bucket means).
    :param stats: from ``mean, min, max, sum, count, first, last`` and, for counters,
        ``increase, resets, max_rate``. One stat gives one column per metric; several give
        ``(metric, stat)`` columns.
    :param method: ``"auto"`` (database pushdown where possible), ``"sql"`` or ``"pandas"``
        (the reference path: documents through :mod:`metrics_toolkit.rollup.frame`).
    :param tiers: with an ``interval``, read the rollup tiers where they are valid and the
        snapshots only for the rest (:mod:`metrics_toolkit.frames.tiers`); the numbers are
        the same either way. ``False`` reads every snapshot of the range.

    The index is a UTC ``DatetimeIndex`` named ``timestamp``. ``frame.attrs`` tells the
    ``interval`` used, the ``stored_intervals`` met in the range and ``notes`` (for
    instance that part of the range is stored coarser than the requested width: those
    buckets then hold one point per stored bucket; nothing is invented), ``tiers`` (the
    tier widths read, in seconds; ``[]`` for none) and ``raw_rows`` (snapshot rows read).

    >>> load_frame(engine, "2026-01-01", "2026-01-08", metrics=["cpu.usage_percent"],
    ...            interval="1h", stats=("mean", "max"))  # doctest: +SKIP
    """
    if is_archive_source(source):
        from metrics_toolkit.frames.archive import load_archive_frame  # imports this module

        return load_archive_frame(
            source, start, end, metrics=metrics, metric_type=metric_type, host=host,
            interval=interval, stats=stats, by_host=by_host, point_budget=point_budget,
        )  # fmt: skip
    wanted = check_stats(stats)
    filters = Filters(metric_type, parse_time(start, "start"), parse_time(end, "end"), host)
    with connect(source) as connection:
        paths = (
            check_metrics(metrics)
            if metrics is not None
            else [
                m.path
                for m in list_metrics(
                    connection, filters.start, filters.end, metric_type=metric_type, host=host
                )
            ]
        )
        width = _resolve_interval(connection, interval, filters, point_budget)
        try:
            if width is None:
                frame = _values_frame(connection, paths, filters, wanted, by_host)
                frame.attrs.update(interval=None, method="sql", tiers=[], raw_rows=len(frame))
            else:
                pandas = _use_pandas(connection, method, paths, wanted)
                plan = tier_plan(connection, filters, width.seconds) if tiers else None
                if pandas:
                    frame = _pandas_frame(connection, paths, filters, width, wanted, by_host, plan)
                else:
                    frame = _sql_frame(connection, paths, filters, width, wanted, by_host, plan)
                frame.attrs["tiers"] = [] if plan is None else [plan.width]
        except (sa_exc.DataError, psycopg.DataError) as error:  # e.g. beyond float8's range
            cause = getattr(error, "orig", None) or error
            msg = f"Cannot read these metrics as numbers: {str(cause).strip().splitlines()[0]}"
            raise MetricsToolkitError(msg) from None
    frame.attrs["notes"] = [*frame.attrs.get("notes", []), *absent_notes(frame, metrics, host)]
    return frame


def _resolve_interval(
    connection: Connection, interval: Any, filters: Filters, budget: int
) -> Interval | None:
    if interval is None:
        return None
    if interval == "auto":
        if filters.start is not None and filters.end is not None:
            return choose_interval(filters.start, filters.end, point_budget=budget)
        found = _time_range(connection, filters)
        if found is None:
            return AUTO_WIDTHS[0]
        lo = filters.start or found[0]
        hi = filters.end or found[1] + timedelta(seconds=1)
        return choose_interval(lo, hi, point_budget=budget)
    try:
        return Interval.parse(interval)
    except InvalidInterval as error:
        raise InvalidInterval(f"{error} Or use interval='auto' or None.") from None


def _use_pandas(connection: Connection, method: Method, paths: list[str], stats: list[str]) -> bool:
    if method == "pandas":
        return True
    needs_pandas = any(catalog.kind_of(p) == "counter" for p in paths) or bool(
        set(stats) & set(COUNTER_STATS)
    )
    if connection.dialect.name == "sqlite" and (
        {"first", "last"} & set(stats)
        or any(sqlite_json_path(split_path(p)) is None for p in paths)
    ):
        needs_pandas = True
    if connection.dialect.name not in ("postgresql", "sqlite"):
        needs_pandas = True
    if method == "sql" and needs_pandas:
        msg = "The SQL path cannot compute counters or these statistics here; use method='auto'."
        raise MetricsToolkitError(msg)
    return needs_pandas


def _index(stamps_us: np.ndarray, hosts: Sequence[str] | None) -> pd.Index:
    stamps = pd.DatetimeIndex(pd.to_datetime(stamps_us, unit="us", utc=True), name=TIMESTAMP)
    if hosts is None:
        return stamps
    return pd.MultiIndex.from_arrays(
        [pd.Index(hosts, dtype=object), stamps], names=["host", TIMESTAMP]
    )


# --------------------------------------------------------------------------------------
# Full resolution


def _values_frame(
    connection: Connection, paths: list[str], filters: Filters, stats: list[str], by_host: bool
) -> pd.DataFrame:
    hosts: list[str] | None = None
    if connection.dialect.name == "postgresql":
        values = _pg_values(connection, paths, filters, by_host)
        stamps = values.pop("ts_us")
        if "host" in values:  # by_host, or several hosts in the range
            hosts = list(values.pop("host"))
    else:
        raw = _sqlite_fetch(connection, sqlite_values(paths, filters))
        parsed = pd.DatetimeIndex(pd.to_datetime(raw["timestamp"], utc=True, format="ISO8601"))
        stamps = parsed.as_unit("us").asi8
        hosts = list(raw["host"].astype(str))
        if not by_host and len(set(hosts)) <= 1:
            hosts = None
        values = {
            f"m{i}": pd.to_numeric(raw[f"m{i}"], errors="coerce").to_numpy(dtype=np.float64)
            for i in range(len(paths))
        }
        if "doc" in raw:  # keys no SQLite JSON path can name: read from the documents
            flat = [flatten(json.loads(d) if isinstance(d, str) else d) for d in raw["doc"]]
            for i, path in enumerate(paths):
                if sqlite_json_path(split_path(path)) is None:
                    values[f"m{i}"] = np.array([leaves.get(path, np.nan) for leaves in flat])
    # raw rows of several hosts always keep the host level
    index = _index(stamps, hosts) if len(stamps) else empty_index(hosts is not None)
    columns: dict[tuple[str, str], Any] = {}
    for i, path in enumerate(paths):
        column = values[f"m{i}"]
        for stat in stats:
            if stat == "count":
                columns[path, stat] = (~np.isnan(column)).astype(np.float64)
            elif stat in COUNTER_STATS:
                columns[path, stat] = np.full(len(column), np.nan)
            else:
                columns[path, stat] = column
    frame = shape(columns, paths, stats, index)
    frame.attrs["stored_intervals"] = []
    frame.attrs["notes"] = []
    return frame


#: Rows a pooled full-resolution read looks at first for a second host.
_HOST_SAMPLE = 1000


def _pg_values(
    connection: Connection, paths: list[str], filters: Filters, by_host: bool
) -> dict[str, Any]:
    """``ts_us``, ``host`` (with ``by_host`` or several hosts) and ``m0``, ``m1``... as arrays.

    Without ``by_host``: when the first rows show several hosts, they are read with their
    hosts; otherwise with a flag telling the rows of another host than the one seen, and
    only when some are flagged are they read again with their hosts.
    Optimistic first (each leaf cast straight to float8), carefully when a non-number makes
    that cast fail. Without hosts every column is fixed-width: binary COPY into NumPy. A
    large range is read in time slices over several connections from one snapshot
    (:mod:`metrics_toolkit.frames.parallel`).
    """

    one_host = None
    if not by_host and filters.host is None:
        rows = _filtered(select(_host_expr(connection).label("h")), connection, filters)
        sample = rows.limit(_HOST_SAMPLE).subquery()
        seen = connection.execute(select(sample.c.h).distinct().limit(2)).scalars().all()
        if len(seen) > 1:  # a look at a few rows usually shows several hosts at once
            return _pg_values(connection, paths, filters, by_host=True)
        one_host = seen[0] if seen else None

    def run(part_connection: Connection, part: Filters, fast: bool) -> dict[str, Any]:
        query = pg_values(paths, part, fast=fast, by_host=by_host, one_host=one_host)
        if by_host:
            raw = _pg_copy(part_connection, query)
            return {name: raw[name].to_numpy() for name in query.columns}
        kinds: list[tuple[str, Kind]] = [("ts_us", "timestamptz")]
        kinds += [(n, "int8" if n == "other_host" else "float8") for n in query.columns[1:]]
        driver = part_connection.connection.driver_connection
        return copy_columns(driver, query.sql, query.params, kinds)

    def read(part_connection: Connection, part: Filters) -> dict[str, Any]:
        driver = part_connection.connection.driver_connection
        try:
            with driver.transaction():  # type: ignore[union-attr]  # savepoint, see _pg_bucket_rows
                return run(part_connection, part, fast=True)
        except psycopg.DataError:
            return run(part_connection, part, fast=False)

    parts = plan_parts(connection, filters, lambda: _time_range(connection, filters))
    done = read_parts(connection, parts, read)
    if len(done) == 1:
        values = done[0]
    else:
        values = {name: np.concatenate([part[name] for part in done]) for name in done[0]}
    if one_host is not None and values.pop("other_host").any():
        return _pg_values(connection, paths, filters, by_host=True)
    return values


def _pg_copy(connection: Connection, query: Query) -> pd.DataFrame:
    """Run a SELECT through COPY ... TO STDOUT (CSV) and parse it with pandas' C reader."""
    driver = connection.connection.driver_connection
    buffer = io.BytesIO(copy_out(driver, query.sql, query.params, "csv"))
    dtypes: dict[str, Any] = dict.fromkeys(query.columns[2:], np.float64)
    dtypes.update(ts_us=np.int64, host=str)
    if buffer.getbuffer().nbytes == 0:
        return pd.DataFrame({name: pd.Series(dtype=dtypes[name]) for name in query.columns})
    return pd.read_csv(
        buffer,
        header=None,
        names=query.columns,
        dtype=dtypes,
        keep_default_na=False,
        na_values={name: [""] for name in query.columns[2:]},
    )


def _sqlite_fetch(connection: Connection, query: Query) -> pd.DataFrame:
    statement = text(query.sql)
    for name, value in query.params.items():  # stored as text: bind times as stored
        if isinstance(value, datetime):
            statement = statement.bindparams(bindparam(name, type_=UTCDateTime()))
    rows = connection.execute(statement, query.params).all()
    # plain tuples: from_records probes each Row's attributes (a sixth of a tier read)
    return pd.DataFrame.from_records([tuple(row) for row in rows], columns=query.columns)


# --------------------------------------------------------------------------------------
# Buckets in the database


def _sql_frame(
    connection: Connection,
    paths: list[str],
    filters: Filters,
    width: Interval,
    stats: list[str],
    by_host: bool,
    plan: TierPlan | None = None,
) -> pd.DataFrame:
    sql_stats = needed_stats(stats)
    if plan is not None:
        raw = _tier_bucket_rows(connection, paths, plan, width, sql_stats, by_host)
    elif connection.dialect.name == "postgresql":
        raw = _pg_bucket_rows(connection, paths, filters, width, stats, by_host)
    elif _sqlite_fetch(connection, sqlite_has_rollups(filters))["any"].iloc[0]:
        raw = _sqlite_fetch(
            connection, sqlite_buckets(paths, filters, width.seconds, sql_stats, by_host)
        )
    else:
        one_pass = _one_pass_stats(sql_stats, stats)
        raw = _sqlite_fetch(
            connection, sqlite_buckets_raw(paths, filters, width.seconds, one_pass, by_host)
        )
    if len(raw):
        index = _index(
            raw["bucket_us"].to_numpy(dtype=np.int64),
            raw["host"].to_numpy(dtype=object) if by_host else None,
        )
    else:
        index = empty_index(by_host)
    columns: dict[tuple[str, str], Any] = {}
    for i, path in enumerate(paths):
        got = {
            s: pd.to_numeric(raw[f"m{i}_{s}"], errors="coerce").to_numpy(dtype=np.float64)
            for s in [*sql_stats, "mean"]
            if f"m{i}_{s}" in raw
        }
        for stat in stats:
            if stat == "mean" and "mean" in got:
                columns[path, stat] = got["mean"]
            elif stat == "mean":
                with np.errstate(invalid="ignore", divide="ignore"):
                    columns[path, stat] = got["sum"] / got["count"]
            elif stat == "count":
                columns[path, stat] = np.nan_to_num(got["count"], nan=0.0)
            elif stat in COUNTER_STATS:
                columns[path, stat] = np.full(len(raw), np.nan)
            else:
                columns[path, stat] = got[stat]
    frame = shape(columns, paths, stats, index)
    cells = raw["intervals"].dropna().unique() if len(raw) else []  # mostly None: one pass
    names = {name for cell in cells if isinstance(cell, str) for name in cell.split(",")}
    if plan is not None:  # the tier rows hide the stored intervals of what they cover
        names |= _stored_intervals(connection, filters)
    stored = stored_intervals(names)
    frame.attrs.update(
        interval=str(width),
        method="sql",
        stored_intervals=stored,
        notes=notes(width, stored),
        raw_rows=int(pd.to_numeric(raw["nrows"]).sum()) if len(raw) else 0,
    )
    return frame


def _stored_intervals(connection: Connection, filters: Filters) -> set[str]:
    """The intervals of the rolled-up snapshots matching ``filters``."""
    if connection.dialect.name == "postgresql":
        found = _pg_fetch(connection, pg_stored_intervals(filters))
    else:
        found = _sqlite_fetch(connection, sqlite_stored_intervals(filters))
    return {v for v in found["interval"] if isinstance(v, str)}


#: Up to this many snapshot spans, a tier read on PostgreSQL reads each span the fast way.
_FAST_SPANS = 8


def _tier_bucket_rows(
    connection: Connection,
    paths: list[str],
    plan: TierPlan,
    width: Interval,
    sql_stats: list[str],
    by_host: bool,
) -> pd.DataFrame:
    """Bucket aggregates of the plan's valid tier rows and the snapshots it reads, merged
    by the law (docs/design.md §9).

    count/sum/min/max (and so mean): the tier rows' statistics from their blocks (no
    document read), the snapshots as any bucketed read takes them (on PostgreSQL up to
    :data:`_FAST_SPANS` spans the fast way: the tier log's spans can hold many rows, the
    day being written), the parts merged by ``POOL_LAW``. first/last: one query over the
    union of tier documents and snapshots, which orders samples by time in the database.
    """
    pg = connection.dialect.name == "postgresql"
    tiers = blocks.bucket_rows(connection, paths, plan.tiers, width.seconds, sql_stats, by_host)
    if tiers is not None:
        parts = [tiers]
        if pg and len(plan.raw) <= _FAST_SPANS:
            for raw in plan.raw:
                parts.append(
                    _pg_bucket_rows(
                        connection, paths, raw, width, sql_stats, by_host, mergeable=True
                    )
                )
        elif pg and plan.raw:
            query = pg_buckets(paths, plan.raw, width.seconds, sql_stats, by_host)
            parts.append(_pg_fetch(connection, query))
        elif plan.raw:
            query = sqlite_buckets(paths, plan.raw, width.seconds, sql_stats, by_host)
            parts.append(_sqlite_fetch(connection, query))
        return _merge_bucket_parts(parts, paths, sql_stats)
    sources = [plan.tiers, *plan.raw]
    if pg:
        return _pg_fetch(connection, pg_buckets(paths, sources, width.seconds, sql_stats, by_host))
    query = sqlite_buckets(paths, sources, width.seconds, sql_stats, by_host)
    return _sqlite_fetch(connection, query)


def _pg_fetch(connection: Connection, query: Query) -> pd.DataFrame:
    driver = connection.connection.driver_connection
    with driver.cursor() as cursor:  # type: ignore[union-attr]
        cursor.execute(query.sql, query.params)
        rows = cursor.fetchall()
    return pd.DataFrame.from_records(rows, columns=query.columns)


def _one_pass_stats(sql_stats: list[str], stats: list[str]) -> list[str]:
    """The SQL statistics for one query with nothing to merge: ``mean`` as ``avg`` (one
    read of each leaf) in place of ``count`` + ``sum`` (two), unless those are asked for."""
    if "mean" not in stats:
        return sql_stats
    return [s for s in sql_stats if s not in ("count", "sum") or s in stats] + ["mean"]


def _pg_bucket_rows(
    connection: Connection,
    paths: list[str],
    filters: Filters,
    width: Interval,
    stats: list[str],
    by_host: bool,
    mergeable: bool = False,
) -> pd.DataFrame:
    """Bucket aggregates on PostgreSQL: raw rows the fast way, rolled-up rows carefully.

    ``stats`` are the user's statistics. The result has ``m<i>_<stat>`` columns for the SQL
    statistics they need (:func:`needed_stats`), or ``m<i>_mean`` in place of count + sum
    when one query answers everything (no rolled-up rows to merge) and not ``mergeable``.
    """
    sql_stats = needed_stats(stats)
    if {"first", "last"} & set(sql_stats):
        return _pg_fetch(connection, pg_buckets(paths, filters, width.seconds, sql_stats, by_host))
    has_rollups = bool(_pg_fetch(connection, pg_has_rollups(filters))["any"].iloc[0])
    fast_stats = sql_stats if has_rollups or mergeable else _one_pass_stats(sql_stats, stats)
    inline = bool(_pg_fetch(connection, pg_documents_inline(filters))["inline"].iloc[0])
    driver = connection.connection.driver_connection
    try:
        with driver.transaction():  # type: ignore[union-attr]  # a savepoint: a failed cast
            fast = pg_buckets_fast(  # must not abort the caller's transaction
                paths,
                filters,
                width.seconds,
                fast_stats,
                by_host,
                skip_rollups=has_rollups,
                inline=inline,
            )
            parts = [_pg_fetch(connection, fast)]
    except psycopg.DataError:  # a non-number where a number is expected (SQLSTATE class 22)
        parts = [
            _pg_fetch(
                connection, pg_buckets(paths, filters, width.seconds, sql_stats, by_host, "raw")
            )
        ]
    if has_rollups:
        parts.append(
            _pg_fetch(
                connection, pg_buckets(paths, filters, width.seconds, sql_stats, by_host, "rolled")
            )
        )
    return _merge_bucket_parts(parts, paths, sql_stats)


def _merge_bucket_parts(
    parts: list[pd.DataFrame], paths: list[str], stats: list[str]
) -> pd.DataFrame:
    """Merge per-bucket partial aggregates by the pooling law (``rollup.stats.POOL_LAW``)."""
    parts = [p for p in parts if len(p)]
    if len(parts) <= 1:
        empty = ["bucket_us", "host", "intervals", "samples", "nrows"]
        empty += [f"m{i}_{stat}" for i in range(len(paths)) for stat in stats]
        return parts[0] if parts else pd.DataFrame(columns=empty)
    both = pd.concat(parts, ignore_index=True)
    keys = ["bucket_us", "host"]
    laws: dict[str, list[str]] = {"sum": ["samples", "nrows"], "min": [], "max": []}
    for i in range(len(paths)):
        for stat in stats:
            column = f"m{i}_{stat}"
            both[column] = pd.to_numeric(both[column], errors="coerce")
            laws[POOL_LAW[stat]].append(column)
    for column in laws["sum"]:
        both[column] = pd.to_numeric(both[column], errors="coerce")
    grouped = both.groupby(keys, sort=False)
    merged = pd.concat(
        [
            grouped[laws["sum"]].sum(min_count=1),  # a sum over no values is missing, not 0
            grouped[laws["min"]].min(),
            grouped[laws["max"]].max(),
        ],
        axis=1,
    )
    named = both[both["intervals"].map(lambda v: isinstance(v, str))]
    intervals = named.groupby(keys, sort=False)["intervals"].agg(",".join)
    merged["intervals"] = intervals.reindex(merged.index)
    merged = merged.reset_index()[
        [*keys, "intervals", *[c for c in both if c not in (*keys, "intervals")]]
    ]
    return merged.sort_values(
        ["host", "bucket_us"] if merged["host"].nunique() > 1 else ["bucket_us"]
    )


# --------------------------------------------------------------------------------------
# The pandas reference path


def _pandas_frame(
    connection: Connection,
    paths: list[str],
    filters: Filters,
    width: Interval,
    stats: list[str],
    by_host: bool,
    plan: TierPlan | None = None,
) -> pd.DataFrame:
    if plan is None:
        rows = [row for batch in _iter_rows(connection, filters) for row in batch]
        raw_rows, names = len(rows), _row_intervals(rows)
    else:
        raw = [row for part in plan.raw for batch in _iter_rows(connection, part) for row in batch]
        raw_rows, names = len(raw), _row_intervals(raw) | _stored_intervals(connection, filters)
        rows = sorted([*tier_rows(connection, plan.tiers), *raw], key=lambda row: row[0])
    if not rows:
        frame = shape({}, paths, stats, empty_index(by_host))
        frame.attrs.update(
            interval=str(width), method="pandas", stored_intervals=[], notes=[], raw_rows=0
        )
        return frame
    # Always per host: pooled frames merge the hosts' buckets by the pooling law.
    buckets = resample_stats(stats_frame(rows, keys=("host", "metric_type")), width)
    columns, index = stats_columns(buckets, paths, stats, by_host=by_host)
    frame = shape(columns, paths, stats, index)
    stored = stored_intervals(names)
    frame.attrs.update(
        interval=str(width),
        method="pandas",
        stored_intervals=stored,
        notes=notes(width, stored),
        raw_rows=raw_rows,
    )
    return frame


def _row_intervals(rows: list[Row]) -> set[str]:
    found = set()
    for _, _, doc in rows:
        meta = doc.get(ROLLUP_KEY) if isinstance(doc, dict) else None
        if isinstance(meta, dict) and isinstance(meta.get("interval"), str):
            found.add(meta["interval"])
    return found


__all__ = [
    "AUTO_WIDTHS",
    "NEEDS",
    "MetricInfo",
    "choose_interval",
    "iter_rows",
    "list_hosts",
    "list_metrics",
    "load_frame",
    "parse_time",
    "time_range",
]
