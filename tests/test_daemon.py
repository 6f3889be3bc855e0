"""The collection daemon: real subprocesses against SQLite and PostgreSQL, outages, signals."""

from __future__ import annotations

import logging
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from metrics_toolkit.catalog import is_declared, lookup
from metrics_toolkit.collect.collectors import Collector
from metrics_toolkit.collect.daemon import (
    CollectionDaemon,
    DaemonSettings,
    load_settings,
    next_grid_point,
    parse_duration,
)
from metrics_toolkit.collect.spool import Spool
from metrics_toolkit.errors import InvalidArgument, InvalidInterval, SpoolError
from metrics_toolkit.intervals import Interval
from metrics_toolkit.store import config as config_store
from metrics_toolkit.store.db import make_engine, resolve_url, session_scope
from metrics_toolkit.store.models import MetricsSnapshot
from tests.conftest import postgres_test_url

ONE_SECOND = timedelta(seconds=1)


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "metrics_toolkit", *args]


def run_cli(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli(*args), cwd=cwd, capture_output=True, text=True, timeout=timeout)


def stored(url: str) -> list[MetricsSnapshot]:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return list(
                session.scalars(select(MetricsSnapshot).order_by(MetricsSnapshot.timestamp))
            )
    finally:
        engine.dispose()


def assert_consecutive_ticks(rows: list[MetricsSnapshot], count: int) -> None:
    stamps = [row.timestamp for row in rows]
    assert len(stamps) == count, stamps
    assert len(set(stamps)) == count, "a snapshot was stored twice"
    assert all(s.microsecond == 0 and s.utcoffset() == timedelta(0) for s in stamps)
    assert [b - a for a, b in pairwise(stamps)] == [ONE_SECOND] * (count - 1)


# --- pure pieces ------------------------------------------------------------------------


def test_next_grid_point_is_on_the_epoch_grid() -> None:
    ten = Interval.parse("10s")
    assert next_grid_point(1_000_000_003.2, ten) == 1_000_000_010
    assert next_grid_point(1_000_000_010.0, ten) == 1_000_000_010
    assert next_grid_point(7_201.0, Interval.parse("1h")) == 10_800


@pytest.mark.parametrize(
    ("text_", "seconds"),
    [("90s", 90), ("15min", 900), ("1h", 3600), ("2D", 172800), ("1.5h", 5400)],
)
def test_parse_duration(text_: str, seconds: float) -> None:
    assert parse_duration(text_).total_seconds() == seconds


@pytest.mark.parametrize("bad", ["", "0s", "-5s", "5x", "h", "1 hour"])
def test_parse_duration_rejects(bad: str) -> None:
    with pytest.raises(InvalidArgument, match="Invalid duration"):
        parse_duration(bad)


def test_settings_come_from_arguments_then_config_then_defaults(
    sqlite_url: str, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_url)
    with session_scope(engine) as session:
        config_store.set_config(session=session, key="collector.interval", value="5s")
        config_store.set_config(session=session, key="spool.path", value=str(tmp_path / "s.db"))
        config_store.set_config(session=session, key="collector.enabled", value=["cpu"])
    engine.dispose()
    from_config = load_settings(sqlite_url)
    assert from_config.interval == Interval(5)
    assert from_config.spool_path == tmp_path / "s.db"
    assert from_config.collectors == ("cpu",)
    assert from_config.batch_size == 10  # the declared default
    given = load_settings(sqlite_url, interval="1s", collectors="memory,cpu", batch_size=3)
    assert (given.interval, given.collectors, given.batch_size) == (
        Interval(1),
        ("memory", "cpu"),
        3,
    )


