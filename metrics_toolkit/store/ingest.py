"""Bulk ingest: write many snapshots fast, idempotently, in bounded memory.

:func:`write_snapshots` is the one write path for bulk data: the history generator, the
collector's spool replay and archive restore all use it. Rows are ``(timestamp,
metric_type, metric_data)`` tuples (:data:`SnapshotRow`), given one by one or in chunks
(lists of rows, as the generator yields them); the iterable is streamed batch by batch and
never materialised.

Semantics:

- Idempotent on (host, metric_type, timestamp), the identity of a snapshot (the unique
  index ``uq_metrics_snapshots_identity``): a row already stored, or repeated in the same
  input, is skipped and counted in :attr:`IngestResult.duplicates`, on both backends.
- Each batch is one transaction. A malformed row raises
  :class:`~metrics_toolkit.errors.InvalidSnapshot` and nothing of its batch is written;
  earlier batches stay committed (re-running after a fix is harmless: they are skipped as
  duplicates). The message says which row and how many rows were already written.
- Timestamps are stored as UTC; a naive datetime is taken to be UTC (as the models'
  ``UTCDateTime`` does), an aware one is converted.
- PostgreSQL: binary ``COPY`` straight into the table. ``COPY`` cannot skip conflicts, so a
  batch that hits the unique index is rolled back and written again through a temporary
  staging table (``COPY`` into it, then ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``);
  after such a batch the next ones go through the staging table until one of them has no
  duplicates (a replay that overlaps stored data does not pay for two copies per batch).
- SQLite: ``executemany`` of ``INSERT ... ON CONFLICT DO NOTHING`` per batch, with the
  timestamp in the text layout SQLAlchemy's SQLite ``DateTime`` uses
  (``YYYY-MM-DD HH:MM:SS.ffffff``, naive UTC), so ORM reads and range queries agree.

Database failures (unreachable server, no schema) raise
:class:`~metrics_toolkit.errors.DatabaseError` with a one-line reason.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import chain, islice
from typing import Any, TypeAlias

import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format
from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc

from metrics_toolkit.documents import host_of
from metrics_toolkit.documents_check import storage_problem
from metrics_toolkit.errors import DatabaseError, InvalidSnapshot
from metrics_toolkit.intervals import as_utc
from metrics_toolkit.store import series, tier_log
from metrics_toolkit.store.db import describe_error, mask_url
from metrics_toolkit.store.sqltypes import sqlite_timestamp

#: One snapshot to write: (timestamp, metric_type, metric_data). Same shape as
#: ``metrics_toolkit.collect.generator.SnapshotRow``.
SnapshotRow: TypeAlias = tuple[datetime, str, dict[str, Any]]
#: A row after validation: (UTC-aware timestamp, metric_type, the document as JSON text).
PreparedRow: TypeAlias = tuple[datetime, str, str]

DEFAULT_BATCH_SIZE = 10_000
METRIC_TYPE_MAX_LENGTH = 50  # models.MetricsSnapshot.metric_type is String(50)
TABLE = "metrics_snapshots"
COLUMNS = "timestamp, metric_type, metric_data"

# UTF-8 text, not \uXXXX escapes: SQLite's JSON paths match keys by their stored text.
_encode_json = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode


@dataclass
class IngestResult:
    """What :func:`write_snapshots` did.

    ``inserted`` rows are new; ``duplicates`` were already stored (or repeated in the
    input) and skipped; ``batches`` transactions were committed in ``seconds`` of wall time.
    """

    inserted: int = 0
    duplicates: int = 0
    batches: int = 0
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        """Rows read from the input: inserted plus duplicates."""
        return self.inserted + self.duplicates

    @property
    def rows_per_second(self) -> float:
        """Input rows per second of wall time (0 when nothing was timed)."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def add(self, other: IngestResult) -> None:
        """Accumulate ``other`` into this result (for callers that ingest in parts)."""
        self.inserted += other.inserted
        self.duplicates += other.duplicates
        self.batches += other.batches
        self.seconds += other.seconds


