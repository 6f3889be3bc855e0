"""The archive runner: apply the active ArchivePolicy, crash-safely (docs/design.md §4).

``run_archive(engine, now=...)`` works through the policy's timeline in chunks of whole
buckets (one UTC day, or one bucket when the interval is wider), oldest first:

1. *Retention*: rows older than ``retention_days`` are written to the archive (when
   enabled) and deleted.
2. *Downsampling*: in ``[delete_before, downsample_before)``, every bucket holding a raw row
   (or a row rolled up to a finer width) is rolled up to ``downsample_interval`` by the one
   rollup rule, merging any rollup row already there (late rows from a replayed spool land
   in their bucket). The replaced rows are archived first.

Each chunk is one database transaction: delete the rows read, insert their rollups, read
the rollups back and check them against the rows they replace (samples per bucket and the
count of every leaf), record the archive files and advance the run's watermark; then
commit. A check that fails rolls the chunk back. Archive files are written under pending
names, fsynced before the transaction commits (a rollup chunk writes its file while the
transaction runs and waits for it before recording it), and renamed after it commits (see
:mod:`metrics_toolkit.archive.store`); a run killed at any point leaves either the rows in
the database (and a pending file the next run discards) or the rollups plus a committed
file record (whose rename the next run finishes): nothing lost, nothing doubled.

Speed: chunks of raw, counter-free rows (the usual case) are read and rolled up as columns
(:mod:`metrics_toolkit.archive.fast`), each read while the previous chunk is worked on;
other chunks go through ``rollup.rollup_rows`` document by document. Both give the same
rollups and archive rows (tests compare them).

Two runs never interleave: :func:`metrics_toolkit.store.locks.exclusive`.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Integer,
    String,
    bindparam,
    cast,
    column,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from metrics_toolkit.archive.fast import RawChunk, read_raw_chunk
from metrics_toolkit.archive.plan import Plan, chunks, plan
from metrics_toolkit.archive.store import ArchiveRow, ArchiveStore, is_url
from metrics_toolkit.archive.tiers import RefreshResult
from metrics_toolkit.archive.tiers import refresh as refresh_tiers
from metrics_toolkit.documents import ROLLUP_KEY, flatten, host_of, host_of_any, shadowed
from metrics_toolkit.errors import InvalidInterval, MetricsToolkitError
from metrics_toolkit.faults import FaultPoints
from metrics_toolkit.intervals import Interval, as_utc, bucket_start
from metrics_toolkit.rollup.rule import Row, rollup_rows
from metrics_toolkit.store import series, tier_log
from metrics_toolkit.store.config import get_config
from metrics_toolkit.store.locks import exclusive
from metrics_toolkit.store.models import (
    SNAPSHOT_ROLLUP_SQL,
    ArchiveFile,
    ArchiveRun,
    MetricsSnapshot,
)
from metrics_toolkit.store.policies import PolicySettings, get_active_policy

FAULT_ENV = "METRICS_TOOLKIT_ARCHIVE_FAULT"
ID_BATCH = 5000
DELETE_BATCH = 100_000


class ArchiveVerificationError(MetricsToolkitError):
    """Rollups did not account for exactly the rows they were to replace."""


@dataclass
class ChunkResult:
    """What one chunk did."""

    action: str  # "delete" or "rollup"
    start: datetime
    end: datetime
    rows_read: int = 0
    rows_archived: int = 0
    rows_replaced: int = 0
    rollups_written: int = 0
    rows_deleted: int = 0


@dataclass
class RunResult:
    run_id: int | None
    plan: Plan
    status: str
    chunks: list[ChunkResult] = field(default_factory=list)
    recovered_files: int = 0
    discarded_files: int = 0
    tiers: RefreshResult | None = None  # the tier refresh after the policy steps

    def total(self, name: str) -> int:
        return sum(int(getattr(chunk, name)) for chunk in self.chunks)

    def counts(self) -> dict[str, int]:
        """The run's totals under :data:`COUNT_KEYS` (``chunks``: those that changed rows)."""
        return {
            "rows_rolled_up": self.total("rows_replaced"),
            "rollups_written": self.total("rollups_written"),
            "rows_deleted": self.total("rows_deleted"),
            "rows_archived": self.total("rows_archived"),
            "chunks": sum(1 for c in self.chunks if c.rows_replaced or c.rows_deleted),
        }


