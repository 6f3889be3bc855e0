"""The tier log: which hosts and times changed since the rollup tiers were last refreshed.

Every path that writes or deletes snapshots calls :func:`mark` (or :func:`mark_rows`) in the
same transaction as the change, with the (metric_type, host, first, last) spans it touched.
An entry per (metric_type, host, UTC day) is widened to cover the span and its ``seq``
bumped; ``archive.tiers.refresh`` recomputes an entry's buckets and deletes the entry only if
``seq`` did not move meanwhile. Readers treat a tier bucket that overlaps an entry as stale
and read the snapshots there instead (docs/design.md §9).

The statements work on a SQLAlchemy ``Connection`` and on the raw DB-API connections the bulk
ingest uses (psycopg, sqlite3). Spans are written in key order, so concurrent writers lock
the same rows in the same order and cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

from sqlalchemy import Connection, text

from metrics_toolkit.documents import host_of_any
from metrics_toolkit.intervals import SECONDS_PER_DAY, as_utc
from metrics_toolkit.store.sqltypes import sqlite_timestamp

#: (metric_type, host, first timestamp, last timestamp), both ends inclusive.
Span: TypeAlias = tuple[str, str, datetime, datetime]

TABLE = "metrics_tier_dirty"
_DAY = timedelta(seconds=SECONDS_PER_DAY)

_UPSERT = (
    f"INSERT INTO {TABLE} (metric_type, host, day, first_ts, last_ts, seq) "
    "VALUES ({mt}, {host}, {day}, {first}, {last}, 1) "
    "ON CONFLICT (metric_type, host, day) DO UPDATE SET "
    f"first_ts = {{least}}({TABLE}.first_ts, excluded.first_ts), "
    f"last_ts = {{greatest}}({TABLE}.last_ts, excluded.last_ts), "
    f"seq = {TABLE}.seq + 1"
)


def render_upsert(template: str, dialect: str, paramstyle: str, names: Iterable[str]) -> str:
    """``template`` with each ``{name}`` of ``names`` a named parameter of ``paramstyle``
    (``"pyformat"``: ``%(name)s``; ``"named"``: ``:name``) and ``{least}``/``{greatest}``
    the dialect's two-argument min and max: the upserts of this log and of the series
    catalog."""
    marks = {n: f"%({n})s" if paramstyle == "pyformat" else f":{n}" for n in names}
    least, greatest = ("least", "greatest") if dialect == "postgresql" else ("min", "max")
    return template.format(**marks, least=least, greatest=greatest)


def upsert_sql(dialect: str, paramstyle: str) -> str:
    """The upsert for one day entry, in ``dialect`` with named parameters of ``paramstyle``."""
    return render_upsert(_UPSERT, dialect, paramstyle, ("mt", "host", "day", "first", "last"))


def _merge(
    merged: dict[tuple[str, str, datetime], list[datetime]],
    key: tuple[str, str, datetime],
    lo: datetime,
    hi: datetime,
) -> None:
    if (seen := merged.get(key)) is None:
        merged[key] = [lo, hi]
    else:
        seen[0], seen[1] = min(seen[0], lo), max(seen[1], hi)


def _day_of(moment: datetime) -> datetime:
    """UTC midnight of the day holding ``moment`` (an aware UTC datetime)."""
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def _entries(merged: dict[tuple[str, str, datetime], list[datetime]]) -> list[dict[str, Any]]:
    return [
        {"mt": mt, "host": host, "day": day, "first": lo, "last": hi}
        for (mt, host, day), (lo, hi) in sorted(merged.items())
    ]


class DaySpans:
    """The (metric_type, host, UTC day) -> [first, last] entries of rows as they are written.

    Keyed by day from the start, so a batch that holds 1900 and 9999 for one host makes two
    entries, not one per day in between.
    """

    def __init__(self) -> None:
        self._merged: dict[tuple[str, str, datetime], list[datetime]] = {}

    def add(self, metric_type: str, host: str, timestamp: datetime) -> None:
        """Note one row; ``timestamp`` is aware UTC (``as_utc`` makes it so)."""
        _merge(self._merged, (metric_type, host, _day_of(timestamp)), timestamp, timestamp)

    def entries(self) -> list[dict[str, Any]]:
        """The parameters of :func:`upsert_sql`, in key order."""
        return _entries(self._merged)

    def clear(self) -> None:
        self._merged.clear()

    def __len__(self) -> int:
        return len(self._merged)


def day_entries(spans: Iterable[Span]) -> list[dict[str, Any]]:
    """The spans cut at UTC day boundaries and merged per (metric_type, host, day), in key
    order: the parameters of :func:`upsert_sql`."""
    merged: dict[tuple[str, str, datetime], list[datetime]] = {}
    for metric_type, host, first, last in spans:
        first, last = as_utc(first), as_utc(last)
        if last < first:
            first, last = last, first
        day = _day_of(first)
        while True:
            end = last if day == _day_of(last) else day + _DAY - timedelta(microseconds=1)
            _merge(merged, (metric_type, host, day), max(first, day), end)
            if end >= last:
                break
            day += _DAY  # end < last, so the next day exists (no overflow at 9999-12-31)
    return _entries(merged)


def spans_of(rows: Iterable[tuple[datetime, str, Mapping[str, Any]]]) -> DaySpans:
    """The day entries of ``(timestamp, metric_type, document)`` rows."""
    found = DaySpans()
    for timestamp, metric_type, doc in rows:
        found.add(metric_type, host_of_any(doc), as_utc(timestamp))
    return found


def mark(connection: Connection, spans: Iterable[Span] | DaySpans) -> int:
    """Record ``spans`` as changed, in the caller's transaction; returns the day entries.

    Through SQLAlchemy, so any driver works, sync or async (an ``AsyncSession``'s flush
    runs here too)."""
    entries = spans.entries() if isinstance(spans, DaySpans) else day_entries(spans)
    if entries:
        dialect = connection.dialect.name
        connection.execute(text(upsert_sql(dialect, "named")), _bound(dialect, entries))
    return len(entries)


def mark_driver(driver: Any, dialect: str, spans: Iterable[Span] | DaySpans) -> int:
    """:func:`mark` on a raw psycopg or sqlite3 connection (the bulk ingest's)."""
    entries = spans.entries() if isinstance(spans, DaySpans) else day_entries(spans)
    if not entries:
        return 0
    if dialect == "postgresql":
        with driver.cursor() as cursor:
            cursor.executemany(upsert_sql(dialect, "pyformat"), entries)
    else:
        driver.executemany(upsert_sql(dialect, "named"), _bound(dialect, entries))
    return len(entries)


def _bound(dialect: str, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries as the dialect stores them (SQLite: SQLAlchemy's DateTime text)."""
    if dialect == "postgresql":
        return entries
    return [{**e, "day": sqlite_timestamp(e["day"]), "first": sqlite_timestamp(e["first"]),
             "last": sqlite_timestamp(e["last"])} for e in entries]  # fmt: skip


__all__ = [
    "DaySpans",
    "Span",
    "day_entries",
    "mark",
    "mark_driver",
    "render_upsert",
    "spans_of",
    "upsert_sql",
]
