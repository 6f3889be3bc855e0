"""Put archived raw rows back into the database.

``restore(engine, start=..., end=...)`` reads the Parquet archive's raw rows in
``[start, end)`` (widened to whole rollup buckets where the database holds rollups that
overlap the range) and writes them back:

- rows whose bucket has no rollup in the database are written through the bulk ingest
  (:func:`metrics_toolkit.store.ingest.write_snapshots`); rows still present are skipped, never
  doubled;
- a rollup row is *replaced* by the raw rows it was made from when the archive holds all of
  them (their number equals its ``_rollup.samples``): in one transaction the rollup is
  deleted and its raw rows inserted. When a retention cut fell inside the rollup's bucket,
  the archive also holds the bucket's earlier raw rows (deleted, not rolled up): the
  rollup's own rows are those from its earliest sample (``_rollup.first_time``) on, and the
  earlier ones are restored beside them, so every archived sample comes back once. When
  the archive holds fewer (it was disabled when the rollup was made), the rollup is kept
  and those raw rows are not restored, since both together would count the same samples
  twice.

Restored rows older than the policy's ``downsample_after_days`` are rolled up again by the
next archive run (and deleted again past ``retention_days``): pause the schedule, or raise
those settings, while you work with them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from metrics_toolkit.archive.runner import archive_root
from metrics_toolkit.archive.store import ArchiveRow, ArchiveStore
from metrics_toolkit.documents import ROLLUP_KEY, flatten, host_of
from metrics_toolkit.errors import InvalidInterval, MetricsToolkitError
from metrics_toolkit.intervals import Interval
from metrics_toolkit.store import series, tier_log
from metrics_toolkit.store.ingest import write_snapshots
from metrics_toolkit.store.models import MetricsSnapshot

#: The widest rollup a restore looks back for (rollups start at their bucket's start).
MAX_ROLLUP_WIDTH = timedelta(days=31)
_EARLIEST = datetime.min.replace(tzinfo=UTC)


@dataclass
class RestoreResult:
    start: datetime
    end: datetime
    restored: int = 0
    already_present: int = 0
    rollups_replaced: int = 0
    rollups_kept: int = 0
    rows_not_restored: int = 0


@dataclass(frozen=True)
class _Rollup:
    id: int
    host: str
    metric_type: str
    start: datetime
    end: datetime
    samples: int
    first: float | None  # its earliest sample, epoch seconds (None: not recorded)

    def sources(self, rows: list[ArchiveRow]) -> tuple[list[ArchiveRow], list[ArchiveRow]]:
        """The archived raw rows of its bucket it was made from, and the others.

        A retention cut inside the bucket deletes (and archives) the bucket's earlier rows
        before the rest are rolled up, so the archive can hold more raw rows than the
        rollup's samples: its sources are then the rows from its earliest sample on.
        Empty sources when the archive does not hold them all.
        """
        if len(rows) == self.samples:
            return rows, []
        if len(rows) < self.samples or self.first is None:
            return [], rows
        cut = self.first - 1e-6
        made = [r for r in rows if r.timestamp.timestamp() >= cut]
        if len(made) != self.samples:
            return [], rows
        return made, [r for r in rows if r.timestamp.timestamp() < cut]


def _rollups(
    session: Session, start: datetime, end: datetime, metric_type: str | None
) -> list[_Rollup]:
    stmt = select(
        MetricsSnapshot.id,
        MetricsSnapshot.timestamp,
        MetricsSnapshot.metric_type,
        MetricsSnapshot.metric_data,
    ).where(
        MetricsSnapshot.timestamp >= max(start, _EARLIEST + MAX_ROLLUP_WIDTH) - MAX_ROLLUP_WIDTH,
        MetricsSnapshot.timestamp < end,
        MetricsSnapshot.metric_data[ROLLUP_KEY]["interval"].as_string().is_not(None),
    )
    if metric_type is not None:
        stmt = stmt.where(MetricsSnapshot.metric_type == metric_type)
    found = []
    for row_id, ts, mt, doc in session.execute(stmt):
        meta = doc.get(ROLLUP_KEY, {})
        try:
            width = Interval.parse(meta.get("interval")).timedelta
        except InvalidInterval:
            continue
        if ts + width > start:
            samples = int(meta.get("samples", 0))
            found.append(_Rollup(row_id, host_of(doc), mt, ts, ts + width, samples, _first(meta)))
    return found


def _first(meta: dict[str, Any]) -> float | None:
    times = [
        t
        for t in flatten({"t": meta.get("first_time") or {}}).values()
        if isinstance(t, int | float) and not isinstance(t, bool)
    ]
    return float(min(times)) if times else None


def _insert_ignore(session: Session, rows: list[ArchiveRow]) -> int:
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = MetricsSnapshot.__table__
    stmt = insert(table).on_conflict_do_nothing().returning(table.c.id)  # type: ignore[arg-type]
    result = session.connection().execute(
        stmt,
        [
            {"timestamp": r.timestamp, "metric_type": r.metric_type, "metric_data": r.document}
            for r in rows
        ],
    )
    return len(result.all())


def restore(
    engine: Engine,
    *,
    start: datetime,
    end: datetime,
    metric_type: str | None = None,
    archive_path: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> RestoreResult:
    """Restore archived raw rows of ``[start, end)`` (see the module docstring)."""
    if start >= end:
        msg = (
            f"Nothing to restore: start ({start.isoformat()}) is not before "
            f"end ({end.isoformat()})."
        )
        raise MetricsToolkitError(msg)
    with Session(engine) as session:
        store = ArchiveStore(archive_root(session, archive_path)).require().readable()
        rollups = _rollups(session, start, end, metric_type)
    lo = min([start, *(r.start for r in rollups)])
    hi = max([end, *(r.end for r in rollups)])
    result = RestoreResult(lo, hi)
    by_key: dict[tuple[str, str], list[_Rollup]] = defaultdict(list)
    for rollup in rollups:
        by_key[(rollup.host, rollup.metric_type)].append(rollup)
    covered: dict[int, list[ArchiveRow]] = defaultdict(list)
    free: list[ArchiveRow] = []
    for batch in store.iter_rows(start=lo, end=hi, metric_type=metric_type):
        for row in batch:
            if ROLLUP_KEY in row.document:
                continue
            owner = _owner(by_key, row)
            if owner is None:
                free.append(row)
            else:
                covered[owner.id].append(row)
        if len(free) >= 50_000:
            _ingest(engine, free, result, progress)
            free = []
    sources: dict[int, list[ArchiveRow]] = {}
    for rollup in rollups:
        made, others = rollup.sources(covered.get(rollup.id, []))
        if made:
            sources[rollup.id] = made
            free.extend(others)  # archived by a retention cut inside the bucket
    _ingest(engine, free, result, progress)
    for rollup in rollups:
        rows = sources.get(rollup.id, [])
        if not rows:
            result.rollups_kept += 1
            result.rows_not_restored += len(covered.get(rollup.id, []))
            continue
        with Session(engine) as session, session.begin():
            session.execute(delete(MetricsSnapshot).where(MetricsSnapshot.id == rollup.id))
            inserted = _insert_ignore(session, rows)
            # The tier log before the catalog, as every writer does (one lock order).
            last = rollup.end - timedelta(microseconds=1)
            tier_log.mark(
                session.connection(), [(rollup.metric_type, rollup.host, rollup.start, last)]
            )
            series.refresh_series(
                session.connection(),
                [(rollup.metric_type, rollup.host)],
                [(r.timestamp, r.metric_type, r.document) for r in rows],
            )
        result.rollups_replaced += 1
        result.restored += inserted
        result.already_present += len(rows) - inserted
        if progress:
            progress(len(rows))
    return result


def _owner(by_key: dict[tuple[str, str], list[_Rollup]], row: ArchiveRow) -> _Rollup | None:
    for rollup in by_key.get((host_of(row.document), row.metric_type), ()):
        if rollup.start <= row.timestamp < rollup.end:
            return rollup
    return None


def _ingest(
    engine: Engine,
    rows: list[ArchiveRow],
    result: RestoreResult,
    progress: Callable[[int], None] | None,
) -> None:
    if not rows:
        return
    written = write_snapshots(engine, [(r.timestamp, r.metric_type, r.document) for r in rows])
    result.restored += written.inserted
    result.already_present += written.duplicates
    if progress:
        progress(len(rows))


__all__ = ["RestoreResult", "restore"]