@dataclass(frozen=True)
class PlannedAction:
    """A dry-run line: what would happen to ``rows`` rows in ``[start, end)``.

    The counts are those the run's :class:`ChunkResult` of the same chunk reports
    (``rows_replaced`` is ``rows_rolled_up`` here, as in ``archive_runs``).
    """

    action: str
    start: datetime
    end: datetime
    rows: int
    rows_rolled_up: int = 0
    rollups_written: int = 0
    rows_deleted: int = 0
    rows_archived: int = 0


#: The count keys of ``archive run --json`` and ``archive run --dry-run --json``.
COUNT_KEYS = ("rows_rolled_up", "rollups_written", "rows_deleted", "rows_archived", "chunks")


def planned_counts(actions: Sequence[PlannedAction]) -> dict[str, int]:
    """The dry run's totals under :data:`COUNT_KEYS`."""
    totals = {key: sum(getattr(a, key) for a in actions) for key in COUNT_KEYS[:-1]}
    return {**totals, "chunks": len(actions)}


Progress = Callable[[ChunkResult | int], None]


#: Fault injection for the crash tests (:mod:`metrics_toolkit.faults`).
_fault = FaultPoints(FAULT_ENV).hit


# --------------------------------------------------------------------------------------
# Planning


def _utc_now(now: datetime | None) -> datetime:
    return datetime.now(UTC) if now is None else as_utc(now)


def policy_plan(session: Session, now: datetime | None = None) -> Plan:
    """The active policy's plan at ``now``; an invalid policy raises before anything runs."""
    policy = get_active_policy(session=session)
    assert policy is not None
    return plan(now=_utc_now(now), **PolicySettings.of(policy).settings())


def _oldest(session: Session) -> datetime | None:
    return session.scalar(select(func.min(MetricsSnapshot.timestamp)))


def _rows_between(session: Session, lo: datetime, hi: datetime) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(MetricsSnapshot)
            .where(MetricsSnapshot.timestamp >= lo, MetricsSnapshot.timestamp < hi)
        )
        or 0
    )


def _interval_of(doc: Any) -> int:
    """A row's rollup width in seconds (0 for a raw row or an unreadable one)."""
    meta = doc.get(ROLLUP_KEY) if isinstance(doc, dict) else None
    if not isinstance(meta, dict):
        return 0
    try:
        return Interval.parse(str(meta.get("interval"))).seconds
    except InvalidInterval:
        return 0


def _chunk_intervals(session: Session, lo: datetime, hi: datetime) -> Counter[str | None]:
    """Rows of ``[lo, hi)`` by their ``_rollup.interval`` (``None``: raw or unreadable)."""
    interval = MetricsSnapshot.metric_data[ROLLUP_KEY]["interval"].as_string()
    stmt = select(interval, func.count()).where(
        MetricsSnapshot.timestamp >= lo, MetricsSnapshot.timestamp < hi
    )
    rolled_up = SNAPSHOT_ROLLUP_SQL.get(session.get_bind().dialect.name)
    if rolled_up is None:
        return Counter({name: int(n) for name, n in session.execute(stmt.group_by(interval))})
    # Count all rows by the timestamp index and read only the rolled-up ones (the partial
    # index finds them) rather than extracting a JSON path from every row.
    stmt = stmt.where(text(rolled_up)).group_by(interval)
    found = Counter({name: int(n) for name, n in session.execute(stmt)})
    raw = _rows_between(session, lo, hi) - found.total()
    if raw:
        found[None] += raw
    return found


