"""The write side of the rollup tiers (docs/design.md §9), on SQLite and PostgreSQL: every
writer marks the tier log in its own transaction, a writer racing the refresh leaves its
entry behind, and under random interleavings of every kind of write the INVARIANT holds:
every tier row whose (metric_type, host, span) overlaps no log entry equals
``rollup_rows`` of the current snapshots of its bucket (to 1e-9; samples exact)."""

from __future__ import annotations

import math
import threading
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, delete, select
from sqlalchemy.orm import Session

from metrics_toolkit.archive.restore import restore
from metrics_toolkit.archive.runner import run_archive
from metrics_toolkit.archive.tiers import (
    TIER_WIDTHS,
    RefreshResult,
    pending,
    refresh,
    refresh_entries,
)
from metrics_toolkit.cli import main
from metrics_toolkit.documents import host_of
from metrics_toolkit.intervals import Interval, as_utc
from metrics_toolkit.rollup.rule import rollup_rows
from metrics_toolkit.store.db import make_engine
from metrics_toolkit.store.ingest import write_snapshots
from metrics_toolkit.store.locks import JobBusy, exclusive
from metrics_toolkit.store.models import (
    ArchiveFile,
    ArchiveRun,
    MetricsSnapshot,
    MetricsTier,
    TierDirty,
)
from metrics_toolkit.store.policies import update_policy

T0 = datetime(2026, 11, 1, tzinfo=UTC)
SPAN = timedelta(days=3)


def _same(mine: Any, theirs: Any, where: str) -> None:
    if isinstance(mine, dict) and isinstance(theirs, dict):
        assert sorted(mine) == sorted(theirs), f"{where}: keys differ"
        for key in mine:
            _same(mine[key], theirs[key], f"{where}.{key}")
    elif isinstance(mine, list) and isinstance(theirs, list):
        assert len(mine) == len(theirs), where
        for i, (a, b) in enumerate(zip(mine, theirs, strict=True)):
            _same(a, b, f"{where}[{i}]")
    elif isinstance(mine, float) or isinstance(theirs, float):
        assert isinstance(mine, int | float) and isinstance(theirs, int | float), where
        assert math.isclose(mine, theirs, rel_tol=1e-9, abs_tol=1e-9), f"{where}: {mine} {theirs}"
    else:
        assert mine == theirs and type(mine) is type(theirs), f"{where}: {mine!r} != {theirs!r}"


def check_invariant(connection: Connection, *, clean: bool = False) -> int:
    """Assert the INVARIANT; ``clean``: the log is empty too. Returns the tier rows checked."""
    snapshots = [
        (as_utc(ts), mt, doc)
        for ts, mt, doc in connection.execute(
            select(MetricsSnapshot.timestamp, MetricsSnapshot.metric_type,
                   MetricsSnapshot.metric_data)
            .order_by(MetricsSnapshot.timestamp, MetricsSnapshot.id)
        )
    ]  # fmt: skip
    log: dict[tuple[str, str], list[tuple[datetime, datetime]]] = defaultdict(list)
    for entry in connection.execute(select(TierDirty)):
        log[entry.metric_type, entry.host].append((as_utc(entry.first_ts), as_utc(entry.last_ts)))
    if clean:
        assert not log, dict(log)
    checked = 0
    for width in TIER_WIDTHS:
        step = timedelta(seconds=width)
        rule = {(mt, host_of(d), ts): d for ts, mt, d in rollup_rows(snapshots, Interval(width))}
        stored = {
            (mt, host, as_utc(ts)): (samples, doc)
            for mt, host, ts, samples, doc in connection.execute(
                select(MetricsTier.metric_type, MetricsTier.host, MetricsTier.timestamp,
                       MetricsTier.samples, MetricsTier.metric_data)
                .where(MetricsTier.width_seconds == width)
            )
        }  # fmt: skip
        for key in rule.keys() | stored.keys():
            mt, host, ts = key
            if any(lo < ts + step and ts <= hi for lo, hi in log.get((mt, host), ())):
                continue  # stale, and marked so: readers read the snapshots there
            assert key in stored, f"{width} s: no tier row for {key}"
            assert key in rule, f"{width} s: a tier row without snapshots {key}"
            samples, doc = stored[key]
            _same(doc, rule[key], f"{width} s {key}")
            assert samples == rule[key]["_rollup"]["samples"]
            checked += 1
    return checked