def _invalid(position: int, row: object, problem: str) -> InvalidSnapshot:
    when = ""
    if isinstance(row, tuple | list) and row and isinstance(row[0], datetime):
        when = f" at {row[0].isoformat()}"
    return InvalidSnapshot(f"Snapshot #{position}{when}: {problem}.")


def prepare_row(row: object, position: int = 1) -> PreparedRow:
    """Validate one row and serialise its document once.

    Returns ``(timestamp as aware UTC, metric_type, document as compact JSON text)``.
    Raises :class:`InvalidSnapshot` naming the row (``position`` counts from 1) when the row
    is not a 3-tuple, the timestamp is not a datetime, the metric type is not a non-empty
    string of at most 50 characters, the document is not a dict, its ``host`` is not a
    string, or the document cannot be stored as JSON (non-finite numbers, objects JSON
    cannot represent, NUL characters that PostgreSQL's JSONB rejects), or holds what no
    reader could use (:func:`metrics_toolkit.documents_check.storage_problem`: a number
    above 1e300 in magnitude, a lone surrogate, a malformed ``"_rollup"``). Non-string dict
    keys are converted to strings, as ``json.dumps`` does.
    """
    if not isinstance(row, tuple | list) or len(row) != 3:
        problem = "expected a (timestamp, metric_type, metric_data) tuple"
        raise _invalid(position, row, f"{problem}, got {type(row).__name__}")
    timestamp, metric_type, document = row
    if not isinstance(timestamp, datetime):
        raise _invalid(
            position,
            row,
            f"timestamp must be a datetime (naive means UTC), got {type(timestamp).__name__} "
            f"{timestamp!r}",
        )
    if (
        not isinstance(metric_type, str)
        or not metric_type
        or len(metric_type) > METRIC_TYPE_MAX_LENGTH
    ):
        raise _invalid(
            position,
            row,
            f"metric_type must be a non-empty string of at most {METRIC_TYPE_MAX_LENGTH} "
            f"characters, got {metric_type!r}",
        )
    if not isinstance(document, dict):
        raise _invalid(position, row, f"metric_data must be a dict, got {type(document).__name__}")
    host = document.get("host")
    if host is not None and not isinstance(host, str):
        shown = type(host).__name__ if isinstance(host, int) else repr(host)[:80]
        raise _invalid(position, row, f"metric_data['host'] must be a string label, got {shown}")
    try:
        text = _encode_json(document)
    except (TypeError, ValueError, RecursionError) as error:
        raise _invalid(position, row, f"metric_data cannot be stored as JSON ({error})") from None
    if "\\u0000" in text:
        raise _invalid(
            position, row, "metric_data contains a NUL character, which JSONB cannot store"
        )
    stored_problem = storage_problem(document, text)
    if stored_problem is not None:
        raise _invalid(position, row, f"metric_data cannot be stored: {stored_problem}")
    return as_utc(timestamp), metric_type, text


def iter_rows(rows: Iterable[Any]) -> Iterator[Any]:
    """Flatten an iterable of rows and/or chunks (lists of rows) into rows, lazily.

    A ``list`` item is a chunk; anything else (normally a tuple) is one row.
    """
    for item in rows:
        if isinstance(item, list):
            yield from item
        else:
            yield item