def _needs_rollup(found: Counter[str | None], target: Interval) -> int:
    """Rows of a chunk that are raw or rolled up finer than ``target``."""
    pending = 0
    for name, n in found.items():
        if name is None:
            pending += n
            continue
        try:
            if Interval.parse(name).seconds < target.seconds:
                pending += n
        except InvalidInterval:
            pending += n
    return pending


def dry_run(engine: Engine, *, now: datetime | None = None) -> tuple[Plan, list[PlannedAction]]:
    """What :func:`run_archive` would do at ``now``, changing nothing.

    The same chunks as the run (:func:`_work`), each counted as the run will find it: the
    first rollup chunk without the rows the retention deletes before it, and its buckets
    chosen by the run's own rule (:func:`_rows_to_replace`).
    """
    with Session(engine) as session:
        the_plan = policy_plan(session, now)
        session.rollback()  # get_active_policy may have created the default: keep nothing
        actions: list[PlannedAction] = []
        archived = the_plan.archive
        for action, lo, hi in _work_in(session, the_plan):
            if action == "delete":
                n = _rows_between(session, lo, hi)
                name = "archive+delete" if archived else "delete"
                actions.append(PlannedAction(name, lo, hi, n, 0, 0, n, n if archived else 0))
                continue
            replaced, written = _planned_rollup(session, the_plan, lo, hi)
            if replaced:
                name = f"rollup to {the_plan.interval}" + (" (archived)" if archived else "")
                archived_rows = replaced if archived else 0
                actions.append(
                    PlannedAction(name, lo, hi, replaced, replaced, written, 0, archived_rows)
                )
    return the_plan, actions


def _planned_rollup(
    session: Session, the_plan: Plan, lo: datetime, hi: datetime
) -> tuple[int, int]:
    """Rows a rollup chunk will replace and rollups it will write, read without documents."""
    interval = MetricsSnapshot.metric_data[ROLLUP_KEY]["interval"].as_string()
    stmt = select(
        MetricsSnapshot.id,
        MetricsSnapshot.timestamp,
        MetricsSnapshot.metric_type,
        MetricsSnapshot.metric_data["host"].as_string(),
        interval,
    ).where(
        # Rows before the retention cut are deleted before this chunk is rolled up.
        MetricsSnapshot.timestamp >= max(lo, the_plan.delete_before),
        MetricsSnapshot.timestamp < hi,
    )
    rows = [
        (i, ts, mt, {"host": host} | ({ROLLUP_KEY: {"interval": width}} if width else {}))
        for i, ts, mt, host, width in session.execute(stmt)
    ]
    chosen = _rows_to_replace(rows, the_plan.interval)
    buckets = {(host_of(d), mt, bucket_start(ts, the_plan.interval)) for _, ts, mt, d in chosen}
    return len(chosen), len(buckets)


# --------------------------------------------------------------------------------------
# Running


def archive_root(session: Session, override: str | Path | None = None) -> Path | str:
    """The archive directory, or an fsspec URL (``s3://...``) kept as a string."""
    root = override if override is not None else get_config(session=session, key="archive.path")
    return str(root) if is_url(str(root)) else Path(root)


