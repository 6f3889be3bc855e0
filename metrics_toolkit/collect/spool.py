"""A durable local FIFO of snapshots: what the collector keeps until the database has it.

The spool is its own SQLite file (never the metrics database) in WAL mode with
``synchronous=FULL``: each :meth:`Spool.append` and :meth:`Spool.ack` is one transaction,
fsynced before it returns, so a snapshot that was appended survives a crash or a power loss.
Rows come out oldest first (by an ``AUTOINCREMENT`` id, never reused) and stay until acked.

Replay (:func:`replay`) reads the oldest batch, writes it with
:func:`metrics_toolkit.store.ingest.write_snapshots` and only then acks it. A crash between the
write and the ack replays that batch on the next run; the idempotent insert skips it, so
nothing is doubled.

The spool is bounded by ``max_rows`` (config key ``spool.max_rows``). When an append would
go past it, the *oldest* rows are dropped (the newest data is kept, so the database catches
up with the present once it is back); every drop is counted (:meth:`Spool.dropped`, kept in
the file across restarts) and logged with the time range it lost, never silent.

A spool file that is corrupt or truncated (a damaged disk, a copy cut short) is moved aside
as ``<name>.corrupt-<UTC time>``, every row that can still be read (through SQLite, else
straight from the file's leaf pages: :mod:`metrics_toolkit.collect.salvage`) is copied, in
order, into a fresh spool at the original path, and :attr:`Spool.recovery` (also logged,
in one line) says how many rows were kept and how many could not be read.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

from sqlalchemy import Engine

from metrics_toolkit.collect.salvage import leaf_rows
from metrics_toolkit.errors import SpoolError
from metrics_toolkit.faults import FaultPoints
from metrics_toolkit.store.ingest import IngestResult, SnapshotRow, prepare_row, write_snapshots

log = logging.getLogger(__name__)

DEFAULT_MAX_ROWS = 1_000_000
APPLICATION_ID = 0x4D54_5350  # "MTSP": marks a file as a metrics-toolkit spool
FORMAT_VERSION = 1
BUSY_TIMEOUT_MS = 10_000
# When the id range of a damaged file is unknown, give up after this many unreadable ids.
_PROBE_LIMIT = 100_000
_CORRUPTION_CODES = (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB (primary result codes)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS spool (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "timestamp TEXT NOT NULL, metric_type TEXT NOT NULL, metric_data TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS spool_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)
_OWN_TABLES = {"spool", "spool_meta", "sqlite_sequence"}
#: Fault injection for the crash tests: ``after_write`` (or ``after_write@N``, the Nth batch)
#: SIGKILLs this process once a replayed batch is committed but before it is acked.
FAULT_ENV = "METRICS_TOOLKIT_SPOOL_FAULT"
_fault = FaultPoints(FAULT_ENV).hit


class SpoolEntry(NamedTuple):
    """One spooled snapshot: its spool id (to ack) and the row itself."""

    id: int
    timestamp: datetime
    metric_type: str
    metric_data: dict[str, Any]

    @property
    def row(self) -> SnapshotRow:
        """The ``(timestamp, metric_type, metric_data)`` tuple for ``write_snapshots``."""
        return self.timestamp, self.metric_type, self.metric_data


@dataclass(frozen=True)
class SpoolRecovery:
    """What opening a damaged spool file did.

    ``kept`` rows were copied into the fresh spool; ``lost`` rows could not be read (None
    when the file was too damaged to tell); the damaged file was moved to ``moved_to``.
    """

    path: Path
    moved_to: Path
    reason: str
    kept: int
    lost: int | None

    def describe(self) -> str:
        """One line for the log."""
        lost = "an unknown number" if self.lost is None else str(self.lost)
        return (
            f"Spool {self.path} was damaged ({self.reason}): kept {self.kept} snapshot(s), "
            f"{lost} could not be read; the damaged file is kept as {self.moved_to}"
        )


def ensure_directory(path: Path) -> None:
    """Create the directory of spool file ``path``; :class:`SpoolError` when impossible."""
    if path.parent.exists() and not path.parent.is_dir():
        msg = f"Cannot use spool path {path}: {path.parent} is a file, not a directory"
        raise SpoolError(msg)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        msg = (
            f"Cannot create the spool directory {path.parent}: {error.strerror or error}; "
            "choose a writable path (--spool or config spool.path)"
        )
        raise SpoolError(msg) from None


def _is_corruption(error: sqlite3.Error) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _CORRUPTION_CODES
    text = str(error)
    return "malformed" in text or "not a database" in text


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()
        connection.execute("PRAGMA synchronous=FULL")
        if mode is None or str(mode[0]).lower() != "wal":
            msg = f"Spool {path}: cannot switch to WAL journaling (got {mode!r})"
            raise SpoolError(msg)
    except BaseException:
        connection.close()
        raise
    return connection


class Spool:
    """A durable FIFO of snapshots in the SQLite file ``path``, holding at most ``max_rows``.

    >>> spool = Spool("spool.db", max_rows=100_000)  # doctest: +SKIP
    >>> spool.append([(timestamp, "aggregated", document)])  # doctest: +SKIP
    >>> batch = spool.peek(100); ...; spool.ack(entry.id for entry in batch)  # doctest: +SKIP

    Raises :class:`SpoolError` (one line, naming the file) when the file cannot be created
    or opened, or is some other SQLite database. Use as a context manager or call
    :meth:`close`. One process at a time should own a spool (the daemon holds a lock).
    """

    def __init__(self, path: str | Path, max_rows: int = DEFAULT_MAX_ROWS) -> None:
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
            msg = (
                f"Spool max_rows must be a whole number of snapshots, at least 1 (got {max_rows!r})"
            )
            raise SpoolError(msg)
        self.path = Path(path).expanduser()
        self.max_rows = max_rows
        #: Set when the file was damaged and had to be rebuilt (see :class:`SpoolRecovery`).
        self.recovery: SpoolRecovery | None = None
        self._connection = self._open()
        self._depth = self._count()

    # --- opening, checking and recovering -----------------------------------------------

    def _open(self) -> sqlite3.Connection:
        ensure_directory(self.path)
        if self.path.is_dir():
            msg = f"Spool path {self.path} is a directory; give a file name such as spool.db"
            raise SpoolError(msg)
        try:
            connection = _connect(self.path)
        except sqlite3.Error as error:
            if not _is_corruption(error):
                raise self._cannot_open(error) from None
            return self._recover(str(error))
        try:
            self._check(connection)
        except sqlite3.Error as error:
            connection.close()
            if not _is_corruption(error):
                raise self._cannot_open(error) from None
            return self._recover(str(error))
        except _Damaged as damage:
            connection.close()
            return self._recover(str(damage))
        except BaseException:
            connection.close()
            raise
        return connection

    def _cannot_open(self, error: sqlite3.Error) -> SpoolError:
        return SpoolError(
            f"Cannot open spool file {self.path}: {error}; choose a writable path "
            "(--spool or config spool.path)"
        )

    def _check(self, connection: sqlite3.Connection) -> None:
        """Create the schema in a new file; refuse foreign databases; detect damage."""
        tables = {
            name
            for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        app_id = connection.execute("PRAGMA application_id").fetchone()[0]
        if tables - _OWN_TABLES or (tables and app_id != APPLICATION_ID):
            foreign = ", ".join(sorted(tables - _OWN_TABLES)) or "no spool marker"
            msg = (
                f"{self.path} is not a metrics-toolkit spool file ({foreign}); point --spool "
                "(or config spool.path) at a separate file, never at the metrics database"
            )
            raise SpoolError(msg)
        if not tables:
            connection.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA:
                connection.execute(statement)
            connection.execute(f"PRAGMA application_id={APPLICATION_ID}")
            connection.execute(f"PRAGMA user_version={FORMAT_VERSION}")
            _set_meta(connection, "dropped", 0)
            _set_meta(connection, "low_water", 0)
            connection.execute("COMMIT")
            return
        problems = [row[0] for row in connection.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            # One log line: a single problem can span many lines (one per damaged page).
            lines = [line for problem in problems for line in str(problem).splitlines()]
            more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
            raise _Damaged(f"integrity check: {lines[0]}{more}")

    def _recover(self, reason: str) -> sqlite3.Connection:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        moved = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        try:
            for suffix in ("", "-wal"):
                source = Path(f"{self.path}{suffix}")
                if source.exists():
                    source.rename(f"{moved}{suffix}")
            Path(f"{self.path}-shm").unlink(missing_ok=True)
        except OSError as error:
            msg = f"Spool {self.path} is damaged ({reason}) and cannot be moved aside: {error}"
            raise SpoolError(msg) from None
        salvage = _salvage(moved)
        try:
            connection = _connect(self.path)
            self._check(connection)
        except sqlite3.Error as error:
            raise self._cannot_open(error) from None
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(
            "INSERT INTO spool (timestamp, metric_type, metric_data) VALUES (?, ?, ?)",
            salvage.rows,
        )
        _set_meta(connection, "dropped", salvage.dropped)
        connection.execute("COMMIT")
        self.recovery = SpoolRecovery(
            path=self.path, moved_to=moved, reason=reason, kept=len(salvage.rows), lost=salvage.lost
        )
        log.warning("%s", self.recovery.describe())
        return connection

    # --- the FIFO -----------------------------------------------------------------------

    def _count(self) -> int:
        return int(self._connection.execute("SELECT count(*) FROM spool").fetchone()[0])

    def depth(self) -> int:
        """Snapshots waiting in the spool."""
        return self._depth

    def dropped(self) -> int:
        """Snapshots dropped so far because the spool was full (kept across restarts)."""
        return _get_meta(self._connection, "dropped")

    def append(self, rows: Iterable[SnapshotRow]) -> int:
        """Add rows at the tail, durably (one fsynced transaction); returns how many old
        rows were dropped to stay within ``max_rows``.

        Each row is validated like :func:`metrics_toolkit.store.ingest.prepare_row` (an invalid
        row raises :class:`~metrics_toolkit.errors.InvalidSnapshot` and nothing is added).
        """
        prepared = [
            (timestamp.isoformat(), metric_type, text)
            for timestamp, metric_type, text in (
                prepare_row(row, position) for position, row in enumerate(rows, 1)
            )
        ]
        if not prepared:
            return 0
        connection = self._connection
        total = 0
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.executemany(
                    "INSERT INTO spool (timestamp, metric_type, metric_data) VALUES (?, ?, ?)",
                    prepared,
                )
                overflow = self._depth + len(prepared) - self.max_rows
                lost: tuple[Any, ...] = (None, None)
                if overflow > 0:
                    lost = connection.execute(
                        "SELECT min(timestamp), max(timestamp) FROM (SELECT timestamp FROM "
                        "spool ORDER BY id LIMIT ?)",
                        (overflow,),
                    ).fetchone()
                    connection.execute(
                        "DELETE FROM spool WHERE id IN (SELECT id FROM spool ORDER BY id LIMIT ?)",
                        (overflow,),
                    )
                    total = _get_meta(connection, "dropped") + overflow
                    _set_meta(connection, "dropped", total)
                    self._mark_low_water(connection)
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        except sqlite3.Error as error:
            raise SpoolError(f"Cannot write to spool {self.path}: {error}") from None
        if overflow > 0:
            self._depth = self.max_rows
            log.warning(
                "Spool %s is full (max %d snapshots): dropped the %d oldest, from %s to %s; "
                "%d dropped in total",
                self.path,
                self.max_rows,
                overflow,
                lost[0],
                lost[1],
                total,
            )
            return overflow
        self._depth += len(prepared)
        return 0

    def peek(self, n: int) -> list[SpoolEntry]:
        """The ``n`` oldest snapshots, oldest first, without removing them.

        A row that cannot be decoded (only possible in a damaged file) is removed, counted
        as dropped and logged, so it cannot block the queue.
        """
        try:
            raw = self._connection.execute(
                "SELECT id, timestamp, metric_type, metric_data FROM spool ORDER BY id LIMIT ?",
                (n,),
            ).fetchall()
        except sqlite3.Error as error:
            raise SpoolError(f"Cannot read spool {self.path}: {error}") from None
        entries: list[SpoolEntry] = []
        bad: list[int] = []
        for row_id, timestamp, metric_type, text in raw:
            entry = _decode(row_id, timestamp, metric_type, text)
            if entry is None:
                bad.append(row_id)
            else:
                entries.append(entry)
        if bad:
            self._discard(bad)
        return entries

    def ack(self, ids: Iterable[int]) -> int:
        """Remove the given entries (written to the database); returns how many were removed."""
        id_list = list(ids)
        if not id_list:
            return 0
        connection = self._connection
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                removed = 0
                for start in range(0, len(id_list), 500):
                    part = id_list[start : start + 500]
                    marks = ",".join("?" * len(part))
                    cursor = connection.execute(f"DELETE FROM spool WHERE id IN ({marks})", part)
                    removed += cursor.rowcount
                self._mark_low_water(connection)
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        except sqlite3.Error as error:
            raise SpoolError(f"Cannot update spool {self.path}: {error}") from None
        self._depth -= removed
        return removed

    def _discard(self, ids: Sequence[int]) -> None:
        removed = self.ack(ids)
        connection = self._connection
        connection.execute("BEGIN IMMEDIATE")
        total = _get_meta(connection, "dropped") + removed
        _set_meta(connection, "dropped", total)
        connection.execute("COMMIT")
        log.error(
            "Spool %s: %d snapshot(s) could not be decoded and were dropped (ids %s)",
            self.path,
            removed,
            ", ".join(map(str, ids[:10])) + (" ..." if len(ids) > 10 else ""),
        )

    @staticmethod
    def _mark_low_water(connection: sqlite3.Connection) -> None:
        """Remember the highest id ever removed from the front (to tell losses in recovery)."""
        lowest = connection.execute("SELECT min(id) FROM spool").fetchone()[0]
        if lowest is None:
            row = connection.execute("SELECT seq FROM sqlite_sequence WHERE name = 'spool'")
            found = row.fetchone()
            mark = int(found[0]) if found else 0
        else:
            mark = int(lowest) - 1
        _set_meta(connection, "low_water", mark)

    def close(self) -> None:
        """Close the file (a clean close checkpoints the WAL into the main file)."""
        self._connection.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Spool({str(self.path)!r}, max_rows={self.max_rows}, depth={self._depth})"


class _Damaged(Exception):
    """Internal: the file opened but failed its integrity check."""


def _get_meta(connection: sqlite3.Connection, key: str) -> int:
    row = connection.execute("SELECT value FROM spool_meta WHERE key = ?", (key,)).fetchone()
    return int(row[0]) if row else 0


def _set_meta(connection: sqlite3.Connection, key: str, value: int) -> None:
    connection.execute(
        "INSERT INTO spool_meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def _decode(row_id: int, timestamp: Any, metric_type: Any, text: Any) -> SpoolEntry | None:
    try:
        when = datetime.fromisoformat(timestamp)
        document = json.loads(text)
    except (TypeError, ValueError):
        return None
    if not isinstance(document, dict) or not isinstance(metric_type, str):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return SpoolEntry(row_id, when, metric_type, document)


@dataclass
class _Salvage:
    rows: list[tuple[str, str, str]]
    lost: int | None
    dropped: int


@dataclass
class _Found:
    """Rows (by spool id) and bookkeeping read from a damaged file so far."""

    rows: dict[int, tuple[str, str, str]] = field(default_factory=dict)
    top: int | None = None  # the highest id ever given (sqlite_sequence)
    low_water: int | None = None  # the highest id ever removed from the front
    dropped: int | None = None

    def missing(self) -> bool:
        if self.top is None or self.low_water is None:
            return True
        return self.top - self.low_water > len(self.rows)


def _salvage(path: Path) -> _Salvage:
    """Read every row of a damaged spool file that can still be read, in id order.

    First through SQLite; when that misses rows, from the leaf pages themselves
    (:mod:`metrics_toolkit.collect.salvage`): a file cut short usually loses the interior
    pages of the b-tree, which SQLite allocates late, and with them the way to intact rows.
    """
    found = _Found()
    _salvage_sqlite(path, found)
    if found.missing():
        _salvage_pages(path, found)
    rows = [found.rows[row_id] for row_id in sorted(found.rows)]
    lost: int | None = None
    if found.top is not None and found.low_water is not None:
        lost = max(0, found.top - found.low_water - len(rows))
    return _Salvage(rows, lost, found.dropped or 0)


def _salvage_sqlite(path: Path, found: _Found) -> None:
    try:
        connection = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error:
        return
    try:
        # A file shorter than its header says is refused as a whole unless the schema is
        # "writable": then SQLite reads the pages that are there. No row is written (but
        # closing checkpoints the moved log into the moved file, for the page scan).
        connection.execute("PRAGMA writable_schema=ON")
        connection.execute("SELECT rootpage FROM sqlite_master WHERE name = 'spool'").fetchone()
        _salvage_rows(connection, found)
    except sqlite3.Error:
        pass
    finally:
        connection.close()


def _quiet_int(connection: sqlite3.Connection, sql: str, *params: Any) -> int | None:
    try:
        row = connection.execute(sql, params).fetchone()
    except sqlite3.Error:
        return None
    return int(row[0]) if row and row[0] is not None else None


def _salvage_rows(connection: sqlite3.Connection, found: _Found) -> None:
    select = "SELECT id, timestamp, metric_type, metric_data FROM spool"
    top = _quiet_int(connection, "SELECT seq FROM sqlite_sequence WHERE name = 'spool'")
    low_water = _quiet_int(connection, "SELECT value FROM spool_meta WHERE key = 'low_water'")
    found.top, found.low_water = top, low_water
    found.dropped = _quiet_int(connection, "SELECT value FROM spool_meta WHERE key = 'dropped'")
    rows = found.rows
    last = low_water or 0
    while True:
        try:
            for row_id, timestamp, metric_type, text in connection.execute(
                f"{select} WHERE id > ? ORDER BY id", (last,)
            ):
                last = row_id
                if _decode(row_id, timestamp, metric_type, text) is not None:
                    rows[row_id] = (timestamp, metric_type, text)
            break
        except sqlite3.Error:
            pass
        # The range scan hit a damaged page: probe ids one by one for the next readable row.
        limit = top if top is not None else last + _PROBE_LIMIT
        probe, hit = last + 1, None
        while probe <= limit and hit is None:
            try:
                hit = connection.execute(f"{select} WHERE id = ?", (probe,)).fetchone()
            except sqlite3.Error:
                hit = None
            probe += 1
        if hit is None:
            break
        row_id, timestamp, metric_type, text = hit
        last = row_id
        if _decode(row_id, timestamp, metric_type, text) is not None:
            rows[row_id] = (timestamp, metric_type, text)


def _salvage_pages(path: Path, found: _Found) -> None:
    """Add the rows found in the leaf pages (ids after ``low_water``, up to ``top``).

    Without a known ``low_water`` nothing is added: an old page image can still hold rows
    that were delivered and removed long ago, and those must not come back.
    """
    candidates: dict[int, tuple[str, str, str]] = {}
    meta: dict[str, int] = {}
    try:
        for row_id, values in leaf_rows(path):
            if (
                len(values) == 4
                and values[0] is None
                and all(isinstance(v, str) for v in values[1:])
            ):
                candidates[row_id] = (str(values[1]), str(values[2]), str(values[3]))
            elif len(values) == 2 and isinstance(values[0], str) and isinstance(values[1], int):
                key = "top" if values[0] == "spool" else values[0]
                meta[key] = values[1]
    except OSError:
        return
    if found.top is None:
        found.top = meta.get("top")
    if found.low_water is None:
        found.low_water = meta.get("low_water")
    if found.dropped is None:
        found.dropped = meta.get("dropped")
    if found.low_water is None:
        return
    for row_id, (timestamp, metric_type, text) in candidates.items():
        if row_id <= found.low_water or row_id in found.rows:
            continue
        if found.top is not None and row_id > found.top:
            continue
        if _decode(row_id, timestamp, metric_type, text) is not None:
            found.rows[row_id] = (timestamp, metric_type, text)


def replay(
    spool: Spool,
    engine: Engine,
    *,
    batch_size: int = 1_000,
    deadline: float | None = None,
    into: IngestResult | None = None,
    stop: Callable[[], bool] | None = None,
) -> IngestResult:
    """Move spooled snapshots into the database, oldest first, batch by batch.

    Each batch is written with :func:`~metrics_toolkit.store.ingest.write_snapshots` and acked
    only after it committed. Stops when the spool is empty, or after the batch in progress
    once ``time.monotonic()`` passes ``deadline`` or ``stop()`` returns true. Counts
    accumulate in ``into`` (a new :class:`~metrics_toolkit.store.ingest.IngestResult` by default),
    which is returned; pass your own to keep the counts of the batches that did commit when
    a later one raises :class:`~metrics_toolkit.errors.DatabaseError` (that batch stays in
    the spool).
    """
    total = IngestResult() if into is None else into
    while spool.depth() > 0:
        entries = spool.peek(batch_size)
        if not entries:
            continue  # only undecodable rows were there; peek dropped them
        result = write_snapshots(engine, [entry.row for entry in entries], batch_size=batch_size)
        _fault("after_write")
        spool.ack(entry.id for entry in entries)
        total.add(result)
        if deadline is not None and time.monotonic() >= deadline:
            break
        if stop is not None and stop():
            break
    return total


__all__ = [
    "DEFAULT_MAX_ROWS",
    "Spool",
    "SpoolEntry",
    "SpoolRecovery",
    "ensure_directory",
    "replay",
]
