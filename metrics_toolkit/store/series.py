"""The series catalog: which (metric_type, host) pairs have snapshots, from when to when.

``metrics_series`` holds one row per series with ``[first_seen, last_seen]``. What keeps it
true (docs/design.md §8):

- **Every insert widens it** in the transaction of the insert: the bulk ingest (its three
  paths, beside the tier log), ORM flushes (the session listener below), the archive's
  rollup rows and restores. So the span always *covers* every snapshot of the series.
- **Deleters narrow it**: the archive run (rollups, retention) and restore call
  :func:`refresh_range` for the series they touched, which recomputes the span from the
  snapshots (two indexed probes bounded by the old span) and drops the row when nothing is
  left. A deletion that skips this leaves a span too wide, never too narrow: readers
  (``frames.load.list_hosts``) probe the snapshots inside the span, so their answer stays
  exact, only slower.

Statements run on a SQLAlchemy ``Connection`` or on the raw DB-API connection the bulk
ingest uses (psycopg, sqlite3); keys are written in sorted order so concurrent writers lock
the catalog rows in the same order and cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    TextClause,
    bindparam,
    delete,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session, UOWTransaction

from metrics_toolkit.documents import host_of, host_of_any
from metrics_toolkit.intervals import as_utc
from metrics_toolkit.store import tier_log
from metrics_toolkit.store.models import (
    SNAPSHOT_HOST_SQL,
    SNAPSHOT_RAW_SQL,
    SNAPSHOT_ROLLUP_SQL,
    MetricsSeries,
    MetricsSnapshot,
)
from metrics_toolkit.store.sqltypes import UTCDateTime, sqlite_timestamp

TABLE = "metrics_series"
#: (metric_type, host) -> [first, last] (aware UTC, both inclusive)
Bounds = dict[tuple[str, str], list[datetime]]

_UPSERT = (
    f"INSERT INTO {TABLE} (metric_type, host, first_seen, last_seen) "
    "VALUES ({mt}, {host}, {first}, {last}) "
    "ON CONFLICT (metric_type, host) DO UPDATE SET "
    f"first_seen = {{least}}({TABLE}.first_seen, excluded.first_seen), "
    f"last_seen = {{greatest}}({TABLE}.last_seen, excluded.last_seen) "
    f"WHERE excluded.first_seen < {TABLE}.first_seen OR excluded.last_seen > {TABLE}.last_seen"
)


def upsert_sql(dialect: str, paramstyle: str) -> str:
    """The upsert widening one series, with named parameters ``mt, host, first, last`` in
    ``paramstyle``. A span already covered writes nothing (no dead row versions for every
    batch)."""
    return tier_log.render_upsert(_UPSERT, dialect, paramstyle, ("mt", "host", "first", "last"))


def bounds_of(spans: tier_log.DaySpans | Iterable[tier_log.Span]) -> Bounds:
    """Merge ``spans`` (the tier log's day entries, or (metric_type, host, first, last)
    tuples) into one [first, last] per series."""
    merged: Bounds = {}
    if isinstance(spans, tier_log.DaySpans):
        items: Iterable[tier_log.Span] = (
            (e["mt"], e["host"], e["first"], e["last"]) for e in spans.entries()
        )
    else:
        items = spans
    for metric_type, host, first, last in items:
        lo, hi = sorted((as_utc(first), as_utc(last)))
        if (seen := merged.get((metric_type, host))) is None:
            merged[(metric_type, host)] = [lo, hi]
        else:
            seen[0], seen[1] = min(seen[0], lo), max(seen[1], hi)
    return merged


def note(
    connection: Connection | Any,
    dialect: str,
    spans: tier_log.DaySpans | Iterable[tier_log.Span],
) -> int:
    """Widen the catalog to cover ``spans``, in the caller's transaction.

    ``connection`` is a SQLAlchemy ``Connection`` or a raw psycopg / sqlite3 connection;
    one upsert per series, in key order. Returns the number of series noted.
    """
    merged = bounds_of(spans)
    if not merged:
        return 0
    entries: list[dict[str, Any]] = [
        {"mt": mt, "host": host, "first": lo, "last": hi}
        for (mt, host), (lo, hi) in sorted(merged.items())
    ]
    if dialect != "postgresql":  # the text SQLAlchemy's SQLite DateTime stores
        entries = [
            {**e, "first": sqlite_timestamp(e["first"]), "last": sqlite_timestamp(e["last"])}
            for e in entries
        ]
    if isinstance(connection, Connection):  # any driver, sync or async
        connection.execute(text(upsert_sql(dialect, "named")), entries)
    elif dialect == "postgresql":
        with connection.cursor() as cursor:
            cursor.executemany(upsert_sql(dialect, "pyformat"), entries)
    else:
        connection.executemany(upsert_sql(dialect, "named"), entries)
    return len(entries)


def probe_sql(
    dialect: str, *, mt: str, host: str, lo: str, hi: str, desc: bool = False
) -> tuple[str, str]:
    """Two scalar subqueries: the first (or last, ``desc``) raw row and rolled-up row of a
    series in ``lo <= timestamp <= hi`` (SQL expressions, e.g. ``:lo`` or ``s.first_seen``).

    The raw one walks the partial identity index (metric_type, timestamp, host) in time
    order, the host compared inside the index, and stops at the first entry; the rolled-up
    one walks the small partial index of rolled-up rows. Column names are left unqualified
    (they resolve to the snapshots), so the expressions match the indexes' text exactly.
    """
    order = "timestamp DESC" if desc else "timestamp"
    where = (
        f"metric_type = {mt} AND timestamp >= {lo} AND timestamp <= {hi} "
        f"AND {SNAPSHOT_HOST_SQL[dialect]} = {host}"
    )
    raw, rolled = (
        f"(SELECT timestamp FROM metrics_snapshots WHERE {where} AND {kind} "
        f"ORDER BY {order} LIMIT 1)"
        for kind in (SNAPSHOT_RAW_SQL[dialect], f"({SNAPSHOT_ROLLUP_SQL[dialect]})")
    )
    return raw, rolled


_NEVER = datetime.min.replace(tzinfo=UTC)
_FOREVER = datetime.max.replace(tzinfo=UTC)


def _edge(
    connection: Connection,
    metric_type: str,
    host: str,
    lo: datetime | None,
    hi: datetime | None,
    *,
    last: bool,
) -> datetime | None:
    """The first (or last) snapshot time of a series within ``[lo, hi]``."""
    dialect = connection.dialect.name
    sql = "SELECT " + ", ".join(
        probe_sql(dialect, mt=":mt", host=":host", lo=":lo", hi=":hi", desc=last)
    )
    stmt = text(sql).bindparams(
        bindparam("lo", type_=UTCDateTime()),
        bindparam("hi", type_=UTCDateTime()),
        mt=metric_type,
        host=host,
        lo=lo or _NEVER,
        hi=hi or _FOREVER,
    )
    found = [as_utc(t) for t in connection.execute(stmt).one() if t is not None]
    if not found:
        return None
    return max(found) if last else min(found)


def refresh_range(
    connection: Connection, metric_type: str, host: str
) -> tuple[datetime, datetime] | None:
    """Recompute one series' span from the snapshots, in the caller's transaction.

    Call it after deleting rows of the series (and after :func:`note` for rows inserted in
    the same transaction). The search is bounded by the span the catalog holds, which
    covers every row; the row is deleted when no snapshot is left. On PostgreSQL the
    catalog row is locked first, so an ingest racing this waits and widens the result.
    Returns the new (first, last), or None when the series is gone.
    """
    key = (MetricsSeries.metric_type == metric_type) & (MetricsSeries.host == host)
    stmt = select(MetricsSeries.first_seen, MetricsSeries.last_seen).where(key)
    if connection.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    known = connection.execute(stmt).one_or_none()
    lo, hi = (as_utc(known[0]), as_utc(known[1])) if known is not None else (None, None)
    first = _edge(connection, metric_type, host, lo, hi, last=False)
    if first is None:
        if known is not None:
            connection.execute(delete(MetricsSeries).where(key))
        return None
    last = _edge(connection, metric_type, host, first, hi, last=True)
    assert last is not None  # first is a row of the range
    if known is None:
        note(connection, connection.dialect.name, [(metric_type, host, first, last)])
    elif (first, last) != (lo, hi):
        connection.execute(
            update(MetricsSeries).where(key).values(first_seen=first, last_seen=last)
        )
    return first, last


def refresh_series(
    connection: Connection,
    keys: Iterable[tuple[str, str]],
    inserted: Iterable[tuple[datetime, str, Any]] = (),
) -> int:
    """After replacing or deleting snapshots in the caller's transaction: note the
    ``inserted`` rows ``(timestamp, metric_type, document)``, then :func:`refresh_range`
    every series of ``keys`` (``(metric_type, host)``) and of the inserted rows, in key
    order. Returns the number of series refreshed."""
    written = [(mt, host_of_any(doc), ts, ts) for ts, mt, doc in inserted]
    note(connection, connection.dialect.name, written)
    touched = sorted({*keys, *((mt, host) for mt, host, _, _ in written)})
    for metric_type, host in touched:
        refresh_range(connection, metric_type, host)
    return len(touched)


def rebuild(connection: Connection) -> int:
    """Recompute the whole catalog from the snapshots (one GROUP BY); returns its rows."""
    dialect = connection.dialect.name
    host = SNAPSHOT_HOST_SQL[dialect]
    connection.execute(delete(MetricsSeries))
    connection.execute(
        text(
            f"INSERT INTO {TABLE} (metric_type, host, first_seen, last_seen) "
            f"SELECT metric_type, {host}, min(timestamp), max(timestamp) "
            "FROM metrics_snapshots GROUP BY 1, 2"
        )
    )
    return int(connection.execute(select(func.count()).select_from(MetricsSeries)).scalar_one())


def hosts_query(
    dialect: str,
    metric_type: str | None,
    start: datetime | None,
    end: datetime | None,
) -> TextClause:
    """The hosts with a snapshot of ``metric_type`` (any, when None) in ``[start, end)``.

    Candidates come from the catalog (spans overlapping the range); each is confirmed by one
    probe of the snapshots' timestamp index inside ``[max(first_seen, start), min(last_seen,
    end))``, stopped at the series' first row there. With the catalog exact the probe hits
    at once, and it keeps the answer equal to a scan of the table whatever gap a host has.
    Plain SQL: a fresh process (the explorer's first page) pays no statement compilation.
    """
    greatest = "greatest" if dialect == "postgresql" else "max"
    least = "least" if dialect == "postgresql" else "min"
    outer = ["s.host <> ''"]
    params: dict[str, Any] = {}
    binds = []
    lower, upper = "s.first_seen", "s.last_seen"
    if metric_type is not None:
        outer.append("s.metric_type = :mt")
        params["mt"] = metric_type
    if start is not None:
        outer.append("s.last_seen >= :lo")
        lower = f"{greatest}(s.first_seen, :lo)"
        params["lo"] = start
        binds.append(bindparam("lo", type_=UTCDateTime()))
    if end is not None:
        # timestamp < end, as timestamp <= end - 1 µs (the probes take closed ranges)
        outer.append("s.first_seen <= :hi")
        upper = f"{least}(s.last_seen, :hi)"
        params["hi"] = end - timedelta(microseconds=1)
        binds.append(bindparam("hi", type_=UTCDateTime()))
    raw, rolled = probe_sql(dialect, mt="s.metric_type", host="s.host", lo=lower, hi=upper)
    probe = f"({raw} IS NOT NULL OR {rolled} IS NOT NULL)"
    sql = (
        f"SELECT DISTINCT s.host FROM {TABLE} s WHERE "
        + " AND ".join([*outer, probe])
        + " ORDER BY s.host"
    )
    return text(sql).bindparams(*binds, **params)


# --- the ORM writers --------------------------------------------------------------------


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, flush_context: UOWTransaction) -> None:
    """Keep the catalog for snapshots written or deleted through the ORM (same transaction)."""
    written = [
        (obj.metric_type, host_of(obj.metric_data) if isinstance(obj.metric_data, dict) else "",
         obj.timestamp, obj.timestamp)
        for obj in (*session.new, *session.dirty)
        if isinstance(obj, MetricsSnapshot) and obj.timestamp is not None
    ]  # fmt: skip
    gone = sorted(
        {
            (obj.metric_type, host_of(obj.metric_data) if isinstance(obj.metric_data, dict) else "")
            for obj in session.deleted
            if isinstance(obj, MetricsSnapshot)
        }
    )
    if not written and not gone:
        return
    connection = session.connection()
    note(connection, connection.dialect.name, written)
    for metric_type, host in gone:
        refresh_range(connection, metric_type, host)


__all__ = [
    "Bounds",
    "bounds_of",
    "hosts_query",
    "note",
    "probe_sql",
    "rebuild",
    "refresh_range",
    "refresh_series",
    "upsert_sql",
]
