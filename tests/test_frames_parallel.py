"""Full-resolution reads on PostgreSQL in time slices over several connections.

The parts import one snapshot, so together they equal one query: same rows, same order,
nothing doubled at a slice boundary, even while another connection writes.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from metrics_toolkit.frames import parallel as pg_parallel
from metrics_toolkit.frames.load import load_frame
from metrics_toolkit.rollup.sql import Filters
from metrics_toolkit.store.db import make_engine
from tests.conftest import empty_postgres
from tests.helpers import T0, make_snapshot

pytestmark = pytest.mark.postgres
METRICS = ["cpu.usage_percent", "memory.used_bytes"]
ROWS = 2400


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[Engine]:
    empty_postgres(postgres_url)
    engine = make_engine(postgres_url)
    with Session(engine) as session, session.begin():
        session.add_all(
            make_snapshot(
                T0 + timedelta(seconds=7 * i),
                host=f"h{i % 3}",
                cpu__usage_percent=(i * 37) % 101 + 0.25,
                memory__used_bytes=1_000_000 + i,
            )
            for i in range(ROWS)
        )
        # a non-number: the optimistic cast fails in one part, which then reads carefully
        session.add(make_snapshot(T0 + timedelta(seconds=7 * 300 + 1), cpu__usage_percent="n/a"))
    with engine.connect() as connection:
        connection.execute(text("ANALYZE metrics_snapshots"))
        connection.commit()
    yield engine
    engine.dispose()


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pg_parallel, "MIN_ROWS_PER_PART", 500)


def serial(engine: Engine, monkeypatch: pytest.MonkeyPatch, **kwargs: object) -> pd.DataFrame:
    with monkeypatch.context() as patch:
        patch.setattr(pg_parallel, "MAX_PARTS", 1)
        return load_frame(engine, metrics=METRICS, **kwargs)  # type: ignore[arg-type]


@pytest.mark.usefixtures("small_parts")
def test_the_range_is_cut_into_consecutive_slices(pg_engine: Engine) -> None:
    with pg_engine.connect() as connection:
        parts = pg_parallel.plan_parts(
            connection, Filters("aggregated", None, None, None), lambda: (T0, T0 + timedelta(1))
        )
    assert len(parts) == pg_parallel.MAX_PARTS
    assert parts[0].start is None and parts[-1].end is None
    for before, after in itertools.pairwise(parts):
        assert before.end == after.start


@pytest.mark.usefixtures("small_parts")
@pytest.mark.parametrize("by_host", [False, True])
def test_parts_read_exactly_what_one_query_reads(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch, by_host: bool
) -> None:
    calls: list[int] = []
    real = pg_parallel.read_parts

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(len(args[1]))  # type: ignore[arg-type]
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("metrics_toolkit.frames.load.read_parts", counting)
    parallel = load_frame(pg_engine, metrics=METRICS, by_host=by_host)
    assert calls and calls[-1] > 1, "the read was not split"
    expected = serial(pg_engine, monkeypatch, by_host=by_host)
    pd.testing.assert_frame_equal(parallel, expected)
    assert len(parallel) == ROWS + 1
    assert parallel["cpu.usage_percent"].isna().sum() == 1  # "n/a" skipped, not doubled
    # several hosts: a (host, timestamp) index either way, rows in time order
    assert parallel.index.names == ["host", "timestamp"]
    assert parallel.index.get_level_values("timestamp").is_monotonic_increasing


@pytest.mark.usefixtures("small_parts")
def test_a_window_is_split_too(pg_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    window = (T0 + timedelta(minutes=30), T0 + timedelta(hours=4))
    parallel = load_frame(pg_engine, *window, metrics=METRICS)
    pd.testing.assert_frame_equal(
        parallel, serial(pg_engine, monkeypatch, start=window[0], end=window[1])
    )
    stamps = parallel.index.get_level_values("timestamp")  # several hosts: a host level
    assert stamps.min() >= window[0] and stamps.max() < window[1]


@pytest.mark.usefixtures("small_parts")
def test_a_transaction_with_its_own_writes_reads_them(pg_engine: Engine) -> None:
    """An imported snapshot would miss uncommitted writes: such a caller is read serially."""
    late = T0 + timedelta(days=2)
    with Session(pg_engine) as session:
        session.add(make_snapshot(late, cpu__usage_percent=99.5))
        session.flush()
        frame = load_frame(session, metrics=METRICS)
        session.rollback()
    assert frame.xs(late, level="timestamp")["cpu.usage_percent"].tolist() == [99.5]
    assert len(frame) == ROWS + 2


@pytest.mark.usefixtures("small_parts")
def test_rows_committed_during_the_read_are_not_half_seen(pg_engine: Engine) -> None:
    """Writers commit while the parts are read: the frame is one consistent snapshot."""
    stop = threading.Event()

    def write() -> None:
        batch = 0
        while not stop.is_set():  # each batch spans the whole range, so every slice boundary
            batch += 1
            with Session(pg_engine) as session, session.begin():
                session.add_all(
                    make_snapshot(
                        T0 + timedelta(seconds=336 * k, milliseconds=batch),
                        host="late",
                        cpu__usage_percent=1.0,
                    )
                    for k in range(50)
                )

    writer = threading.Thread(target=write)
    writer.start()
    try:
        sizes = []
        for _ in range(5):
            frame = load_frame(pg_engine, metrics=METRICS)
            late = (frame["cpu.usage_percent"] == 1.0).sum()
            sizes.append((len(frame), late))
    finally:
        stop.set()
        writer.join()
    for size, late in sizes:
        assert size == ROWS + 1 + late
        assert late % 50 == 0, "a batch committed by the writer was seen in part only"