def run_archive(
    engine: Engine,
    *,
    now: datetime | None = None,
    archive_path: str | Path | None = None,
    wait_seconds: float = 0.0,
    progress: Progress | None = None,
    columnar: bool = True,
    tiers: bool = True,
    tier_progress: Callable[[int, int], None] | None = None,
) -> RunResult:
    """Apply the active policy at ``now`` (default: the current time).

    ``progress`` is called once with the number of chunks to do, then with each
    :class:`ChunkResult`. Chunks of raw, counter-free rows are rolled up as columns
    (:mod:`metrics_toolkit.archive.fast`); ``columnar=False`` sends every chunk through
    the general, document-by-document path instead (same results, slower: for
    comparisons). After the policy steps the rollup tiers are refreshed
    (``archive.tiers.refresh``; ``tier_progress(done, total)`` per day) unless ``tiers`` is
    false. Raises :class:`~metrics_toolkit.store.locks.JobBusy` when another run
    holds the lock, :class:`~metrics_toolkit.errors.InvalidPolicy` before touching
    anything when the policy is invalid.
    """
    with exclusive(engine, "archive", wait_seconds=wait_seconds):
        _fault("locked")
        with Session(engine) as session:
            the_plan = policy_plan(session, now)
            policy = get_active_policy(session=session)
            assert policy is not None
            policy_values = PolicySettings.of(policy).settings()
            store = ArchiveStore(archive_root(session, archive_path))
            if the_plan.archive:
                store.exists()  # an unusable path is refused here, before anything changes
            session.commit()
        result = RunResult(None, the_plan, "running")
        result.recovered_files, result.discarded_files = _recover(engine, store)
        run_id = _start_run(engine, the_plan, policy_values)
        result.run_id = run_id
        try:
            work = _work(engine, the_plan)
            if progress:
                progress(len(work))
            with _Reader(engine, work if columnar else []) as reader:
                for index, (action, lo, hi) in enumerate(work):
                    if action == "delete":
                        chunk = _delete_chunk(engine, store, the_plan, run_id, lo, hi)
                    else:
                        fast = reader.chunk(index)
                        chunk = _rollup_chunk(engine, store, the_plan, run_id, lo, hi, fast)
                    result.chunks.append(chunk)
                    if progress:
                        progress(chunk)
        except BaseException as error:
            _finish_run(engine, run_id, "failed", error=str(error) or type(error).__name__)
            raise
        _finish_run(engine, run_id, "completed", last_run=the_plan.now)
        result.status = "completed"
        if tiers:  # after the policy steps, so the buckets they changed are made once
            result.tiers = refresh_tiers(engine, progress=tier_progress)
        return result


def _work(engine: Engine, the_plan: Plan) -> list[tuple[str, datetime, datetime]]:
    with Session(engine) as session:
        return _work_in(session, the_plan)


def _work_in(session: Session, the_plan: Plan) -> list[tuple[str, datetime, datetime]]:
    """The chunks of a run, in order: retention deletes, then rollups (the one planner of
    the run and the dry run)."""
    oldest = _oldest(session)
    if oldest is None:
        return []
    work = [
        ("delete", lo, hi)
        for lo, hi in chunks(oldest, the_plan.delete_before, the_plan.chunk)
        if _rows_between(session, lo, hi)
    ]
    start = bucket_start(max(oldest, the_plan.delete_before), the_plan.interval)
    work += [
        ("rollup", lo, hi)
        for lo, hi in chunks(start, the_plan.downsample_before, the_plan.chunk)
        if _needs_rollup(_chunk_intervals(session, lo, hi), the_plan.interval)
    ]
    return work


def _recover(engine: Engine, store: ArchiveStore) -> tuple[int, int]:
    """Finish what a killed run left: rename committed files, drop uncommitted ones."""
    with Session(engine) as session, session.begin():
        session.execute(
            update(ArchiveRun)
            .where(ArchiveRun.status == "running")
            .values(status="interrupted", finished_at=datetime.now(UTC))
        )
        unfinished = list(
            session.execute(select(ArchiveFile).where(ArchiveFile.finalized.is_(False))).scalars()
        )
        committed = [Path(f.pending_path) for f in unfinished]
        store.finalize(committed)
        for record in unfinished:
            record.finalized = True
    discarded = store.discard_pending(keep=())
    return len(unfinished), len(discarded)


def _start_run(engine: Engine, the_plan: Plan, policy: dict[str, Any]) -> int:
    with Session(engine) as session, session.begin():
        run = ArchiveRun(status="running", policy_now=the_plan.now, policy=policy)
        for name in (
            "rows_archived",
            "rows_rolled_up",
            "rollups_written",
            "rows_deleted",
            "chunks_done",
        ):
            setattr(run, name, 0)
        session.add(run)
        session.flush()
        return run.id


