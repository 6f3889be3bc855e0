"""SQL that extracts metric leaves and aggregates buckets inside the database.

Metric paths never reach SQL text: each path is a bound parameter (a ``text[]`` on
PostgreSQL, a JSON path string on SQLite). Rolled-up rows (with a ``_rollup`` key) are
merged by their stored statistics, raw rows count as buckets of one sample, exactly as the
pandas rule in :mod:`metrics_toolkit.rollup.frame` does; tests prove the results equal.

Bucketing is the rollup rule's: PostgreSQL ``date_bin(width, ts, '1970-01-01+00')``, SQLite
floor division of epoch seconds. Both return bucket starts as epoch microseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from metrics_toolkit.documents import ROLLUP_KEY, split_path

#: Statistics the SQL path can compute per leaf (counters use the pandas path).
SQL_STATS = ("count", "sum", "min", "max", "first", "last")
#: What each user-facing statistic needs from the database.
NEEDS: dict[str, tuple[str, ...]] = {
    "mean": ("count", "sum"),
    "count": ("count",),
    "sum": ("sum",),
    "min": ("min",),
    "max": ("max",),
    "first": ("first",),
    "last": ("last",),
}


@dataclass
class Query:
    """One SQL statement with its bound parameters and the names of its result columns."""

    sql: str
    params: dict[str, Any] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Span:
    """A half-open time range ``[start, end)`` (``None``: unbounded) of some hosts (``None``:
    every host)."""

    start: datetime | None
    end: datetime | None
    hosts: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Filters:
    """Which rows a query reads.

    ``spans``: when set, only rows inside one of them; ``exclude``: no row inside any of
    them. ``tier_width``: read the rollup tier of that width (``metrics_tiers``, rolled-up
    documents) in place of the snapshots.
    """

    metric_type: str
    start: datetime | None
    end: datetime | None
    host: str | None
    spans: tuple[Span, ...] | None = None
    exclude: tuple[Span, ...] = ()
    tier_width: int | None = None


def needed_stats(stats: Sequence[str]) -> list[str]:
    wanted = {need for stat in stats for need in NEEDS[stat]}
    return [s for s in SQL_STATS if s in wanted]


# --------------------------------------------------------------------------------------
# PostgreSQL


def _where(
    filters: Filters,
    params: dict[str, Any],
    mark: Callable[[str], str],
    host_sql: str,
    prefix: str = "",
) -> str:
    """The filters as a WHERE clause; ``mark`` turns a name into the driver's placeholder.

    ``prefix`` keeps the parameter names of several sources in one statement apart. On the
    tier table the host is a column; on the snapshots it is ``coalesce(host_sql, '')``.
    """

    def bind(name: str, value: Any) -> str:
        params[prefix + name] = value
        return mark(prefix + name)

    host = "host" if filters.tier_width is not None else f"coalesce({host_sql}, '')"
    clauses = [f"metric_type = {bind('metric_type', filters.metric_type)}"]
    if filters.tier_width is not None:
        clauses.append(f"width_seconds = {bind('tier_width', filters.tier_width)}")
    if filters.start is not None:
        clauses.append(f"timestamp >= {bind('start', filters.start)}")
    if filters.end is not None:
        clauses.append(f"timestamp < {bind('end', filters.end)}")
    if filters.host is not None:
        clauses.append(f"{host} = {bind('host', filters.host)}")

    def spans(items: Sequence[Span], name: str) -> str:
        ors = []
        for k, span in enumerate(items):
            ands = []
            if span.start is not None:
                ands.append(f"timestamp >= {bind(f'{name}{k}_lo', span.start)}")
            if span.end is not None:
                ands.append(f"timestamp < {bind(f'{name}{k}_hi', span.end)}")
            if span.hosts is not None:
                marks = [bind(f"{name}{k}_h{j}", h) for j, h in enumerate(span.hosts)]
                ands.append(f"{host} IN ({', '.join(marks)})" if marks else "false")
            ors.append(f"({' AND '.join(ands) or 'true'})")
        return f"({' OR '.join(ors) or 'false'})"

    if filters.spans is not None:
        clauses.append(spans(filters.spans, "s"))
    if filters.exclude:
        clauses.append(f"NOT {spans(filters.exclude, 'x')}")
    return " AND ".join(clauses)


def _table(filters: Filters) -> str:
    return "metrics_snapshots" if filters.tier_width is None else "metrics_tiers"


#: Below this size an uncompressed document is stored inline (PostgreSQL's TOAST threshold is
#: about 2 kB per row), so reading it costs no decompression.
_INLINE_BYTES = 1800


def _pg_where(filters: Filters, params: dict[str, Any], prefix: str = "") -> str:
    return _where(filters, params, lambda name: f"%({name})s", "metric_data ->> 'host'", prefix)


def _pg_rows(where: str, extra: str = "", table: str = "metrics_snapshots") -> str:
    """The matching rows, each document decompressed at most once.

    A large JSONB document is stored compressed (or out of line), and every ``->`` on the
    column would decompress it again; ``|| '{}'`` makes one in-memory copy per row that
    every leaf extraction then reads (2.5x faster on full collector documents). A small,
    inline document is read where it lies: copying it would only cost time. ``extra``
    restricts the rows further (``ROWS_SQL``).
    """
    return f"({_pg_select(where + extra, table)}) AS src"


def _pg_select(where: str, table: str = "metrics_snapshots", tier: bool | None = None) -> str:
    """The SELECT of :func:`_pg_rows`; with ``tier`` also a ``tier`` flag column."""
    row_id = "0::bigint AS id" if table == "metrics_tiers" else "id"
    flag = "" if tier is None else f", {str(tier).lower()} AS tier"
    return (
        f"SELECT {row_id}, timestamp, metric_type, "
        "CASE WHEN pg_column_compression(metric_data) IS NULL "
        f"AND pg_column_size(metric_data) < {_INLINE_BYTES} THEN metric_data "
        f"ELSE metric_data || '{{}}'::jsonb END AS metric_data{flag} "
        f"FROM {table} WHERE {where} OFFSET 0"
    )


def _pg_sources(sources: Sequence[Filters], params: dict[str, Any], extra: str) -> str:
    """The rows of several sources (snapshots and tier rows), UNION ALL, with a ``tier``
    flag; ``extra`` (``ROWS_SQL``) applies to the snapshots only."""
    selects = []
    for n, source in enumerate(sources):
        tier = source.tier_width is not None
        where = _pg_where(source, params, f"u{n}_") + ("" if tier else extra)
        selects.append(f"({_pg_select(where, _table(source), tier)})")
    return f"({' UNION ALL '.join(selects)}) AS src"


def _pg_num(expr: str) -> str:
    return f"CASE WHEN jsonb_typeof({expr}) = 'number' THEN ({expr})::float8 END"


def _pg_chain(i: int, path: str, params: dict[str, Any]) -> str:
    """``metric_data -> %(k0_0)s -> %(k0_1)s ...``: one bound parameter per key."""
    chain = "metric_data"
    for j, key in enumerate(split_path(path)):
        params[f"k{i}_{j}"] = key
        chain += f" -> %(k{i}_{j})s"
    return chain


def pg_values(
    metrics: Sequence[str],
    filters: Filters,
    *,
    fast: bool = False,
    by_host: bool = True,
    one_host: str | None = None,
) -> Query:
    """Full resolution: the timestamp, the host (with ``by_host``), one float per metric.

    Uses psycopg's ``%(name)s`` placeholders; psycopg binds them (client-side for COPY,
    with proper quoting), never our string formatting. ``fast`` casts each leaf straight
    to float8, which fails on a non-number (see :func:`pg_buckets_fast`); otherwise each
    leaf is type-checked and non-numbers are skipped.

    With ``by_host`` the result is for a text COPY: ``ts_us`` (epoch microseconds), ``host``
    and the values (empty when missing). Without, every column is fixed-width and non-null
    (``timestamp``, then NaN for a missing value), for :mod:`metrics_toolkit.store.pg_copy`,
    and with ``one_host`` an ``other_host`` int8 column flags (1) the rows of another host.
    Rows come in time order; with ``by_host``, rows of equal times by host (byte order),
    then id: the pooling law's tie order.
    """
    params: dict[str, Any] = {}
    extract = []
    convert = []
    for i, path in enumerate(metrics):
        if fast:
            extract.append(f"({_pg_chain(i, path, params)})::float8 AS v{i}")
            value = f"v{i}"
        else:
            params[f"p{i}"] = list(split_path(path))
            extract.append(f"metric_data #> %(p{i})s AS v{i}")
            value = _pg_num(f"v{i}")
        convert.append(f"{value} AS m{i}" if by_host else f"coalesce({value}, 'NaN') AS m{i}")
    host = ["metric_data ->> 'host' AS host"] if by_host or one_host is not None else []
    inner = ", ".join(["id", "timestamp", *host, *extract])
    head = (
        "SELECT (extract(epoch FROM timestamp) * 1000000)::bigint AS ts_us, "
        "coalesce(host, '') AS host"
        if by_host
        else "SELECT timestamp"
    )
    if one_host is not None and not by_host:
        params["one_host"] = one_host
        convert.append("(coalesce(host, '') <> %(one_host)s)::int::int8 AS other_host")
    order = "timestamp, coalesce(host, '') COLLATE \"C\", id" if by_host else "timestamp"
    sql = (
        head
        + "".join(f", {c}" for c in convert)
        + f" FROM (SELECT {inner} FROM {_pg_rows(_pg_where(filters, params))}"
        f" OFFSET 0) AS s ORDER BY {order}"
    )
    first = ["ts_us", "host"] if by_host else ["timestamp"]
    flag = ["other_host"] if one_host is not None and not by_host else []
    return Query(sql, params, [*first, *[f"m{i}" for i in range(len(metrics))], *flag])


ROWS_SQL = {
    "all": "",
    "raw": f" AND NOT (metric_data ? '{ROLLUP_KEY}')",
    "rolled": f" AND metric_data ? '{ROLLUP_KEY}'",
}
_BIN = "date_bin(%(width)s::interval, timestamp, TIMESTAMPTZ '1970-01-01 00:00:00+00')"


def _grouped(items: Sequence[str], source: str, columns: Sequence[str], by_host: bool) -> str:
    """Aggregate ``items`` per bucket (and host), then label buckets in epoch microseconds.

    Grouping on the ``date_bin`` timestamp itself (not on a numeric expression of it) lets
    PostgreSQL hash-aggregate, in parallel workers when the source allows.
    """
    group, order = ("1, 2", "host, bucket") if by_host else ("1", "bucket")
    outer = ", ".join(columns[1:])
    return (
        f"SELECT (extract(epoch FROM bucket) * 1000000)::bigint AS bucket_us, {outer} FROM ("
        f"SELECT {_BIN} AS bucket, {', '.join(items)} FROM {source} GROUP BY {group}"
        f") AS g ORDER BY {order}"
    )


def pg_buckets(
    metrics: Sequence[str],
    filters: Filters | Sequence[Filters],
    width_seconds: int,
    stats: Sequence[str],
    by_host: bool,
    rows: str = "all",
) -> Query:
    """Per bucket (and host) aggregates of ``stats`` (from :data:`SQL_STATS`) per metric.

    The careful path: every leaf is type-checked (``jsonb_typeof``), so a string or a
    boolean where a number is expected is skipped, and rolled-up rows contribute their
    stored statistics. ``rows`` limits it to ``"raw"`` or ``"rolled"`` snapshot rows.
    Several ``filters`` read the union of their rows (tier rows and snapshots); the
    ``intervals`` column names only the snapshots' stored intervals.
    """
    params: dict[str, Any] = {"width": f"{width_seconds} seconds"}
    interval = f"metric_data -> '{ROLLUP_KEY}' ->> 'interval'"
    is_tier = tier = "tier"  # several sources: their flag; one: whether it is a tier
    if isinstance(filters, Filters):
        is_tier = str(filters.tier_width is not None).lower()
        tier = f"{is_tier} AS tier"
    level1 = [
        "id",
        "timestamp",
        tier,
        "coalesce(metric_data ->> 'host', '') AS host",
        f"(metric_data ? '{ROLLUP_KEY}') AS r",
        f"CASE WHEN NOT {is_tier} THEN {interval} END AS rollup_interval",
        f"metric_data #> '{{{ROLLUP_KEY},samples}}' AS rollup_samples",
    ]
    level2 = [
        "id",
        "timestamp",
        "tier",
        "host",
        "r",
        "rollup_interval",
        f"{_pg_num('rollup_samples')} AS samples",
    ]
    level3 = [
        "host" if by_host else "'' AS host",
        "string_agg(DISTINCT rollup_interval, ',') AS intervals",
        "sum(CASE WHEN r THEN samples ELSE 1 END) AS samples",
        "count(*) FILTER (WHERE NOT tier) AS nrows",
    ]
    columns = ["bucket_us", "host", "intervals", "samples", "nrows"]
    stored = {"count", "sum", "min", "max", "first", "last"} & set(stats)
    if {"first", "last"} & stored:
        stored |= {f"{s}_time" for s in ("first", "last") if s in stored}
    for i, path in enumerate(metrics):
        keys = list(split_path(path))
        params[f"p{i}"] = keys
        leaf = f"metric_data #> %(p{i})s"  # a tier row's leaf (a mean) is never read
        level1.append(f"CASE WHEN NOT {is_tier} THEN {leaf} END AS v{i}")
        for stat in sorted(stored):
            params[f"p{i}_{stat}"] = [ROLLUP_KEY, stat, *keys]
            level1.append(
                f"CASE WHEN metric_data ? '{ROLLUP_KEY}' "
                f"THEN metric_data #> %(p{i}_{stat})s END AS v{i}_{stat}"
            )
            level2.append(f"{_pg_num(f'v{i}_{stat}')} AS x{i}_{stat}")
        level2.append(f"{_pg_num(f'v{i}')} AS x{i}")
        raw = f"x{i}"
        for stat in stats:
            if stat == "count":
                expr = f"sum(CASE WHEN r THEN x{i}_count WHEN {raw} IS NOT NULL THEN 1 END)"
            elif stat in ("sum", "min", "max"):
                fn = "sum" if stat == "sum" else stat
                expr = f"{fn}(CASE WHEN r THEN x{i}_{stat} ELSE {raw} END)"
            else:  # first / last: the value of the earliest / latest sample
                value = f"CASE WHEN r THEN x{i}_{stat} ELSE {raw} END"
                when = f"CASE WHEN r THEN x{i}_{stat}_time ELSE extract(epoch FROM timestamp) END"
                # ties: host (byte order), then row order (time, id), as the pooling law
                order = "ASC" if stat == "first" else "DESC"
                ties = f'host COLLATE "C" {order}, timestamp {order}, id {order}'
                expr = (
                    f"(array_agg({value} ORDER BY {when} {order}, {ties}) "
                    f"FILTER (WHERE ({value}) IS NOT NULL))[1]"
                )
            level3.append(f"{expr} AS m{i}_{stat}")
            columns.append(f"m{i}_{stat}")
    if isinstance(filters, Filters):
        rows_sql = _pg_rows(_pg_where(filters, params), ROWS_SQL[rows], _table(filters))
    else:
        rows_sql = _pg_sources(filters, params, ROWS_SQL[rows])
    source = (
        f"(SELECT {', '.join(level2)} FROM ("
        f"SELECT {', '.join(level1)} FROM {rows_sql} OFFSET 0"
        ") AS l1 OFFSET 0) AS l2"
    )
    return Query(_grouped(level3, source, columns, by_host), params, columns)


def pg_buckets_fast(
    metrics: Sequence[str],
    filters: Filters,
    width_seconds: int,
    stats: Sequence[str],
    by_host: bool,
    *,
    skip_rollups: bool,
    inline: bool = True,
) -> Query:
    """Raw rows only, the fast way: ``count``, ``sum``, ``min``, ``max``, ``mean`` per metric.

    Each leaf is read as ``(metric_data -> key -> key ...)::float8``. That cast fails (a
    ``DataError``) on anything but a JSON number, so a caller runs this optimistically and
    falls back to :func:`pg_buckets` (which skips such values) when it fails: exact either
    way. ``mean`` (``avg``) reads each leaf once where ``count`` + ``sum`` read it twice.

    ``inline``: the documents are small and stored inline (see :func:`pg_documents_inline`),
    so the aggregates read the table directly and PostgreSQL may use parallel workers, as
    it does for hand-written SQL; otherwise each document is decompressed once in a
    subquery first.
    """
    assert not {"first", "last"} & set(stats), "first/last need pg_buckets"
    params: dict[str, Any] = {"width": f"{width_seconds} seconds"}
    aggregates = [
        "coalesce(metric_data ->> 'host', '') AS host" if by_host else "'' AS host",
        "NULL AS intervals",
        "count(*) AS samples",
        "count(*) AS nrows",
    ]
    columns = ["bucket_us", "host", "intervals", "samples", "nrows"]
    values = []
    for i, path in enumerate(metrics):
        value = f"({_pg_chain(i, path, params)})::float8"
        values.append(f"{value} AS x{i}")
        for stat in stats:
            fn = "avg" if stat == "mean" else stat
            aggregates.append(f"{fn}({value if inline else f'x{i}'}) AS m{i}_{stat}")
            columns.append(f"m{i}_{stat}")
    where = _pg_where(filters, params) + (ROWS_SQL["raw"] if skip_rollups else "")
    if inline:
        source = f"metrics_snapshots WHERE {where}"
    else:
        source = f"(SELECT *, {', '.join(values)} FROM {_pg_rows(where)} OFFSET 0) AS v"
    return Query(_grouped(aggregates, source, columns, by_host), params, columns)


def pg_documents_inline(filters: Filters, sample: int = 20) -> Query:
    """Whether the first ``sample`` matching documents are small and stored uncompressed."""
    params: dict[str, Any] = {}
    sql = (
        "SELECT coalesce(bool_and(pg_column_compression(metric_data) IS NULL "
        f"AND pg_column_size(metric_data) < {_INLINE_BYTES}), true) FROM ("
        f"SELECT metric_data FROM metrics_snapshots WHERE {_pg_where(filters, params)} "
        f"LIMIT {int(sample)}) AS s"
    )
    return Query(sql, params, ["inline"])


def pg_stored_intervals(filters: Filters) -> Query:
    """The distinct stored intervals of the matching rolled-up snapshots (partial index)."""
    params: dict[str, Any] = {}
    where = _pg_where(filters, params) + ROWS_SQL["rolled"]
    sql = (
        f"SELECT DISTINCT metric_data -> '{ROLLUP_KEY}' ->> 'interval' "
        f"FROM metrics_snapshots WHERE {where}"
    )
    return Query(sql, params, ["interval"])


def pg_estimate_rows(filters: Filters) -> Query:
    """The planner's estimate of the matching rows (``EXPLAIN``: no rows are read)."""
    params: dict[str, Any] = {}
    where = _pg_where(filters, params)
    sql = f"EXPLAIN (FORMAT JSON) SELECT 1 FROM metrics_snapshots WHERE {where}"
    return Query(sql, params, ["plan"])