def _doc(host: str, value: float, *, with_mem: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = {"host": host, "cpu": {"usage_percent": value}}
    if with_mem:
        doc["memory"] = {"used_bytes": value * 1000 + 1}
    return doc


def _dirty(engine: Engine) -> list[tuple[str, str, int]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(TierDirty.metric_type, TierDirty.host, TierDirty.seq).order_by(
                TierDirty.metric_type, TierDirty.host, TierDirty.day
            )
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_orm_inserts_updates_and_deletes_are_marked(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        session.add_all(
            MetricsSnapshot(timestamp=T0 + timedelta(seconds=90 * i), metric_type="aggregated",
                            metric_data=_doc("a", float(i)))
            for i in range(20)
        )  # fmt: skip
    assert [(mt, host) for mt, host, _ in _dirty(engine)] == [("aggregated", "a")]
    refresh(engine)
    with engine.connect() as connection:
        assert check_invariant(connection, clean=True) > 0
    # A changed document, a row moved to another host and day, a deleted row.
    with Session(engine) as session, session.begin():
        rows = session.scalars(select(MetricsSnapshot).order_by(MetricsSnapshot.id)).all()
        rows[3].metric_data = _doc("a", 55.0)
        rows[4].metric_data = _doc("b", 1.0)
        rows[4].timestamp = T0 + timedelta(days=1, hours=2)
        session.delete(rows[5])
    assert {(host, seq > 1) for _, host, seq in _dirty(engine)} >= {("a", False), ("b", False)}
    with engine.connect() as connection:
        check_invariant(connection)  # the old tier rows are stale, and marked
    refresh(engine)
    with engine.connect() as connection:
        assert check_invariant(connection, clean=True) > 0
    # Rows changed without their old values loaded (expired after a commit) mark both places.
    with Session(engine) as session:
        rows = session.scalars(select(MetricsSnapshot).order_by(MetricsSnapshot.id)).all()
        session.commit()  # expires them
        rows[0].timestamp = T0 + timedelta(days=2)
        rows[1].metric_data = _doc("c", 3.0)
        session.commit()
    with engine.connect() as connection:
        check_invariant(connection)
    refresh(engine)
    with engine.connect() as connection:
        assert check_invariant(connection, clean=True) > 0


def test_a_writer_committing_while_refresh_runs_leaves_its_entry(engine: Engine) -> None:
    write_snapshots(
        engine, [(T0 + timedelta(seconds=30 * i), "aggregated", _doc("a", i)) for i in range(50)]
    )
    result = RefreshResult()
    with engine.connect() as refresher, refresher.begin():
        work = pending(refresher)  # the refresh has read the log...
        assert len(work) == 1
        # ...and another connection writes into the same day and commits.
        late = (T0 + timedelta(seconds=45), "aggregated", _doc("a", 99.0))
        assert write_snapshots(engine, [late]).inserted == 1
        refresh_entries(refresher, work[0], result)
    assert result.left == 1
    assert [(mt, host) for mt, host, _ in _dirty(engine)] == [("aggregated", "a")]
    with engine.connect() as connection:
        check_invariant(connection)
    again = refresh(engine)
    assert again.entries == 1 and again.left == 0
    with engine.connect() as connection:
        check_invariant(connection, clean=True)


def test_writers_racing_a_refresh_leave_the_log_right(engine: Engine) -> None:
    rows = [
        (T0 + timedelta(minutes=40 * i), "aggregated", _doc(host, float(i % 11)))
        for i in range(6 * 36)
        for host in ("a", "b")
    ]
    write_snapshots(engine, rows)
    errors: list[BaseException] = []
    written: list[int] = []

    def writer() -> None:  # late rows into every day, on its own connections, as it runs
        try:
            for i in range(30):
                late = T0 + timedelta(days=i % 6, minutes=7 * i, seconds=3)
                written.append(
                    write_snapshots(engine, [(late, "aggregated", _doc("a", 90.0 + i))]).inserted
                )
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    thread = threading.Thread(target=writer)
    thread.start()
    refresh(engine)
    thread.join()
    assert not errors and sum(written) == 30
    with engine.connect() as connection:
        check_invariant(connection)  # whatever landed after the refresh read it is marked
    refresh(engine)
    with engine.connect() as connection:
        check_invariant(connection, clean=True)


def test_one_refresh_at_a_time(engine: Engine) -> None:
    write_snapshots(engine, [(T0, "aggregated", _doc("a", 1.0))])
    with exclusive(engine, "tiers"), pytest.raises(JobBusy):
        refresh(engine, wait_seconds=0)
    assert _dirty(engine)  # nothing was taken from the log
    assert refresh(engine).entries == 1


def test_an_interrupted_refresh_resumes(engine: Engine) -> None:
    rows = [
        (T0 + timedelta(hours=5 * i), "aggregated", _doc(host, float(i)))
        for i in range(15)
        for host in ("a", "b")
    ]
    write_snapshots(engine, rows)

    class Stop(Exception):
        pass

    def stop_after_two(done: int, total: int) -> None:
        if done == 2:
            raise Stop

    with pytest.raises(Stop):
        refresh(engine, progress=stop_after_two)
    with engine.connect() as connection:
        left = len(connection.execute(select(TierDirty)).all())
        check_invariant(connection)
    assert left > 0
    assert refresh(engine).entries == left
    with engine.connect() as connection:
        check_invariant(connection, clean=True)


def _log_size(engine: Engine) -> int:
    with engine.connect() as connection:
        return len(connection.execute(select(TierDirty)).all())


def test_the_commands_users_run_refresh_the_tiers(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    try:
        _reset(engine)
        rows = [(T0 + timedelta(minutes=30 * i), "aggregated", _doc("a", float(i)))
                for i in range(150)]  # fmt: skip
        write_snapshots(engine, rows)
        assert _log_size(engine) > 0
        base = ["--database-url", db_url]
        dry = CliRunner().invoke(main, [*base, "archive", "run", "--dry-run", "--now",
                                        (T0 + SPAN).isoformat()])  # fmt: skip
        assert dry.exit_code == 0, dry.output
        assert _log_size(engine) > 0  # a dry run writes no tiers
        upgrade = CliRunner().invoke(main, [*base, "db", "upgrade"])
        assert upgrade.exit_code == 0, upgrade.output
        assert "Rollup tiers:" in upgrade.stdout and _log_size(engine) == 0
        with engine.connect() as connection:
            check_invariant(connection, clean=True)
        now = ["--now", (T0 + SPAN).isoformat()]
        run = CliRunner().invoke(
            main, [*base, "archive", "run", "--archive-path", str(tmp_path), *now]
        )
        assert run.exit_code == 0, run.output
        assert "Rollup tiers:" in run.stdout and _log_size(engine) == 0
        with engine.connect() as connection:
            check_invariant(connection, clean=True)
    finally:
        engine.dispose()


def _reset(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in (ArchiveFile, ArchiveRun, MetricsSnapshot, MetricsTier, TierDirty):
            connection.execute(delete(table))
    with Session(engine) as session, session.begin():
        update_policy(
            session=session,
            retention_days=2,
            downsample_after_days=1,
            downsample_interval="1h",
            archive_enabled=True,
        )


_moment = st.integers(0, int(SPAN.total_seconds()) - 1).map(lambda s: T0 + timedelta(seconds=s))
_row = st.tuples(_moment, st.sampled_from(["a", "b"]), st.integers(0, 9), st.booleans())
_step = st.one_of(
    st.tuples(st.just("ingest"), st.lists(_row, min_size=1, max_size=25)),
    st.tuples(st.just("late"), st.lists(_row, min_size=1, max_size=4)),
    st.tuples(st.just("orm"), st.lists(_row, min_size=1, max_size=4)),
    st.tuples(st.just("archive"), st.integers(0, 36)),  # hours after the data's end
    st.tuples(st.just("restore"), st.integers(0, 2)),
    st.tuples(st.just("refresh"), st.just(0)),
)


def _apply(engine: Engine, archive: Path, step: tuple[str, Any]) -> None:
    kind, arg = step
    if kind in ("ingest", "late"):
        # "late": rows into the first hours, buckets the tiers (or the archive) already hold.
        def shift(t: datetime) -> datetime:
            return T0 + (t - T0) / 12 if kind == "late" else t

        write_snapshots(
            engine,
            [(shift(t), "aggregated", _doc(h, v + 0.25, with_mem=m)) for t, h, v, m in arg],
        )
    elif kind == "orm":
        with Session(engine) as session, session.begin():
            taken = set(session.execute(select(MetricsSnapshot.timestamp)).scalars())
            for t, h, v, m in arg:
                moment = t + timedelta(microseconds=500_000)  # never a bulk row's time
                if moment.replace(tzinfo=None) in taken or moment in taken:
                    continue
                taken.add(moment)
                session.add(
                    MetricsSnapshot(timestamp=moment, metric_type="aggregated",
                                    metric_data=_doc(h, float(v), with_mem=m))
                )  # fmt: skip
    elif kind == "archive":
        # Rolls up rows older than a day, deletes those older than two (retention).
        now = T0 + SPAN + timedelta(hours=arg)
        run_archive(engine, now=now, archive_path=archive, tiers=arg % 2 == 0)
    elif kind == "restore":
        start = T0 + timedelta(days=arg)
        restore(engine, start=start, end=start + timedelta(days=1), archive_path=archive)
    else:
        refresh(engine)


def test_archive_rollups_retention_deletes_and_restores_are_marked(
    engine: Engine, tmp_path: Path
) -> None:
    _reset(engine)
    rows = [(T0 + timedelta(minutes=17 * i), "aggregated", _doc(h, float(i % 7)))
            for i in range(250) for h in ("a", "b")]  # fmt: skip
    write_snapshots(engine, rows)
    refresh(engine)
    # Rolls up the second day to 1 h, deletes the first (retention), no tier refresh.
    run_archive(engine, now=T0 + SPAN, archive_path=tmp_path, tiers=False)
    with engine.connect() as connection:
        assert connection.execute(select(TierDirty)).first() is not None
        check_invariant(connection)
    refresh(engine)
    with engine.connect() as connection:
        check_invariant(connection, clean=True)
    # Restoring the second day replaces its rollups by the raw rows again.
    result = restore(engine, start=T0 + timedelta(days=1), end=T0 + timedelta(days=2),
                     archive_path=tmp_path)  # fmt: skip
    assert result.rollups_replaced > 0
    with engine.connect() as connection:
        check_invariant(connection)
    refresh(engine)
    with engine.connect() as connection:
        check_invariant(connection, clean=True)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    first=st.lists(_row, min_size=5, max_size=40),
    steps=st.lists(_step, min_size=1, max_size=6),
)
def test_every_interleaving_keeps_the_invariant(
    engine: Engine, tmp_path: Path, first: list[Any], steps: list[tuple[str, Any]]
) -> None:
    _reset(engine)
    archive = tmp_path / uuid.uuid4().hex
    archive.mkdir()
    _apply(engine, archive, ("ingest", first))
    refresh(engine)  # tiers to go stale: every later write must mark what it changes
    for step in steps:
        _apply(engine, archive, step)
        with engine.connect() as connection:
            check_invariant(connection)
    refresh(engine)
    with engine.connect() as connection:
        check_invariant(connection, clean=True)