def _finish_run(
    engine: Engine,
    run_id: int,
    status: str,
    *,
    error: str | None = None,
    last_run: datetime | None = None,
) -> None:
    with Session(engine) as session, session.begin():
        session.execute(
            update(ArchiveRun)
            .where(ArchiveRun.id == run_id)
            .values(
                status=status, finished_at=datetime.now(UTC), error=error[:2000] if error else None
            )
        )
        if last_run is not None:
            policy = get_active_policy(session=session)
            assert policy is not None
            policy.last_archive_run = last_run


def _read_chunk(
    session: Session, lo: datetime, hi: datetime
) -> list[tuple[int, datetime, str, Any]]:
    stmt = (
        select(
            MetricsSnapshot.id,
            MetricsSnapshot.timestamp,
            MetricsSnapshot.metric_type,
            MetricsSnapshot.metric_data,
        )
        .where(MetricsSnapshot.timestamp >= lo, MetricsSnapshot.timestamp < hi)
        .order_by(MetricsSnapshot.timestamp, MetricsSnapshot.id)
    )
    return [(i, ts, mt, doc) for i, ts, mt, doc in session.execute(stmt)]


def _archive(
    store: ArchiveStore, the_plan: Plan, rows: Sequence[tuple[int, datetime, str, Any]], stem: str
) -> list[Path]:
    if not the_plan.archive or not rows:
        return []
    _fault("before_archive_write")
    pending = store.write_pending(
        (
            ArchiveRow(i, ts, mt, doc if isinstance(doc, dict) else {"_invalid": doc})
            for i, ts, mt, doc in rows
        ),
        stem=stem,
    )
    _fault("after_archive_write")
    return pending