def pg_has_rollups(filters: Filters) -> Query:
    """Whether any rolled-up row matches (answered by the partial index on rollup rows)."""
    params: dict[str, Any] = {}
    where = _pg_where(filters, params) + ROWS_SQL["rolled"]
    return Query(f"SELECT EXISTS (SELECT 1 FROM metrics_snapshots WHERE {where})", params, ["any"])


# --------------------------------------------------------------------------------------
# SQLite


#: Whole epoch seconds of the stored text ``YYYY-MM-DD HH:MM:SS.ffffff``. The fraction is cut
#: off before ``strftime``: SQLite rounds it to milliseconds, which put ``12:04:59.999999``
#: in the next second (and a sample a microsecond before a boundary in the next bucket).
_SQLITE_EPOCH = "CAST(strftime('%s', substr(timestamp, 1, 19)) AS INTEGER)"
#: The bucket start in epoch seconds: floor division, right for negative epochs too
#: (timestamps before 1970). This and ``_BIN`` are the SQL forms of
#: :func:`metrics_toolkit.intervals.bucket_start`; tests/test_bucket_start.py ties them to it.
_SQLITE_BUCKET = f"({_SQLITE_EPOCH} - ((({_SQLITE_EPOCH} % :width) + :width) % :width))"
_SQLITE_ROLLED = f"json_type(metric_data, '$.{ROLLUP_KEY}') IS NOT NULL"