def test_settings_use_defaults_when_the_database_is_down(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="metrics_toolkit.collect.daemon"):
        settings = load_settings("postgresql://postgres@127.0.0.1:1/none")
    assert settings.interval == Interval(10) and settings.spool_path == Path("spool.db")
    assert "Config not readable" in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"interval": "0s"}, InvalidInterval, "must be positive"),
        ({"interval": "abc"}, InvalidInterval, "Invalid interval 'abc'"),
        ({"count": 0}, InvalidArgument, "--count must be at least 1"),
        ({"count": 2, "duration": "1h"}, InvalidArgument, "not both"),
        ({"batch_size": 0}, InvalidArgument, "batch size"),
    ],
)
def test_settings_reject_bad_values(
    tmp_path: Path, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        load_settings(f"sqlite:///{tmp_path / 'm.db'}", read_config=False, **kwargs)


# --- the loop in process ------------------------------------------------------------------


def settings_for(url: str, tmp_path: Path, **changes: Any) -> DaemonSettings:
    base = load_settings(
        url,
        interval="1s",
        collectors="cpu,memory",
        host="in-process",
        spool_path=tmp_path / "spool.db",
        batch_size=10,
        spool_max_rows=1000,
        read_config=False,
    )
    return replace(base, **changes)


def test_two_collectors_cannot_share_a_spool(sqlite_url: str, tmp_path: Path) -> None:
    settings = settings_for(sqlite_url, tmp_path)
    with CollectionDaemon(settings), pytest.raises(SpoolError, match="in use by another"):
        CollectionDaemon(settings)
    with CollectionDaemon(settings):  # released after the first one closed
        pass


class SlowSecondTick(Collector):
    """The real collector, but its second collection takes 1.7 s (a slow disk, say)."""

    calls = 0

    def collect(self) -> dict[str, Any]:
        self.calls += 1
        if self.calls == 2:
            time.sleep(1.7)
        return super().collect()


def test_a_slow_tick_skips_slots_instead_of_bursting(
    sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(sqlite_url, tmp_path, count=3)
    collector = SlowSecondTick(["cpu"], host="slow")
    with caplog.at_level(logging.WARNING, logger="metrics_toolkit.collect.daemon"):
        stats = CollectionDaemon(settings, collector=collector).run()
    assert stats.ticks == 3 and stats.skipped_slots >= 1
    stamps = [row.timestamp for row in stored(sqlite_url)]
    assert all(stamp.microsecond == 0 for stamp in stamps)  # still on the grid
    assert stamps[2] - stamps[0] == ONE_SECOND * (2 + stats.skipped_slots)  # no burst
    assert "skipping" in caplog.text


def test_a_full_spool_drops_the_oldest_and_says_so_in_the_documents(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    down = "postgresql://postgres@127.0.0.1:1/none"  # nothing listens on port 1
    settings = settings_for(down, tmp_path, count=4, spool_max_rows=2, final_flush_seconds=1.0)
    with caplog.at_level(logging.WARNING):
        stats = CollectionDaemon(settings).run()
    assert (stats.ticks, stats.dropped, stats.left_in_spool, stats.outages) == (4, 2, 2, 1)
    with Spool(tmp_path / "spool.db", max_rows=2) as spool:
        docs = [entry.metric_data for entry in spool.peek(10)]
        assert spool.dropped() == 2
    assert [doc["collector"] for doc in docs] == [
        {"spool_depth_count": 2, "spool_dropped_count": 0},
        {"spool_depth_count": 2, "spool_dropped_count": 1},
    ]
    assert "is full (max 2 snapshots): dropped the 1 oldest" in caplog.text
    assert "Connection refused" in caplog.text and "Traceback" not in caplog.text
    assert "stay in the spool" in caplog.text
    for leaf in ("collector.spool_depth_count", "collector.spool_dropped_count"):
        assert is_declared(leaf) and lookup(leaf).unit == "count"


# --- real subprocesses ---------------------------------------------------------------------


def test_collect_writes_one_snapshot_per_tick(db_url: str, tmp_path: Path) -> None:
    result = run_cli(
        "--database-url",
        db_url,
        "collect",
        "--interval",
        "1s",
        "--count",
        "3",
        "--host",
        "daemon-test",
        "--spool",
        str(tmp_path / "spool.db"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "Collected 3 snapshot(s); wrote 3 (0 already stored); 0 left" in result.stdout
    assert "Traceback" not in result.stderr
    rows = stored(db_url)
    assert_consecutive_ticks(rows, 3)
    for row in rows:
        assert row.metric_data["host"] == "daemon-test"
        assert row.metric_type == "aggregated"
        assert row.metric_data["collector"]["spool_depth_count"] == 0
        assert "cpu" in row.metric_data and "memory" in row.metric_data
    # Rates need a previous tick: the first snapshot has none, the later ones do.
    assert "ctx_switches_per_s" not in rows[0].metric_data["cpu"]
    assert "ctx_switches_per_s" in rows[1].metric_data["cpu"]


@pytest.fixture
def missing_postgres(postgres_url: str) -> Iterator[str]:
    """The URL of a PostgreSQL database that does not exist (yet); dropped afterwards."""
    name = f"{make_url(postgres_test_url()).database}_outage"
    url = resolve_url(postgres_url).set(database=name)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    drop()
    yield url.render_as_string(hide_password=False)
    drop()
    admin.dispose()


def spooled(path: Path) -> int:
    """Rows waiting in a spool file that a running daemon owns (read-only peek)."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
            return int(connection.execute("SELECT count(*) FROM spool").fetchone()[0])
    except sqlite3.Error:
        return 0


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the daemon"
        time.sleep(0.1)


def create_database(url: str) -> None:
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


@pytest.mark.postgres
def test_outage_every_tick_is_stored_exactly_once(missing_postgres: str, tmp_path: Path) -> None:
    args = ("--database-url", missing_postgres, "collect", "--interval", "1s", "--count", "8")
    spool = ("--spool", str(tmp_path / "spool.db"), "--host", "outage")
    process = subprocess.Popen(
        cli(*args, *spool),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # The daemon spools its first ticks while the database does not exist. A snapshot
    # records the spool depth before it joins the spool, so the third one records 2.
    wait_for(lambda: spooled(tmp_path / "spool.db") >= 3)
    create_database(missing_postgres)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert_consecutive_ticks(stored(missing_postgres), 8)
    assert "Collected 8 snapshot(s); wrote 8 (0 already stored); 0 left" in out
    assert f'database "{make_url(missing_postgres).database}" does not exist' in err
    assert "reachable again after" in err and "Replayed" in err
    assert "Traceback" not in err
    depths = [row.metric_data["collector"]["spool_depth_count"] for row in stored(missing_postgres)]
    assert max(depths) >= 2  # some ticks really waited in the spool


@pytest.mark.postgres
def test_sigterm_during_an_outage_keeps_the_spool_for_the_next_start(
    missing_postgres: str, tmp_path: Path
) -> None:
    spool = ("--spool", str(tmp_path / "spool.db"), "--host", "restart")
    args = ("--database-url", missing_postgres, "collect", "--interval", "1s", *spool)
    process = subprocess.Popen(
        cli(*args),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: spooled(tmp_path / "spool.db") >= 2)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    with Spool(tmp_path / "spool.db") as left:
        waiting = left.depth()
    assert waiting >= 2 and f"{waiting} left in the spool" in out
    assert "stay in the spool" in err
    create_database(missing_postgres)
    again = run_cli(*args, "--count", "2", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    # Leftovers are replayed before the first tick (or with it, if it is due at once).
    assert re.search(
        rf"Replayed ({waiting}|{waiting + 1}) snapshot\(s\) from the spool", again.stderr
    )
    rows = stored(missing_postgres)
    assert len(rows) == waiting + 2
    assert len({row.timestamp for row in rows}) == len(rows)
    assert [row.timestamp for row in rows][:waiting] == sorted(row.timestamp for row in rows)[
        :waiting
    ]


def count_rows(url: str) -> int:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return int(session.scalar(select(func.count(MetricsSnapshot.id))) or 0)
    except Exception:  # the schema may not be there yet
        return 0
    finally:
        engine.dispose()


def test_sigterm_finishes_the_tick_flushes_and_exits_0(sqlite_url: str, tmp_path: Path) -> None:
    spool = tmp_path / "spool.db"
    args = ("--database-url", sqlite_url, "collect", "--interval", "1s", "--spool", str(spool))
    process = subprocess.Popen(
        cli(*args),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: count_rows(sqlite_url) >= 2)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    rows = stored(sqlite_url)
    assert len(rows) >= 2
    assert f"Collected {len(rows)} snapshot(s); wrote {len(rows)}" in out
    assert_consecutive_ticks(rows, len(rows))
    with Spool(spool) as left:
        assert left.depth() == 0


def test_sigint_behaves_like_sigterm(sqlite_url: str, tmp_path: Path) -> None:
    args = ("--database-url", sqlite_url, "collect", "--interval", "1s")
    process = subprocess.Popen(
        cli(*args, "--spool", str(tmp_path / "spool.db")),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: count_rows(sqlite_url) >= 1)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Collected" in out and "Traceback" not in err