def _id_in(session: Session, batch: Sequence[int]) -> ColumnElement[bool]:
    """``id IN batch`` as one bound parameter where the backend allows (a 5000-value IN
    list costs more to compile and send than the delete itself)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        # An array literal: psycopg adapts a list of ints element by element, in Python.
        # Unnested once, in a subquery: as ``id = ANY(CAST(:ids AS INTEGER[]))`` the
        # text-to-array cast is not constant-folded and is parsed again for every row the
        # scan filters, which made deleting a chunk quadratic (a minute for 20 000 rows).
        array = "{" + ",".join(map(str, batch)) + "}"
        ids = func.unnest(cast(bindparam("ids", array, String), ARRAY(Integer)))
        return MetricsSnapshot.id.in_(select(ids))
    if dialect == "sqlite":
        listed = func.json_each(json.dumps(list(batch)))
        return MetricsSnapshot.id.in_(select(column("value")).select_from(listed))
    return MetricsSnapshot.id.in_(batch)


def _delete_ids(
    session: Session, ids: Sequence[int], lo: datetime | None = None, hi: datetime | None = None
) -> int:
    """Delete rows ``ids`` (all with ``lo <= timestamp < hi`` when given: the time range
    lets the database scan one index range and filter, rather than probe once per id)."""
    deleted = 0
    in_range = (
        []
        if lo is None or hi is None
        else [
            MetricsSnapshot.timestamp >= lo,
            MetricsSnapshot.timestamp < hi,
        ]
    )
    for start in range(0, len(ids), DELETE_BATCH):
        batch = ids[start : start + DELETE_BATCH]
        result = session.execute(
            delete(MetricsSnapshot)
            .where(*in_range, _id_in(session, batch))
            .execution_options(synchronize_session=False)
        )
        deleted += int(result.rowcount)  # type: ignore[attr-defined]
    if deleted != len(ids):
        msg = (
            f"Expected to delete {len(ids)} rows but {deleted} were there; "
            "another writer removed rows."
        )
        raise ArchiveVerificationError(msg)
    return deleted


def _commit_chunk(
    session: Session,
    store: ArchiveStore,
    run_id: int,
    pending: list[Path],
    chunk: ChunkResult,
) -> None:
    for path in pending:
        session.add(
            ArchiveFile(
                run_id=run_id,
                path=str(store.final_path(path)),
                pending_path=str(path),
                rows=store.num_rows(path),
                finalized=False,
            )
        )
    session.execute(
        update(ArchiveRun)
        .where(ArchiveRun.id == run_id)
        .values(
            rows_archived=ArchiveRun.rows_archived + chunk.rows_archived,
            rows_rolled_up=ArchiveRun.rows_rolled_up + chunk.rows_replaced,
            rollups_written=ArchiveRun.rollups_written + chunk.rollups_written,
            rows_deleted=ArchiveRun.rows_deleted + chunk.rows_deleted,
            chunks_done=ArchiveRun.chunks_done + 1,
            watermark=chunk.end,
        )
    )
    _fault("before_commit")


def _finalize(engine: Engine, store: ArchiveStore, pending: list[Path]) -> None:
    if not pending:
        return
    _fault("after_commit")
    store.finalize(pending)
    with Session(engine) as session, session.begin():
        session.execute(
            update(ArchiveFile)
            .where(ArchiveFile.pending_path.in_([str(p) for p in pending]))
            .values(finalized=True)
        )


def _stem(run_id: int, action: str, lo: datetime) -> str:
    return f"{lo:%Y%m%dT%H%M%S}-{action}-run{run_id}"


def _delete_chunk(
    engine: Engine, store: ArchiveStore, the_plan: Plan, run_id: int, lo: datetime, hi: datetime
) -> ChunkResult:
    chunk = ChunkResult("delete", lo, hi)
    with Session(engine) as session:
        rows = _read_chunk(session, lo, hi)
        session.rollback()
    chunk.rows_read = len(rows)
    pending = _archive(store, the_plan, rows, _stem(run_id, "delete", lo))
    chunk.rows_archived = len(rows) if pending else 0
    with Session(engine) as session, session.begin():
        chunk.rows_deleted = _delete_ids(session, [r[0] for r in rows], lo, hi)
        tier_log.mark(session.connection(), tier_log.spans_of(r[1:] for r in rows))
        _fault("after_delete")
        series.refresh_series(
            session.connection(),
            {(mt, host_of_any(doc)) for _, _, mt, doc in rows},
        )
        _commit_chunk(session, store, run_id, pending, chunk)
    _finalize(engine, store, pending)
    return chunk


class _Reader:
    """Columnar reads of the rollup chunks, each one started while the previous is worked on.

    Reading (the database renders the documents as text) and parsing overlap the previous
    chunk's rollup, archive write and transaction. A read changes nothing, so the crash
    protocol is unaffected; rows that arrive after a chunk was read stay for the next run,
    as they would without the read-ahead.
    """

    def __init__(self, engine: Engine, work: Sequence[tuple[str, datetime, datetime]]) -> None:
        self.engine = engine
        self.work = work
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive-read")
        self.reads: dict[int, Future[RawChunk | None]] = {}
        if work and work[0][0] == "rollup":  # never beside a delete: see chunk()
            self._start(0)

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        for future in self.reads.values():
            future.cancel()
        self.pool.shutdown(wait=True)

    def _start(self, index: int) -> None:
        rest = [i for i in range(index, len(self.work)) if self.work[i][0] == "rollup"]
        if rest and rest[0] not in self.reads:
            _, lo, hi = self.work[rest[0]]
            self.reads[rest[0]] = self.pool.submit(_read_columnar, self.engine, lo, hi)

    def chunk(self, index: int) -> RawChunk | None:
        """Chunk ``index`` as columns (``None``: read it the general way); starts the next.

        The first rollup chunk is read only once every retention delete has committed: its
        first bucket can start before the retention cut, and a read taken beside the delete
        would hold rows the delete removes.
        """
        if index not in self.reads:
            self._start(index)
        future = self.reads.pop(index, None)
        self._start(index + 1)
        return None if future is None else future.result()


def _read_columnar(engine: Engine, lo: datetime, hi: datetime) -> RawChunk | None:
    with Session(engine) as session:
        fast = read_raw_chunk(session.connection(), lo, hi)
        session.rollback()
    return fast


def _rollup_chunk(
    engine: Engine,
    store: ArchiveStore,
    the_plan: Plan,
    run_id: int,
    lo: datetime,
    hi: datetime,
    fast: RawChunk | None = None,
) -> ChunkResult:
    """Roll up ``[lo, hi)``: ``fast`` is the chunk already read as columns, if it could be."""
    chunk = ChunkResult("rollup", lo, hi)
    stem = _stem(run_id, "rollup", lo)
    write: Callable[[], list[Path]]
    if fast is not None and shadowed(fast.values):
        fast = None  # snapshots disagree on a document's shape: sort it out bucket by bucket
    if fast is not None:
        chunk.rows_read = len(fast)
        ids = fast.ids.tolist()
        rollups = fast.rollups(the_plan.interval)
        expected = fast.expected_counts(the_plan.interval)
        write = partial(_archive_tables, store, the_plan, fast, stem)
    else:
        with Session(engine) as session:
            rows = _read_chunk(session, lo, hi)
            session.rollback()
        chunk.rows_read = len(rows)
        replace = _rows_to_replace(rows, the_plan.interval)
        ids = [r[0] for r in replace]
        rollups = rollup_rows([(ts, mt, doc) for _, ts, mt, doc in replace], the_plan.interval)
        expected = _expected_counts(replace, the_plan.interval)
        write = partial(_archive, store, the_plan, replace, stem)
    if not ids:
        return chunk
    chunk.rows_replaced = len(ids)
    # The archive file is written while the database deletes, inserts and verifies; the
    # transaction commits only once the file is on disk (fsynced and recorded), so rows
    # are archived before their deletion takes effect, as the protocol requires.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive-write") as pool:
        archiving = pool.submit(write)
        with Session(engine) as session, session.begin():
            _delete_ids(session, ids, lo, hi)
            _fault("after_delete")
            new_ids = _insert_rollups(session, rollups)
            tier_log.mark(session.connection(), _bucket_spans(rollups, the_plan.interval))
            _fault("after_insert")
            _verify(session, new_ids, expected)
            series.refresh_series(
                session.connection(), {(mt, host) for host, mt, _ in expected}, rollups
            )
            chunk.rollups_written = len(new_ids)
            pending = archiving.result()
            chunk.rows_archived = len(ids) if pending else 0
            _commit_chunk(session, store, run_id, pending, chunk)
    _finalize(engine, store, pending)
    return chunk


def _bucket_spans(rollups: list[Row], width: Interval) -> list[tier_log.Span]:
    """The tier log spans of a rollup chunk: each rollup's bucket holds the rows it replaced."""
    end = width.timedelta - timedelta(microseconds=1)
    return [(mt, host_of(doc), ts, ts + end) for ts, mt, doc in rollups]


