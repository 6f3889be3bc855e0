"""Bulk ingest on a real SQLite file and the real PostgreSQL: round trip, idempotence, errors."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from metrics_toolkit.collect.generator import generate_history
from metrics_toolkit.errors import DatabaseError, InvalidSnapshot
from metrics_toolkit.store.db import make_engine
from metrics_toolkit.store.ingest import (
    SnapshotRow,
    prepare_row,
    sqlite_timestamp,
    write_snapshots,
)
from metrics_toolkit.store.models import MetricsSnapshot
from tests.helpers import T0, make_snapshot


def rows_for(
    count: int, *, host: str = "h1", start: datetime = T0, step: int = 10
) -> list[SnapshotRow]:
    return [
        (
            start + timedelta(seconds=step * i),
            "aggregated",
            {"host": host, "cpu": {"usage_percent": (i * 7.3) % 100}, "seq": i},
        )
        for i in range(count)
    ]


def stored(engine: Engine) -> list[MetricsSnapshot]:
    with Session(engine) as session:
        return list(session.scalars(select(MetricsSnapshot).order_by(MetricsSnapshot.id)))


def count_rows(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count(MetricsSnapshot.id))) or 0)


def test_generated_rows_read_back_equal_through_the_orm(engine: Engine) -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    rows = [
        row
        for chunk in generate_history(start=start, end=start + timedelta(minutes=30), hosts=2)
        for row in chunk
    ]
    assert len(rows) > 300
    result = write_snapshots(engine, rows, batch_size=128)
    assert (result.inserted, result.duplicates) == (len(rows), 0)
    assert result.batches == math.ceil(len(rows) / 128)
    got = stored(engine)
    assert [(s.timestamp, s.metric_type, s.metric_data) for s in got] == rows
    assert all(s.timestamp.tzinfo is not None for s in got)


def test_timestamps_are_utc_and_range_queries_work(engine: Engine) -> None:
    plus_two = timezone(timedelta(hours=2))
    rows: list[SnapshotRow] = [
        (datetime(2026, 1, 5, 12, 0, 0, 123456, tzinfo=UTC), "aggregated", {"host": "a"}),
        (datetime(2026, 1, 5, 12, 0, 10), "aggregated", {"host": "a"}),  # naive = UTC
        (datetime(2026, 1, 5, 14, 0, 20, tzinfo=plus_two), "aggregated", {"host": "a"}),
    ]
    write_snapshots(engine, rows)
    expected = [
        datetime(2026, 1, 5, 12, 0, 0, 123456, tzinfo=UTC),
        datetime(2026, 1, 5, 12, 0, 10, tzinfo=UTC),
        datetime(2026, 1, 5, 12, 0, 20, tzinfo=UTC),
    ]
    assert [s.timestamp for s in stored(engine)] == expected
    with Session(engine) as session:
        in_range = session.scalars(
            select(MetricsSnapshot.timestamp)
            .where(MetricsSnapshot.timestamp >= expected[1])
            .where(MetricsSnapshot.timestamp < expected[2])
        ).all()
    assert in_range == [expected[1]]


def test_a_row_written_by_the_orm_is_a_duplicate_for_ingest(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        session.add(make_snapshot(T0, host="web-1", cpu__usage_percent=1.0))
    rows: list[SnapshotRow] = [
        (T0, "aggregated", {"host": "web-1", "cpu": {"usage_percent": 2.0}}),
        (T0, "aggregated", {"host": "web-2"}),
        (T0, "rollup", {"host": "web-1"}),
    ]
    result = write_snapshots(engine, rows)
    assert (result.inserted, result.duplicates) == (2, 1)
    first = stored(engine)[0]
    assert first.metric_data["cpu"]["usage_percent"] == 1.0  # the stored row was kept


def test_writing_twice_skips_every_row_the_second_time(engine: Engine) -> None:
    rows = rows_for(25)
    first = write_snapshots(engine, rows, batch_size=10)
    second = write_snapshots(engine, rows, batch_size=10)
    assert (first.inserted, first.duplicates, first.batches) == (25, 0, 3)
    assert (second.inserted, second.duplicates, second.batches) == (0, 25, 3)
    assert count_rows(engine) == 25


def test_mixed_batches_insert_only_the_new_rows_in_order(engine: Engine) -> None:
    rows = rows_for(200)
    write_snapshots(engine, rows[50:100], batch_size=1000)
    # Batches that are new, mixed, all duplicates, then new again (PostgreSQL switches
    # from COPY to the staging table and back).
    result = write_snapshots(engine, rows, batch_size=30)
    assert (result.inserted, result.duplicates) == (150, 50)
    got = stored(engine)
    assert len(got) == 200
    new_rows = got[50:]
    assert [s.metric_data["seq"] for s in new_rows] == [*range(50), *range(100, 200)]
    assert sorted(s.metric_data["seq"] for s in got) == list(range(200))


def test_repeats_inside_one_batch_are_counted_as_duplicates(engine: Engine) -> None:
    row = rows_for(1)[0]
    same_without_host_change = (row[0], row[1], {**row[2], "cpu": {"usage_percent": 99.0}})
    result = write_snapshots(engine, [row, same_without_host_change, row])
    assert (result.inserted, result.duplicates) == (1, 2)
    assert stored(engine)[0].metric_data == row[2]


def test_identity_is_host_type_and_timestamp(engine: Engine) -> None:
    rows: list[SnapshotRow] = [
        (T0, "aggregated", {"cpu": {"usage_percent": 1.0}}),  # no host: counts as ""
        (T0, "aggregated", {"host": "", "cpu": {"usage_percent": 2.0}}),
        (T0, "aggregated", {"host": "b"}),
        (T0 + timedelta(microseconds=1), "aggregated", {"host": "b"}),
        (T0, "other", {"host": "b"}),
    ]
    result = write_snapshots(engine, rows)
    assert (result.inserted, result.duplicates) == (4, 1)


def test_chunks_and_rows_are_streamed_and_progress_is_reported(engine: Engine) -> None:
    rows = rows_for(95)
    seen: list[int] = []

    def source() -> Iterator[Any]:
        yield rows[:40]  # a chunk
        yield from rows[40:50]  # single rows
        yield rows[50:]

    result = write_snapshots(engine, source(), batch_size=20, on_batch=seen.append)
    assert seen == [20, 20, 20, 20, 15]
    assert result.batches == 5
    assert result.rows == 95 == count_rows(engine)
    assert result.seconds > 0 and result.rows_per_second > 0


BAD_ROWS: list[tuple[object, str]] = [
    ("not a tuple", "expected a (timestamp, metric_type, metric_data) tuple"),
    ((T0, "aggregated"), "expected a (timestamp, metric_type, metric_data) tuple"),
    (("2026-01-01", "aggregated", {"host": "a"}), "timestamp must be a datetime"),
    ((T0, "", {"host": "a"}), "metric_type must be a non-empty string"),
    ((T0, "x" * 51, {"host": "a"}), "at most 50 characters"),
    ((T0, "aggregated", [1, 2]), "metric_data must be a dict"),
    ((T0, "aggregated", {"host": 7}), "must be a string label"),
    ((T0, "aggregated", {"host": "a", "v": math.nan}), "cannot be stored as JSON"),
    ((T0, "aggregated", {"host": "a", "v": math.inf}), "cannot be stored as JSON"),
    ((T0, "aggregated", {"host": "a", "v": {1, 2}}), "cannot be stored as JSON"),
    ((T0, "aggregated", {"host": "a\x00b"}), "NUL character"),
]


@pytest.mark.parametrize(("row", "message"), BAD_ROWS)
def test_prepare_row_rejects_malformed_rows(row: object, message: str) -> None:
    with pytest.raises(InvalidSnapshot, match="Snapshot #4") as caught:
        prepare_row(row, 4)
    assert message in str(caught.value)


def test_a_malformed_row_rejects_its_whole_batch_only(engine: Engine) -> None:
    rows: list[Any] = rows_for(7)
    rows[4] = (T0 + timedelta(hours=1), "aggregated", {"host": "a", "load": math.nan})
    with pytest.raises(InvalidSnapshot) as caught:
        write_snapshots(engine, rows, batch_size=3)
    message = str(caught.value)
    assert "Snapshot #5 at 2026-01-05T13:00:00+00:00" in message
    assert "3 earlier row(s) were" in message
    assert [s.metric_data["seq"] for s in stored(engine)] == [0, 1, 2]
    # Fixing the row and running again writes the rest; the first batch is skipped.
    rows[4] = (rows[4][0], "aggregated", {"host": "a", "load": 1.0})
    result = write_snapshots(engine, rows, batch_size=3)
    assert (result.inserted, result.duplicates) == (4, 3)


def test_the_first_row_may_be_malformed(engine: Engine) -> None:
    with pytest.raises(InvalidSnapshot, match="Nothing was written"):
        write_snapshots(engine, [(T0, "aggregated", "{}")])  # type: ignore[arg-type]
    assert count_rows(engine) == 0


def test_empty_input_writes_nothing(engine: Engine) -> None:
    empties: list[Iterable[Any]] = [[], iter([[], []])]
    for empty in empties:
        result = write_snapshots(engine, empty)
        assert (result.inserted, result.duplicates, result.batches) == (0, 0, 0)
    assert count_rows(engine) == 0


def test_sqlite_timestamp_matches_the_orm_layout() -> None:
    assert sqlite_timestamp(datetime(2026, 1, 5, 12, 0, tzinfo=UTC)) == "2026-01-05 12:00:00.000000"
    plus_one = timezone(timedelta(hours=1))
    assert sqlite_timestamp(datetime(2026, 1, 5, 12, 0, 0, 5, tzinfo=plus_one)) == (
        "2026-01-05 11:00:00.000005"
    )


def test_batch_size_must_be_positive(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with pytest.raises(ValueError, match="batch_size"):
        write_snapshots(engine, rows_for(1), batch_size=0)
    engine.dispose()


def test_unreachable_postgresql_is_a_database_error() -> None:
    engine = make_engine(
        "postgresql://postgres@127.0.0.1:1/nothing", connect_args={"connect_timeout": 2}
    )
    with pytest.raises(
        DatabaseError, match=r"Cannot write to postgresql://postgres@127\.0\.0\.1:1"
    ):
        write_snapshots(engine, rows_for(3))
    engine.dispose()


def test_missing_schema_is_a_database_error(tmp_path: Any) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(DatabaseError, match="no such table: metrics_snapshots") as caught:
        write_snapshots(engine, rows_for(3))
    assert "\n" not in str(caught.value)
    engine.dispose()
