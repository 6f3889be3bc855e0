"""Shared data for the explorer, browser and notebook tests: a small generated history.

Kept small on purpose (a few days at 5-minute ticks, two hosts: about 1,700 rows), so the
suites stay fast; the generator makes it realistic (daily cycles, incidents, a gap).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from metrics_toolkit.collect.generator import count_history, generate_history
from metrics_toolkit.store.db import make_engine, session_scope
from metrics_toolkit.store.ingest import write_snapshots
from metrics_toolkit.store.users import add_user

USER = "alice"
PASSWORD = "correct horse battery"


def history_end() -> datetime:
    """The current minute (the explorer's presets end at the last complete bucket before it)."""
    return datetime.now(UTC).replace(second=0, microsecond=0)


def fill(
    url: str,
    *,
    days: float = 3,
    interval: str = "5min",
    hosts: int = 2,
    end: datetime | None = None,
    user: bool = True,
) -> tuple[datetime, datetime]:
    """Write a generated history of ``days`` ending at ``end`` (default: now); add alice."""
    stop = end or history_end()
    start = stop - timedelta(days=days)
    engine = make_engine(url)
    try:
        write_snapshots(
            engine,
            generate_history(start=start, end=stop, interval=interval, hosts=hosts, seed=11),
        )
        if user:
            add_account(engine)
    finally:
        engine.dispose()
    return start, stop


def add_account(engine: Engine, username: str = USER, password: str = PASSWORD) -> None:
    with session_scope(engine) as session:
        add_user(session=session, username=username, password=password)


def test_fill_writes_the_generated_rows(sqlite_url: str) -> None:
    start, end = fill(sqlite_url, days=1, interval="15min", user=False)
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as connection:
            stored = connection.exec_driver_sql("SELECT count(*) FROM metrics_snapshots").scalar()
    finally:
        engine.dispose()
    assert stored == count_history(start=start, end=end, interval="15min", hosts=2)