def _archive_tables(store: ArchiveStore, the_plan: Plan, fast: RawChunk, stem: str) -> list[Path]:
    """:func:`_archive` for a chunk read as columns."""
    if not the_plan.archive or not len(fast):
        return []
    _fault("before_archive_write")
    pending = store.write_pending_tables(fast.archive_tables(), stem=stem)
    _fault("after_archive_write")
    return pending


def _rows_to_replace(
    rows: list[tuple[int, datetime, str, Any]], target: Interval
) -> list[tuple[int, datetime, str, Any]]:
    """Rows of buckets holding anything that is not yet a single rollup at ``target``.

    A bucket that already is exactly one row rolled up to ``target`` (or coarser) is left
    alone; every other bucket is rolled up as a whole, merging any rollup already in it.
    """
    buckets: dict[tuple[str, str, datetime], list[tuple[int, datetime, str, Any]]] = defaultdict(
        list
    )
    for row in rows:
        _, ts, mt, doc = row
        host = host_of_any(doc)
        buckets[(host, mt, bucket_start(ts, target))].append(row)
    chosen: list[tuple[int, datetime, str, Any]] = []
    for members in buckets.values():
        if len(members) == 1 and _interval_of(members[0][3]) >= target.seconds:
            continue
        chosen.extend(m for m in members if isinstance(m[3], dict))
    chosen.sort(key=lambda r: (r[1], r[0]))
    return chosen


