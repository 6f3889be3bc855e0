"""Rollup tiers: the rollup rule's buckets kept ahead at a few widths (docs/design.md §9).

``metrics_tiers`` holds, per width in :data:`TIER_WIDTHS`, metric_type, host and bucket, the
rolled-up document the archive would write for that bucket (``rollup.rule.rollup_rows``).
Writers never compute tiers: they mark what they touched in the tier log
(``store.tier_log``), in their own transaction. :func:`refresh` recomputes the marked
buckets: the finest width from the snapshots, each coarser width from the one below by the
merge law (``rollup(rollup(raw, 5min), 1h) == rollup(raw, 1h)``), and deletes a log entry
only if no writer widened it meanwhile. A tier row overlapping a log entry is stale; readers
read the snapshots there (``frames.load``).

Speed: the finest width is made the archive's fast way when it can
(``archive.fast.read_raw_chunk``: the documents read as JSON text, parsed column-wise by
Arrow, rolled up by ``rollup.frame.resample_stats``; the same documents as ``rollup_rows``,
as the archive's tests prove); windows holding rolled-up snapshots, counters or malformed
documents go through ``rollup_rows`` itself. The coarser widths merge a few hundred tier
documents per host and day through ``rollup_rows``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, and_, delete, insert, select

from metrics_toolkit import catalog
from metrics_toolkit.archive.fast import RawChunk, read_raw_chunk
from metrics_toolkit.documents import ROLLUP_KEY, host_of, shadowed
from metrics_toolkit.intervals import Interval, as_utc, bucket_start
from metrics_toolkit.rollup import blocks
from metrics_toolkit.rollup.docs import gauge_documents
from metrics_toolkit.rollup.frame import metrics_of, resample_stats, stats_frame
from metrics_toolkit.rollup.output import to_snapshot_docs
from metrics_toolkit.rollup.rule import Row, rollup_rows
from metrics_toolkit.rollup.stats import ROW_METRIC
from metrics_toolkit.store.locks import exclusive
from metrics_toolkit.store.models import MetricsSnapshot, MetricsTier, TierDirty

#: The tier widths, finest first; each divides the next. One per view the explorer's point
#: budget picks, so each of its presets reads a few hundred buckets per host: 5 min for a
#: day (288), 30 min for a week (336), 2 h for a month (360; 6 h and 12 h too), 1 day for a
#: year. 1 h serves 1 h and 3 h buckets. A tier document (~90 leaves x 8 statistics, ~20
#: kB) costs the same to read at every width, so a view's cost is its row count: the 7-day
#: view read 20,160 five-minute documents per 10 hosts before 30 min was added, the 30-day
#: view 7,200 one-hour ones before 2 h was. Storage: each width costs about 1/k of the
#: 5-min width's, k its ratio to 5 min (30 min a sixth, 2 h a 24th).
TIER_WIDTHS: tuple[int, ...] = (300, 1800, 3600, 7200, 86400)

#: The snapshots of a day are read and rolled up in pieces this long (a piece's documents
#: are held as text and columns at once: 3 h of 40 hosts at 10 s is about 150 MB).
PIECE = timedelta(hours=3)


_COPY = (
    f"COPY {MetricsTier.__tablename__} "
    "(width_seconds, metric_type, host, timestamp, samples, metric_data) FROM STDIN"
)


@dataclass
class RefreshResult:
    entries: int = 0  # tier log entries worked through
    buckets: int = 0  # tier rows written
    days: int = 0  # UTC days recomputed (one transaction each)
    rows_read: int = 0  # snapshot rows read
    left: int = 0  # entries a writer widened meanwhile (they stay for the next refresh)


def refresh(
    engine: Engine | Connection,
    *,
    progress: Callable[[int, int], None] | None = None,
    wait_seconds: float = 3600.0,
) -> RefreshResult:
    """Recompute the tier buckets the tier log marks, one UTC day per transaction.

    ``progress(done, total)`` is called after each day. Safe to interrupt: what was done
    is committed, the rest stays in the log (the next refresh resumes there). Given an
    engine, a refresh running elsewhere is waited for (``wait_seconds``, then
    :class:`~metrics_toolkit.store.locks.JobBusy`); given a connection, it runs in the
    caller's transaction and the caller serialises.
    """
    result = RefreshResult()
    if isinstance(engine, Connection):
        work = pending(engine)
        for n, entries in enumerate(work, 1):
            refresh_entries(engine, entries, result)
            if progress is not None:
                progress(n, len(work))
        return result
    # One refresh at a time (two would write the same tier rows); a second one waits.
    with exclusive(engine, "tiers", wait_seconds=wait_seconds):
        with engine.connect() as connection:
            work = pending(connection)
            connection.rollback()
        pieces = [p for entries in work for p in _pieces(*_window(entries, TIER_WIDTHS[0]))]
        postgres = engine.dialect.name == "postgresql"
        with _ReadAhead(engine, pieces if postgres else []) as reader:
            for n, entries in enumerate(work, 1):
                with engine.begin() as connection:
                    refresh_entries(connection, entries, result, reader=reader)
                if progress is not None:
                    progress(n, len(work))
    return result


class _ReadAhead:
    """The finest width's pieces read as columns, each on its own connection while the one
    before is worked on (PostgreSQL: the server renders the next piece's documents as text
    while Python rolls this one up). A piece is read after the log was, so a write it
    misses has moved its entry's ``seq`` and stays marked; snapshots are never written here.
    """

    def __init__(self, engine: Engine, pieces: Sequence[tuple[datetime, datetime]]) -> None:
        self.engine = engine
        self.index = {piece: i for i, piece in enumerate(pieces)}
        self.pieces = list(pieces)
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tiers-read")
        self.reads: dict[int, Future[RawChunk | None]] = {}
        self._start(0)

    def __enter__(self) -> _ReadAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        for future in self.reads.values():
            future.cancel()
        self.pool.shutdown(wait=True)

    def _start(self, i: int) -> None:
        if i < len(self.pieces) and i not in self.reads:
            self.reads[i] = self.pool.submit(self._read, *self.pieces[i])

    def _read(self, lo: datetime, hi: datetime) -> RawChunk | None:
        with self.engine.connect() as connection:
            chunk = read_raw_chunk(connection, lo, hi)
            connection.rollback()
        return chunk

    def read(self, connection: Connection, lo: datetime, hi: datetime) -> RawChunk | None:
        i = self.index.get((lo, hi))
        if i is None:
            return read_raw_chunk(connection, lo, hi)
        self._start(i)
        future = self.reads.pop(i)
        self._start(i + 1)
        return future.result()


def _window(entries: Sequence[Any], width: int) -> tuple[datetime, datetime, int]:
    """The buckets of ``width`` that ``entries`` (one day's) overlap: ``[start, end)``."""
    step = timedelta(seconds=width)
    lo = min(as_utc(e.first_ts) for e in entries)
    hi = max(as_utc(e.last_ts) for e in entries)
    return bucket_start(lo, step), bucket_start(hi, step) + step, width


def _pieces(start: datetime, end: datetime, width: int) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` cut in pieces of about :data:`PIECE`, on ``width``'s buckets."""
    step = timedelta(seconds=width)
    piece = max(PIECE // step, 1) * step
    out = []
    while start < end:
        out.append((start, min(start + piece, end)))
        start += piece
    return out


def pending(connection: Connection) -> list[list[Any]]:
    """The tier log's entries, grouped by UTC day (oldest first)."""
    rows = connection.execute(
        select(TierDirty).order_by(TierDirty.day, TierDirty.metric_type, TierDirty.host)
    ).all()
    days: dict[datetime, list[Any]] = defaultdict(list)
    for entry in rows:
        days[as_utc(entry.day)].append(entry)
    return list(days.values())


def refresh_entries(
    connection: Connection,
    entries: Sequence[Any],
    result: RefreshResult,
    *,
    reader: _ReadAhead | None = None,
) -> None:
    """Recompute every tier bucket, of every key, that overlaps ``entries``' span (the log
    entries of one UTC day, as :func:`pending` read them), then delete each entry whose
    ``seq`` did not move: a writer that committed since :func:`pending` leaves its entry."""
    finer: pd.DataFrame | None = None  # the width below, as statistics, over its window
    window: tuple[datetime, datetime] | None = None
    below = 0
    for width in TIER_WIDTHS:
        start, end, _ = _window(entries, width)
        if window is None:
            read = reader.read if reader is not None else read_raw_chunk
            stats, docs = _from_snapshots(connection, start, end, width, result, read)
        else:
            # The finer buckets of this window outside the one just made are valid tier
            # rows (every log entry of the day is in this transaction): read them back.
            edges = [
                *_tier_rows(connection, below, start, window[0]),
                *_tier_rows(connection, below, window[1], end),
            ]
            parts = [f for f in (finer, stats_frame(edges) if edges else None) if f is not None]
            stats = resample_stats(pd.concat(parts), Interval(width)) if parts else None
            docs = _documents(stats) if stats is not None else []
        _replace(connection, width, start, end, docs)
        result.buckets += len(docs)
        finer, window, below = stats, (start, end), width
    left = 0
    for e in entries:  # only if no writer widened the entry since it was read
        gone = connection.execute(
            delete(TierDirty).where(
                and_(
                    TierDirty.metric_type == e.metric_type,
                    TierDirty.host == e.host,
                    TierDirty.day == e.day,
                    TierDirty.seq == e.seq,
                )
            )
        )
        left += gone.rowcount == 0
    result.entries += len(entries)
    result.left += left
    result.days += 1


def _from_snapshots(
    connection: Connection,
    start: datetime,
    end: datetime,
    width: int,
    result: RefreshResult,
    read: Callable[[Connection, datetime, datetime], RawChunk | None],
) -> tuple[pd.DataFrame | None, list[Row]]:
    """The rule at ``width`` over the snapshots of ``[start, end)``, piece by piece: the
    buckets as statistics (with their labels, for the coarser widths) and as documents."""
    docs: list[Row] = []
    frames: list[pd.DataFrame] = []
    for lo, hi in _pieces(start, end, width):
        fast = read(connection, lo, hi)
        if fast is not None and not shadowed(fast.values):
            result.rows_read += len(fast)
            if len(fast):
                stats, labels = fast.rollup_stats(Interval(width))
                # A second, fresh copy of the labels (parsing the latest rows' text again
                # is cheaper than a deep copy): gauge_documents fills in the first.
                stats[ROW_METRIC, "labels"] = fast.bucket_labels(stats.index, Interval(width))
                frames.append(stats)
                docs.extend(gauge_documents(stats, labels))  # takes the labels as its own
        else:
            rows = _snapshot_rows(connection, lo, hi)
            result.rows_read += len(rows)
            made = rollup_rows(rows, Interval(width))
            if made:
                frames.append(stats_frame(made))
                docs.extend(made)
    return (pd.concat(frames) if frames else None), docs


def _documents(stats: pd.DataFrame) -> list[Row]:
    """The rolled-up documents of a resampled stats frame (with a labels column)."""
    metrics = metrics_of(stats)
    if shadowed(metrics) or any(catalog.kind_of(path) == "counter" for path in metrics):
        return to_snapshot_docs(stats)
    labels = [_fresh(v) for v in stats[ROW_METRIC, "labels"]]
    return gauge_documents(stats, labels)


def _fresh(labels: Any) -> dict[str, Any]:
    """A copy of a JSON label document (a round trip through text beats ``deepcopy``)."""
    return json.loads(json.dumps(labels)) if isinstance(labels, dict) else {}


def _replace(
    connection: Connection, width: int, start: datetime, end: datetime, docs: list[Row]
) -> None:
    connection.execute(
        delete(MetricsTier).where(
            MetricsTier.width_seconds == width,
            MetricsTier.timestamp >= start,
            MetricsTier.timestamp < end,
        )
    )
    if docs and connection.dialect.name == "postgresql":
        # COPY: one stream, the documents serialised once (executemany costs a round of
        # parameter adaptation per row, and these documents are large).
        driver: Any = connection.connection.driver_connection
        cursor = driver.cursor()
        with cursor, cursor.copy(_COPY) as copy:
            for ts, mt, doc in docs:
                samples = doc[ROLLUP_KEY]["samples"]
                copy.write_row((width, mt, host_of(doc), ts, samples, json.dumps(doc)))
    elif docs:
        connection.execute(
            insert(MetricsTier),
            [
                {
                    "width_seconds": width,
                    "metric_type": mt,
                    "host": host_of(doc),
                    "timestamp": ts,
                    "samples": doc[ROLLUP_KEY]["samples"],
                    "metric_data": doc,
                }
                for ts, mt, doc in docs
            ],
        )
    blocks.write(connection, width, start, end, docs)


def _snapshot_rows(connection: Connection, start: datetime, end: datetime) -> list[Row]:
    stmt = (
        select(MetricsSnapshot.timestamp, MetricsSnapshot.metric_type, MetricsSnapshot.metric_data)
        .where(MetricsSnapshot.timestamp >= start, MetricsSnapshot.timestamp < end)
        .order_by(MetricsSnapshot.timestamp, MetricsSnapshot.id)
    )
    return [(as_utc(ts), mt, doc) for ts, mt, doc in connection.execute(stmt)]


def _tier_rows(connection: Connection, width: int, start: datetime, end: datetime) -> list[Row]:
    stmt = (
        select(MetricsTier.timestamp, MetricsTier.metric_type, MetricsTier.metric_data)
        .where(
            MetricsTier.width_seconds == width,
            MetricsTier.timestamp >= start,
            MetricsTier.timestamp < end,
        )
        .order_by(MetricsTier.metric_type, MetricsTier.host, MetricsTier.timestamp)
    )
    return [(as_utc(ts), mt, doc) for ts, mt, doc in connection.execute(stmt)]


__all__ = ["PIECE", "TIER_WIDTHS", "RefreshResult", "pending", "refresh", "refresh_entries"]
