"""The bucket start: one Python definition, and each SQL form tied to it on its database.

:func:`metrics_toolkit.intervals.bucket_start` is the rule; ``bucket_start_ticks`` is the
same floor on integer ticks (Python ints and numpy arrays), and ``rollup/sql.py`` holds the
SQL forms (PostgreSQL ``date_bin``, SQLite floor division). Here each SQL form runs over real
stored rows and must give, row by row, the start the Python function gives.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Engine

from metrics_toolkit.intervals import (
    EPOCH,
    bucket_start,
    bucket_start_ticks,
    epoch_microseconds,
    parse_interval,
)
from metrics_toolkit.rollup.arrays import bucket_starts
from metrics_toolkit.rollup.sql import _BIN, _SQLITE_BUCKET
from metrics_toolkit.store.db import is_sqlite
from metrics_toolkit.store.ingest import write_snapshots

WIDTHS = ("1s", "10s", "5min", "1h", "12h", "1D", "7D")
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def awkward_times() -> list[datetime]:
    """Boundaries, a microsecond either side of them, times before 1970, random ones."""
    rng = random.Random(12)
    times = [EPOCH, T0, datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)]
    for base in (T0, EPOCH, datetime(1969, 12, 25, 6, tzinfo=UTC)):
        for width in WIDTHS:
            step = parse_interval(width).timedelta
            times += [base + step, base + step - timedelta(microseconds=1)]
            times.append(base - step + timedelta(microseconds=1))
    times += [T0 + timedelta(microseconds=rng.randrange(-(10**14), 10**14)) for _ in range(40)]
    return sorted(set(times))


def test_bucket_start_is_the_floor_of_epoch_time() -> None:
    """The definition checked from outside: start <= t < start + width, start a multiple of
    the width since the epoch, for every awkward time (before 1970 too)."""
    for width in WIDTHS:
        step = parse_interval(width).timedelta
        for moment in awkward_times():
            start = bucket_start(moment, width)
            assert start <= moment < start + step
            assert (start - EPOCH) % step == timedelta(0)
            assert bucket_start(moment.replace(tzinfo=None), width) == start  # naive is UTC


def test_the_tick_and_array_forms_agree_with_bucket_start() -> None:
    times = awkward_times()
    micros = np.array([epoch_microseconds(t) for t in times], dtype=np.int64)
    for width in WIDTHS:
        width_us = parse_interval(width).seconds * 1_000_000
        expected = [epoch_microseconds(bucket_start(t, width)) for t in times]
        assert [bucket_start_ticks(int(m), width_us) for m in micros] == expected
        assert bucket_start_ticks(micros, width_us).tolist() == expected
        assert bucket_starts(micros, width, unit="us").tolist() == expected


def test_each_sql_form_agrees_with_bucket_start(engine: Engine) -> None:
    """The SQL over stored rows (the column as each database stores it) row by row."""
    times = awkward_times()
    rows = [(t, "aggregated", {"host": "h", "i": i}) for i, t in enumerate(times)]
    write_snapshots(engine, rows)
    for width in WIDTHS:
        seconds = parse_interval(width).seconds
        if is_sqlite(engine):
            sql = f"SELECT json_extract(metric_data, '$.i'), {_SQLITE_BUCKET} * 1000000"
            params: dict[str, object] = {"width": seconds}
        else:
            sql = (
                f"SELECT (metric_data ->> 'i')::int, (extract(epoch FROM {_BIN}) * 1000000)::bigint"
            )
            params = {"width": f"{seconds} seconds"}
        with engine.connect() as connection:
            found = dict(connection.exec_driver_sql(f"{sql} FROM metrics_snapshots", params).all())
        expected = {i: epoch_microseconds(bucket_start(t, width)) for i, t in enumerate(times)}
        wrong = {
            times[i].isoformat(): (found[i], expected[i])
            for i in expected
            if found[i] != expected[i]
        }
        assert len(found) == len(times)
        assert not wrong, f"{width}: (sql, python) differ at {wrong}"


@pytest.mark.parametrize("width", ["0s", "7min"])
def test_widths_outside_the_rule_are_refused(width: str) -> None:
    with pytest.raises(ValueError, match="Invalid interval"):
        bucket_start(T0, width)