def _samples(doc: dict[str, Any]) -> tuple[int, dict[str, float]]:
    """Samples a row stands for, and each leaf's count (independent of the rollup code)."""
    meta = doc.get(ROLLUP_KEY)
    if not isinstance(meta, dict):
        return 1, dict.fromkeys(flatten(doc), 1.0)
    counts = flatten({"c": meta.get("count", {})})
    return int(meta.get("samples", 0)), {path[2:]: value for path, value in counts.items()}


BucketKey = tuple[str, str, datetime]


def _expected_counts(
    rows: Iterable[tuple[int, datetime, str, Any]], target: Interval
) -> dict[BucketKey, tuple[int, dict[str, float]]]:
    expected: dict[BucketKey, tuple[int, dict[str, float]]] = {}
    for _, ts, mt, doc in rows:
        key = (host_of(doc), mt, bucket_start(ts, target))
        samples, counts = _samples(doc)
        total, leaves = expected.get(key, (0, {}))
        for path, n in counts.items():
            leaves[path] = leaves.get(path, 0.0) + n
        expected[key] = (total + samples, leaves)
    for _, leaves in expected.values():  # left out of the rollup, see rollup_document
        for path in shadowed(leaves):
            del leaves[path]
    return expected


def _insert_rollups(session: Session, rollups: list[Row]) -> list[int]:
    if not rollups:
        return []
    result = session.execute(
        insert(MetricsSnapshot).returning(MetricsSnapshot.id),
        [{"timestamp": ts, "metric_type": mt, "metric_data": doc} for ts, mt, doc in rollups],
    )
    return [int(i) for i in result.scalars()]


def _verify(
    session: Session, new_ids: list[int], expected: dict[BucketKey, tuple[int, dict[str, float]]]
) -> None:
    """Read the rollups back and check samples and leaf counts per bucket."""
    found: dict[BucketKey, tuple[int, dict[str, float]]] = {}
    for start in range(0, len(new_ids), ID_BATCH):
        batch = new_ids[start : start + ID_BATCH]
        stmt = select(
            MetricsSnapshot.timestamp, MetricsSnapshot.metric_type, MetricsSnapshot.metric_data
        ).where(MetricsSnapshot.id.in_(batch))
        for ts, mt, doc in session.execute(stmt):
            key = (host_of(doc), mt, ts)
            if key in found:
                raise ArchiveVerificationError(f"Two rollup rows for one bucket {key}.")
            found[key] = _samples(doc)
    if set(found) != set(expected):
        missing = sorted(set(expected) - set(found))[:3]
        extra = sorted(set(found) - set(expected))[:3]
        raise ArchiveVerificationError(
            f"Rollup buckets differ: missing {missing}, unexpected {extra}."
        )
    for key, (samples, leaves) in expected.items():
        got_samples, got_leaves = found[key]
        if got_samples != samples or got_leaves != leaves:
            msg = (
                f"Rollup of bucket {key[2].isoformat()} (host {key[0]!r}) holds {got_samples} "
                f"samples but replaces {samples}; nothing was changed."
            )
            raise ArchiveVerificationError(msg)


def last_runs(engine: Engine, limit: int = 10) -> list[ArchiveRun]:
    """The most recent archive runs, newest first."""
    with Session(engine) as session:
        stmt = select(ArchiveRun).order_by(ArchiveRun.id.desc()).limit(limit)
        return list(session.execute(stmt).scalars())