def sqlite_json_path(keys: Sequence[str]) -> str | None:
    """A SQLite JSON path for raw keys, or None when a key cannot be written in one."""
    parts = ["$"]
    for key in keys:
        if '"' in key or "\\" in key:
            return None
        parts.append(f'."{key}"')
    return "".join(parts)


def _sqlite_where(filters: Filters, params: dict[str, Any], prefix: str = "") -> str:
    host = "json_extract(metric_data, '$.host')"
    return _where(filters, params, lambda name: f":{name}", host, prefix)


def _sqlite_num(path_param: str) -> str:
    return (
        f"CASE WHEN json_type(metric_data, :{path_param}) IN ('integer', 'real') "
        f"THEN json_extract(metric_data, :{path_param}) END"
    )


def sqlite_values(metrics: Sequence[str], filters: Filters) -> Query:
    """Full resolution on SQLite: timestamp text, host, one column per metric.

    A key no SQLite JSON path can name (one holding ``"`` or ``\\``) gives a NULL column,
    and the result then ends with the whole document (``doc``) for the caller to read it.
    """
    params: dict[str, Any] = {}
    select = ["timestamp", "coalesce(json_extract(metric_data, '$.host'), '') AS host"]
    columns = ["timestamp", "host", *[f"m{i}" for i in range(len(metrics))]]
    for i, path in enumerate(metrics):
        json_path = sqlite_json_path(split_path(path))
        if json_path is None:
            select.append(f"NULL AS m{i}")
            continue
        params[f"p{i}"] = json_path
        select.append(f"{_sqlite_num(f'p{i}')} AS m{i}")
    if len(select) - 2 > len(params):
        select.append("metric_data AS doc")
        columns.append("doc")
    sql = (
        f"SELECT {', '.join(select)} FROM metrics_snapshots "
        f"WHERE {_sqlite_where(filters, params)} ORDER BY timestamp, host, id"
    )
    return Query(sql, params, columns)


