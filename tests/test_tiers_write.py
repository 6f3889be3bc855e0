"""The write side of the rollup tiers (docs/design.md §9), on SQLite and PostgreSQL: every
writer marks the tier log in its own transaction, a writer racing the refresh leaves its
entry behind, and under random interleavings of every kind of write the INVARIANT holds:
every tier row whose (metric_type, host, span) overlaps no log entry equals
``rollup_rows`` of the current snapshots of its bucket (to 1e-9; samples exact)."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from metrics_toolkit.archive.restore import restore
from metrics_toolkit.archive.runner import run_archive
from metrics_toolkit.archive.tiers import RefreshResult, pending, refresh, refresh_entries
from metrics_toolkit.cli import main
from metrics_toolkit.store.db import make_engine
from metrics_toolkit.store.ingest import write_snapshots
from metrics_toolkit.store.locks import JobBusy, exclusive
from metrics_toolkit.store.models import MetricsSnapshot, TierDirty
from tests.tier_helpers import (
    ROW,
    SPAN,
    T0,
    apply_step,
    check_invariant,
    make_doc,
    reset,
    step_sequences,
)


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
                            metric_data=make_doc("a", float(i)))
            for i in range(20)
        )  # fmt: skip
    assert [(mt, host) for mt, host, _ in _dirty(engine)] == [("aggregated", "a")]
    refresh(engine)
    with engine.connect() as connection:
        assert check_invariant(connection, clean=True) > 0
    # A changed document, a row moved to another host and day, a deleted row.
    with Session(engine) as session, session.begin():
        rows = session.scalars(select(MetricsSnapshot).order_by(MetricsSnapshot.id)).all()
        rows[3].metric_data = make_doc("a", 55.0)
        rows[4].metric_data = make_doc("b", 1.0)
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
        rows[1].metric_data = make_doc("c", 3.0)
        session.commit()
    with engine.connect() as connection:
        check_invariant(connection)
    refresh(engine)
    with engine.connect() as connection:
        assert check_invariant(connection, clean=True) > 0
    # A deletion alone (nothing else written that day) marks its host and day.
    with Session(engine) as session, session.begin():
        victim = session.scalars(
            select(MetricsSnapshot)
            .where(MetricsSnapshot.timestamp < T0 + timedelta(days=1))
            .order_by(MetricsSnapshot.id)
        ).first()
        assert victim is not None
        host = victim.metric_data["host"]
        session.delete(victim)
    assert [(mt, h) for mt, h, _ in _dirty(engine)] == [("aggregated", host)]
    with engine.connect() as connection:
        check_invariant(connection)
    refresh(engine)
    with engine.connect() as connection:
        assert check_invariant(connection, clean=True) > 0


def test_a_writer_committing_while_refresh_runs_leaves_its_entry(engine: Engine) -> None:
    write_snapshots(
        engine,
        [(T0 + timedelta(seconds=30 * i), "aggregated", make_doc("a", i)) for i in range(50)],
    )
    result = RefreshResult()
    with engine.connect() as refresher, refresher.begin():
        work = pending(refresher)  # the refresh has read the log...
        assert len(work) == 1
        # ...and another connection writes into the same day and commits.
        late = (T0 + timedelta(seconds=45), "aggregated", make_doc("a", 99.0))
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
        (T0 + timedelta(minutes=40 * i), "aggregated", make_doc(host, float(i % 11)))
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
                    write_snapshots(
                        engine, [(late, "aggregated", make_doc("a", 90.0 + i))]
                    ).inserted
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
    write_snapshots(engine, [(T0, "aggregated", make_doc("a", 1.0))])
    with exclusive(engine, "tiers"), pytest.raises(JobBusy):
        refresh(engine, wait_seconds=0)
    assert _dirty(engine)  # nothing was taken from the log
    assert refresh(engine).entries == 1


def test_an_interrupted_refresh_resumes(engine: Engine) -> None:
    rows = [
        (T0 + timedelta(hours=5 * i), "aggregated", make_doc(host, float(i)))
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
        reset(engine)
        rows = [(T0 + timedelta(minutes=30 * i), "aggregated", make_doc("a", float(i)))
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


def test_archive_rollups_retention_deletes_and_restores_are_marked(
    engine: Engine, tmp_path: Path
) -> None:
    reset(engine)
    rows = [(T0 + timedelta(minutes=17 * i), "aggregated", make_doc(h, float(i % 7)))
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
    first=st.lists(ROW, min_size=5, max_size=40),
    steps=step_sequences(max_size=6),
)
def test_every_interleaving_keeps_the_invariant(
    engine: Engine, tmp_path: Path, first: list[Any], steps: list[tuple[str, Any]]
) -> None:
    reset(engine)
    archive = tmp_path / uuid.uuid4().hex
    archive.mkdir()
    apply_step(engine, archive, ("ingest", first))
    refresh(engine)  # tiers to go stale: every later write must mark what it changes
    for step in steps:
        apply_step(engine, archive, step)
        with engine.connect() as connection:
            check_invariant(connection)
    refresh(engine)
    with engine.connect() as connection:
        check_invariant(connection, clean=True)