class _Progress:
    """Counts rows across batches so errors can say where they happened."""

    def __init__(self, on_batch: Callable[[int], None] | None) -> None:
        self.result = IngestResult()
        self.position = 0  # rows prepared so far, in all batches
        self.on_batch = on_batch
        # what the batch being written touched, per (metric_type, host, day): the tier log's
        self.spans = tier_log.DaySpans()

    def mark_tiers(self, connection: Any, dialect: str) -> None:
        """Record the batch's spans in the tier log and the series catalog, in the batch's
        transaction."""
        tier_log.mark_driver(connection, dialect, self.spans)
        series.note(connection, dialect, self.spans)

    def committed(self, rows: int, inserted: int) -> None:
        self.result.inserted += inserted
        self.result.duplicates += rows - inserted
        self.result.batches += 1
        self.spans.clear()
        if self.on_batch is not None:
            self.on_batch(rows)

    def prepare(self, row: object) -> PreparedRow:
        self.position += 1
        try:
            prepared = prepare_row(row, self.position)
        except InvalidSnapshot as error:
            written = self.result.rows
            note = (
                f" Nothing of its batch was written; {written} earlier row(s) were."
                if written
                else " Nothing was written."
            )
            raise InvalidSnapshot(f"{error}{note}") from None
        timestamp, metric_type, _ = prepared
        self.spans.add(metric_type, host_of(row[2]), timestamp)  # type: ignore[index]
        return prepared