#: Paths per ``json_extract`` of a tier row: SQLite takes at most 127 arguments per call
#: (SQLITE_MAX_FUNCTION_ARG), so a wide read takes a document's statistics in groups.
_JSON_PATHS = 100


def sqlite_buckets(
    metrics: Sequence[str],
    filters: Filters | Sequence[Filters],
    width_seconds: int,
    stats: Sequence[str],
    by_host: bool,
) -> Query:
    """Per bucket aggregates on SQLite (count, sum, min, max; first/last use pandas).

    Several ``filters`` read the union of their rows (tier rows and snapshots); the
    ``intervals`` column names only the snapshots' stored intervals. A tier row's
    statistics are read by one ``json_extract`` of up to :data:`_JSON_PATHS` paths at once
    (SQLite parses the document once per call, and a tier document is large), its host and
    samples from their columns.
    """
    params: dict[str, Any] = {"width": width_seconds}
    union = not isinstance(filters, Filters)
    rolled = _SQLITE_ROLLED
    interval = f"json_extract(metric_data, '$.{ROLLUP_KEY}.interval')"
    host = "coalesce(json_extract(metric_data, '$.host'), '')"
    samples = f"json_extract(metric_data, '$.{ROLLUP_KEY}.samples')"
    wanted: list[tuple[int, str, str]] = []  # (metric, stat, JSON path) of a tier row
    for i, path in enumerate(metrics):
        if (json_path := sqlite_json_path(split_path(path))) is not None:
            for stat in stats:
                stored_path = sqlite_json_path([ROLLUP_KEY, stat, *split_path(path)])
                wanted.append((i, stat, str(stored_path)))
    slot = {(i, stat): k for k, (i, stat, _) in enumerate(wanted)}
    if isinstance(filters, Filters):
        source = f"{_table(filters)} WHERE {_sqlite_where(filters, params)}"
    else:
        groups = max(1, -(-len(wanted) // _JSON_PATHS))
        tier_vals, raw_vals = [], []
        for g in range(groups):
            marks = []
            for k in range(g * _JSON_PATHS, min((g + 1) * _JSON_PATHS, len(wanted))):
                params[f"t{k}"] = wanted[k][2]
                marks.append(f":t{k}")
            marks.append("'$.host'")  # two paths at least: the result is then always an array
            tier_vals.append(f"json_extract(metric_data, {', '.join(marks)}) AS vals{g}")
            raw_vals.append(f"NULL AS vals{g}")
        selects = []
        for n, f in enumerate(filters):
            where = _sqlite_where(f, params, f"u{n}_")
            if f.tier_width is not None:
                selects.append(  # LIMIT -1: not flattened, so each document is read once
                    "SELECT * FROM (SELECT timestamp, NULL AS metric_data, 1 AS tier, host AS h, "
                    f"samples AS smp, {', '.join(tier_vals)} "
                    f"FROM {_table(f)} WHERE {where} LIMIT -1)"
                )
            else:
                selects.append(
                    f"SELECT timestamp, metric_data, 0 AS tier, {host} AS h, NULL AS smp, "
                    f"{', '.join(raw_vals)} FROM {_table(f)} WHERE {where}"
                )
        source = f"({' UNION ALL '.join(selects)})"
        interval = f"CASE WHEN NOT tier THEN {interval} END"
        host, rolled = "h", f"(tier OR {rolled})"
        samples = f"CASE WHEN tier THEN smp ELSE {samples} END"
    select = [
        f"{_SQLITE_BUCKET} * 1000000 AS bucket_us",
        host if by_host else "''",
        f"group_concat(DISTINCT {interval})",
        f"sum(CASE WHEN {rolled} THEN {samples} ELSE 1 END)",
        "sum(1 - tier)" if union else "count(*)",
    ]
    columns = ["bucket_us", "host", "intervals", "samples", "nrows"]
    for i, path in enumerate(metrics):
        keys = split_path(path)
        json_path = sqlite_json_path(keys)
        for stat in stats:
            columns.append(f"m{i}_{stat}")
            if json_path is None:
                select.append("NULL")
                continue
            params[f"p{i}"] = json_path
            params[f"p{i}_{stat}"] = sqlite_json_path([ROLLUP_KEY, stat, *keys])
            raw = _sqlite_num(f"p{i}")
            stored = _sqlite_num(f"p{i}_{stat}")
            if union:
                g, k = divmod(slot[i, stat], _JSON_PATHS)
                kept = f"json_extract(vals{g}, '$[{k}]')"
                from_tier = (
                    f"CASE WHEN json_type(vals{g}, '$[{k}]') IN ('integer', 'real') THEN {kept} END"
                )
                stored = f"(CASE WHEN tier THEN {from_tier} ELSE {stored} END)"
            if stat == "count":
                expr = f"sum(CASE WHEN {rolled} THEN {stored} WHEN ({raw}) IS NOT NULL THEN 1 END)"
            else:  # sum, min, max
                expr = f"{stat}(CASE WHEN {rolled} THEN {stored} ELSE {raw} END)"
            select.append(expr)
    group, order = ("1, 2", "2, 1") if by_host else ("1", "1")
    sql = f"SELECT {', '.join(select)} FROM {source} GROUP BY {group} ORDER BY {order}"
    return Query(sql, params, columns)


def sqlite_has_rollups(filters: Filters) -> Query:
    """Whether any rolled-up row matches (answered by the partial index on rollup rows)."""
    params: dict[str, Any] = {}
    where = f"{_sqlite_where(filters, params)} AND {_SQLITE_ROLLED}"
    return Query(f"SELECT EXISTS (SELECT 1 FROM metrics_snapshots WHERE {where})", params, ["any"])


def sqlite_stored_intervals(filters: Filters) -> Query:
    """The distinct stored intervals of the matching rolled-up snapshots (partial index)."""
    params: dict[str, Any] = {}
    where = f"{_sqlite_where(filters, params)} AND {_SQLITE_ROLLED}"
    sql = (
        f"SELECT DISTINCT json_extract(metric_data, '$.{ROLLUP_KEY}.interval') "
        f"FROM metrics_snapshots WHERE {where}"
    )
    return Query(sql, params, ["interval"])


def sqlite_buckets_raw(
    metrics: Sequence[str],
    filters: Filters,
    width_seconds: int,
    stats: Sequence[str],
    by_host: bool,
) -> Query:
    """Per bucket aggregates when no row is rolled up: each leaf is read once per row.

    ``stats`` from ``count``, ``sum``, ``min``, ``max`` and ``mean``. The subquery's
    ``LIMIT -1`` keeps SQLite from flattening it into the aggregates, which would read
    each leaf once per aggregate.
    """
    params: dict[str, Any] = {"width": width_seconds}
    inner = [
        f"{_SQLITE_BUCKET} AS bucket",
        "coalesce(json_extract(metric_data, '$.host'), '') AS host" if by_host else "'' AS host",
    ]
    outer = [
        "bucket * 1000000 AS bucket_us",
        "host",
        "NULL AS intervals",
        "count(*) AS samples",
        "count(*) AS nrows",
    ]
    columns = ["bucket_us", "host", "intervals", "samples", "nrows"]
    for i, path in enumerate(metrics):
        json_path = sqlite_json_path(split_path(path))
        if json_path is None:
            inner.append(f"NULL AS x{i}")
        else:
            params[f"p{i}"] = json_path
            inner.append(f"{_sqlite_num(f'p{i}')} AS x{i}")
        for stat in stats:
            outer.append(f"{'avg' if stat == 'mean' else stat}(x{i}) AS m{i}_{stat}")
            columns.append(f"m{i}_{stat}")
    group, order = ("1, 2", "2, 1") if by_host else ("1", "1")
    sql = (
        f"SELECT {', '.join(outer)} FROM (SELECT {', '.join(inner)} FROM metrics_snapshots "
        f"WHERE {_sqlite_where(filters, params)} LIMIT -1) GROUP BY {group} ORDER BY {order}"
    )
    return Query(sql, params, columns)