def write_snapshots(
    engine: Engine,
    rows: Iterable[SnapshotRow] | Iterable[list[SnapshotRow]],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: Callable[[int], None] | None = None,
) -> IngestResult:
    """Write snapshots in batches of ``batch_size`` rows, skipping ones already stored.

    :param engine: a PostgreSQL or SQLite engine whose schema is in place.
    :param rows: ``(timestamp, metric_type, metric_data)`` tuples, or lists of them; consumed
        lazily, so a generator of any length uses memory for one batch only.
    :param batch_size: rows per transaction (and per ``COPY``).
    :param on_batch: called after each committed batch with the number of input rows it
        held (inserted plus duplicates), e.g. to advance a progress bar.
    :returns: counts of inserted and duplicate rows, batches and wall time.
    :raises InvalidSnapshot: for a malformed row (its batch is not written).
    :raises DatabaseError: when the database cannot be reached or used.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        msg = f"batch_size must be a whole number of rows, at least 1 (got {batch_size!r})"
        raise ValueError(msg)
    progress = _Progress(on_batch)
    started = time.perf_counter()
    stream = iter_rows(rows)
    dialect = engine.dialect.name
    if dialect not in ("postgresql", "sqlite"):
        msg = f"write_snapshots supports PostgreSQL and SQLite, not {dialect}"
        raise DatabaseError(msg)
    try:
        raw = engine.raw_connection()
    except (sa_exc.DBAPIError, psycopg.Error, sqlite3.Error) as error:
        msg = f"Cannot write to {mask_url(engine.url)}: {describe_error(error)}"
        raise DatabaseError(msg) from None
    connection: Any = raw.driver_connection
    try:
        if dialect == "postgresql":
            _write_postgresql(connection, stream, batch_size, progress)
        else:
            _write_sqlite(connection, stream, batch_size, progress)
    except (psycopg.Error, sqlite3.Error) as error:
        raw.invalidate()  # the connection may be broken; the pool opens a fresh one
        msg = f"Cannot write to {mask_url(engine.url)}: {describe_error(error)}"
        raise DatabaseError(msg) from None
    finally:
        raw.close()
    progress.result.seconds = time.perf_counter() - started
    return progress.result


# --- PostgreSQL -------------------------------------------------------------------------

_STAGE = "mt_ingest_stage"
_COPY_DIRECT = f"COPY {TABLE} ({COLUMNS}) FROM STDIN (FORMAT BINARY)"
_COPY_STAGE = f"COPY {_STAGE} (ord, {COLUMNS}) FROM STDIN (FORMAT BINARY)"
_CREATE_STAGE = (
    f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (ord integer, timestamp timestamptz, "
    "metric_type text, metric_data jsonb) ON COMMIT DELETE ROWS"
)
_MERGE_STAGE = (
    f"INSERT INTO {TABLE} ({COLUMNS}) SELECT {COLUMNS} FROM {_STAGE} ORDER BY ord "
    "ON CONFLICT DO NOTHING"
)


class _JsonTextBinaryDumper(Dumper):
    """JSONB in binary COPY from text that is already JSON (serialised once, by us)."""

    format = Format.BINARY
    oid = psycopg.postgres.types["jsonb"].oid

    def dump(self, obj: Any) -> bytes:
        text: str = obj
        return b"\x01" + text.encode()


def _pg_cursor(connection: psycopg.Connection[Any]) -> psycopg.Cursor[Any]:
    cursor = connection.cursor()
    # Only for this cursor, and only where COPY's set_types asks for jsonb by OID.
    cursor.adapters.register_dumper(None, _JsonTextBinaryDumper)
    return cursor


def _write_postgresql(
    connection: psycopg.Connection[Any],
    stream: Iterator[Any],
    batch_size: int,
    progress: _Progress,
) -> None:
    use_stage = False
    with _pg_cursor(connection) as cursor:
        while True:
            prepared: list[PreparedRow] = []
            if use_stage:
                prepared = [progress.prepare(row) for row in islice(stream, batch_size)]
                if not prepared:
                    return
                inserted = _pg_stage_batch(connection, cursor, prepared, progress)
                use_stage = inserted < len(prepared)
            else:
                first = next(stream, None)
                if first is None:
                    return
                try:
                    _pg_copy_direct(cursor, first, stream, batch_size, prepared, progress)
                    progress.mark_tiers(connection, "postgresql")
                    connection.commit()
                    inserted = len(prepared)
                except psycopg.errors.UniqueViolation:
                    connection.rollback()
                    inserted = _pg_stage_batch(connection, cursor, prepared, progress)
                    use_stage = True
                except BaseException:
                    connection.rollback()
                    raise
            progress.committed(len(prepared), inserted)


def _pg_copy_direct(
    cursor: psycopg.Cursor[Any],
    first: Any,
    stream: Iterator[Any],
    batch_size: int,
    prepared: list[PreparedRow],
    progress: _Progress,
) -> None:
    """COPY one batch into the table, keeping the prepared rows for a staged retry."""
    with cursor.copy(_COPY_DIRECT) as copy:
        copy.set_types(["timestamptz", "text", "jsonb"])
        for row in chain((first,), islice(stream, batch_size - 1)):
            item = progress.prepare(row)
            prepared.append(item)
            copy.write_row(item)


def _pg_stage_batch(
    connection: psycopg.Connection[Any],
    cursor: psycopg.Cursor[Any],
    prepared: list[PreparedRow],
    progress: _Progress,
) -> int:
    """Write a batch through the staging table, skipping conflicts; returns rows inserted."""
    try:
        cursor.execute(_CREATE_STAGE)
        with cursor.copy(_COPY_STAGE) as copy:
            copy.set_types(["int4", "timestamptz", "text", "jsonb"])
            for ord_, row in enumerate(prepared):
                copy.write_row((ord_, *row))
        cursor.execute(_MERGE_STAGE)
        inserted = cursor.rowcount
        progress.mark_tiers(connection, "postgresql")
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    return inserted


# --- SQLite -----------------------------------------------------------------------------

_SQLITE_INSERT = f"INSERT INTO {TABLE} ({COLUMNS}) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"


def _write_sqlite(
    connection: Any,
    stream: Iterator[Any],
    batch_size: int,
    progress: _Progress,
) -> None:
    while True:
        count = 0

        def sqlite_rows() -> Iterator[tuple[str, str, str]]:
            nonlocal count
            for row in islice(stream, batch_size):
                timestamp, metric_type, text = progress.prepare(row)
                count += 1
                yield sqlite_timestamp(timestamp), metric_type, text

        before = connection.total_changes
        try:
            connection.executemany(_SQLITE_INSERT, sqlite_rows())
            inserted = connection.total_changes - before
            progress.mark_tiers(connection, "sqlite")
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        if count == 0:
            return
        progress.committed(count, inserted)


__all__ = [
    "DEFAULT_BATCH_SIZE",
    "IngestResult",
    "PreparedRow",
    "SnapshotRow",
    "iter_rows",
    "prepare_row",
    "sqlite_timestamp",
    "write_snapshots",
]
