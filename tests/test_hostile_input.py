"""Hostile and malformed snapshots through the write path, ``load_frame`` and the rollup rule.

The contract (README, "Input validation"):

- refused at write time, with a clear ``InvalidSnapshot`` naming the row and nothing of its
  batch written: non-finite numbers, numbers above 1e300 in magnitude, a non-string host,
  NUL characters, lone surrogates, documents nested too deep to serialise, and a
  malformed ``"_rollup"``;
- stored, and skipped by every reader: leaves that are not numbers (numeric strings,
  booleans, null, lists, objects); the ``count`` statistic counts only the numbers;
- a repeated identity (host, type, timestamp) is skipped and counted as a duplicate.

Every property compares the library with the independent oracle of
:mod:`tests.test_hostile_support`, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from metrics_toolkit.archive.runner import run_archive
from metrics_toolkit.documents import join_path
from metrics_toolkit.errors import InvalidSnapshot
from metrics_toolkit.frames.load import load_frame
from metrics_toolkit.rollup.frame import resample_stats
from metrics_toolkit.rollup.output import to_snapshot_docs
from metrics_toolkit.rollup.rule import rollup_rows
from metrics_toolkit.store.db import make_engine
from metrics_toolkit.store.ingest import prepare_row, write_snapshots
from tests.test_hostile_support import (
    HOSTILE,
    KEYS,
    PATHS,
    SCRIPT,
    T0,
    WIDTHS,
    Row,
    bucket_of,
    check_bucket,
    expected_buckets,
    expected_values,
    hostile_histories,
    put,
    stored_rows,
)

STATS = ("count", "sum", "min", "max", "mean")


def _empty(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM metrics_snapshots"))


def _by_key(frame: pd.DataFrame) -> dict[tuple[str, pd.Timestamp], Any]:
    return {(str(host), stamp): row for (host, stamp), row in frame.iterrows()}


# --------------------------------------------------------------------------------------
# The write path: what is refused, what is stored


def _doc(**leaves: Any) -> dict[str, Any]:
    return {"host": "h", "cpu": leaves}


def _deep(levels: int) -> dict[str, Any]:
    doc: dict[str, Any] = {"x": 1.0}
    for _ in range(levels):
        doc = {"n": doc}
    return {"host": "h", "deep": doc}


REFUSED = [
    (_doc(usage_percent=math.nan), "cannot be stored as JSON"),
    (_doc(usage_percent=math.inf), "cannot be stored as JSON"),
    (_doc(usage_percent=-math.inf), "cannot be stored as JSON"),
    (_doc(usage_percent=1e308), "at most 1e300"),
    (_doc(usage_percent=-1.5e301), "at most 1e300"),
    (_doc(usage_percent=10**400), "at most 1e300"),
    (_doc(usage_percent=10**5000), "cannot be stored as JSON"),  # beyond Python's int->str
    ({"host": 7, "cpu": {"usage_percent": 1.0}}, "must be a string label"),
    ({"host": 10**5000}, "must be a string label"),
    ({"host": ["a"]}, "must be a string label"),
    ({"host": "h\x00"}, "NUL character"),
    ({"host": "h", "k\x00": 1.0}, "NUL character"),
    ({"host": "h\ud800"}, "lone UTF-16 surrogate"),
    ({"host": "h", "\udfff": {"x": 1.0}}, "lone UTF-16 surrogate"),
    (_deep(5000), "cannot be stored as JSON"),
    ({"host": "h", "_rollup": "junk"}, "'_rollup' is reserved"),
    ({"host": "h", "_rollup": {"interval": "7min", "samples": 1}}, "'_rollup.interval'"),
    ({"host": "h", "_rollup": {"interval": "1h", "samples": -1}}, "'_rollup.samples'"),
    ({"host": "h", "_rollup": {"interval": "1h", "samples": 2, "sum": 3}}, "'_rollup.sum'"),
    ({"host": "h", "x": object()}, "cannot be stored as JSON"),
]


@pytest.mark.parametrize(("doc", "reason"), REFUSED, ids=range(len(REFUSED)))
def test_refused_at_write_time_with_a_clear_error(
    engine: Engine, doc: dict[str, Any], reason: str
) -> None:
    good = (T0, "aggregated", {"host": "h", "cpu": {"usage_percent": 1.0}})
    with pytest.raises(InvalidSnapshot) as raised:
        write_snapshots(engine, [good, (T0 + timedelta(seconds=10), "aggregated", doc)])
    message = str(raised.value)
    assert reason in message and message.startswith("Snapshot #2 at "), message
    assert "Nothing was written" in message and "\n" not in message
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM metrics_snapshots")).scalar() == 0


def test_the_limits_are_inclusive_and_emoji_are_text() -> None:
    for value in (1e300, -1e300, 10**300, 2**64, 5e-324):
        prepare_row((T0, "aggregated", _doc(usage_percent=value)))
    prepare_row((T0, "aggregated", {"host": "😀 \U0001f4c8", "e+300": "1" * 400}))


def test_stored_junk_is_skipped_and_counted_out(engine: Engine) -> None:
    junk: list[Any] = ["12", "n/a", True, None, [1], {"v": 2.0}, "1e308"]
    rows = [
        (T0 + timedelta(seconds=10 * i), "aggregated", _doc(usage_percent=v))
        for i, v in enumerate([*junk, 4.0, 6.0])
    ]
    result = write_snapshots(engine, [*rows, rows[0], rows[-1]])
    assert (result.inserted, result.duplicates) == (len(rows), 2)
    values = load_frame(engine, metrics=["cpu.usage_percent"])["cpu.usage_percent"]
    assert values.isna().sum() == len(junk) and values.dropna().tolist() == [4.0, 6.0]
    for method in ("auto", "pandas"):
        frame = load_frame(
            engine, metrics=["cpu.usage_percent"], interval="1h", stats=STATS, method=method
        )
        assert frame["cpu.usage_percent"].iloc[0].to_dict() == {
            "count": 2.0, "sum": 10.0, "min": 4.0, "max": 6.0, "mean": 5.0,
        }  # fmt: skip


# --------------------------------------------------------------------------------------
# load_frame against the oracle


@HOSTILE
@given(
    rows=hostile_histories(),
    width=st.sampled_from(WIDTHS),
    method=st.sampled_from(["auto", "pandas"]),
)
def test_load_frame_gives_the_numbers_of_the_clean_subset(
    engine: Engine, rows: list[Row], width: str, method: str
) -> None:
    _empty(engine)
    kept = stored_rows(rows)
    result = write_snapshots(engine, rows)
    assert (result.inserted, result.duplicates) == (len(kept), len(rows) - len(kept))

    full = load_frame(engine, metrics=list(PATHS), by_host=True)
    expected = expected_values(kept)
    actual = _by_key(full)
    assert actual.keys() == expected.keys()
    for key, values in expected.items():
        row = actual[key]
        for path in PATHS:
            if path in values:
                assert row[path] == values[path], (key, path)
            else:
                assert math.isnan(row[path]), (key, path, row[path])

    frame = load_frame(
        engine, metrics=list(PATHS), interval=width, stats=STATS, by_host=True, method=method
    )
    buckets = expected_buckets(kept, width)
    actual = _by_key(frame)
    assert actual.keys() <= buckets.keys()
    for key, per_path in buckets.items():
        for path in PATHS:
            if path in per_path:
                check_bucket(actual[key][path].to_dict(), per_path[path], (key, path))
            elif key in actual:  # rows without a number there: no sample, no value
                assert actual[key][path]["count"] in (0.0,) or math.isnan(
                    actual[key][path]["count"]
                )
                assert math.isnan(actual[key][path]["mean"])


# --------------------------------------------------------------------------------------
# The rollup rule, pure Python and pandas, on documents not even the writer would accept


def _rolled(out: list[Row]) -> dict[tuple[str, pd.Timestamp], dict[str, Any]]:
    found = {}
    for stamp, _, doc in out:
        host = doc.get("host")
        found[host if isinstance(host, str) else "", pd.Timestamp(stamp)] = doc["_rollup"]
    return found


def _stat(meta: dict[str, Any], stat: str, keys: tuple[str, ...]) -> Any:
    node: Any = meta.get(stat, {})
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node


NOT_STORABLE = ("12", True, None, [1, 2], math.nan, math.inf, -math.inf, 10**400)


@HOSTILE
@given(rows=hostile_histories(junk=NOT_STORABLE), width=st.sampled_from(WIDTHS))
def test_rollup_rule_gives_the_numbers_of_the_clean_subset(rows: list[Row], width: str) -> None:
    rows = stored_rows(rows)  # the rule keeps repeated identities: it is not the writer
    buckets = expected_buckets(rows, width)
    for out in (rollup_rows(rows, width), to_snapshot_docs(resample_stats(rows, width))):
        rolled = _rolled(out)
        assert rolled.keys() == buckets.keys()
        for key, per_path in buckets.items():
            meta = rolled[key]
            assert meta["interval"] == width
            assert meta["samples"] == sum(
                1 for ts, _, d in rows if (_host(d), bucket_of(ts, width)) == key
            )
            for keys, path in zip(KEYS, PATHS, strict=True):
                if path not in per_path:
                    assert _stat(meta, "count", keys) in (None, 0), (key, path)
                    continue
                found = {s: _stat(meta, s, keys) for s in ("count", "sum", "min", "max")}
                found["mean"] = found["sum"] / found["count"]
                check_bucket(found, per_path[path], (key, path))


def _host(doc: dict[str, Any]) -> str:
    host = doc.get("host")
    return host if isinstance(host, str) else ""


def test_rollup_rule_errors_are_clear() -> None:
    t = T0
    overflow: list[Row] = [(t + timedelta(seconds=i), "aggregated", _doc(x=1e308)) for i in (1, 2)]
    junk_rollup: list[Row] = [(t, "aggregated", {"host": "h", "_rollup": "junk"})]
    for rows, fragment in (
        (overflow, "overflow"),
        (junk_rollup, "'_rollup' must be an object"),
    ):
        with pytest.raises(InvalidSnapshot, match=fragment):
            rollup_rows(rows, "1h")


def test_a_leaf_that_is_also_a_parent_is_left_out_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One bucket cannot hold ``cpu.usage_percent`` as a number and as an object."""
    shapes: list[Row] = [
        (T0, "aggregated", {"host": "h", "cpu": {"usage_percent": 5.0}}),
        (
            T0 + timedelta(seconds=10),
            "aggregated",
            {"host": "h", "cpu": {"usage_percent": {"v": 1}}},
        ),
    ]
    ((_, _, doc),) = rollup_rows(shapes, "1h")
    assert doc["cpu"]["usage_percent"] == 5.0
    assert doc["_rollup"]["samples"] == 2 and doc["_rollup"]["count"]["cpu"] == {"usage_percent": 1}
    assert "cpu.usage_percent.v" in caplog.text and "shape" in caplog.text


# --------------------------------------------------------------------------------------
# Known gap: keys SQLite's JSON paths cannot name


def test_keys_with_double_quotes_or_backslashes_on_sqlite(sqlite_url: str) -> None:
    keys = ('say "hi"', "back\\slash", "tab\there")
    path = join_path(keys)
    rows: list[Row] = []
    for i in range(6):
        doc: dict[str, Any] = {"host": "h"}
        put(doc, keys, float(i))
        rows.append((T0 + timedelta(seconds=10 * i), "aggregated", doc))
    engine = make_engine(sqlite_url)
    try:
        write_snapshots(engine, rows)
        pandas = load_frame(engine, metrics=[path], interval="1h", stats=STATS, method="pandas")
        assert pandas[path].iloc[0].to_dict()["count"] == 6.0
        full = load_frame(engine, metrics=[path])
        assert full[path].tolist() == [float(i) for i in range(6)]
        sql = load_frame(engine, metrics=[path], interval="1h", stats=STATS, method="auto")
        assert sql[path].iloc[0].to_dict() == pandas[path].iloc[0].to_dict()
    finally:
        engine.dispose()


def test_hostile_keys_reach_sql_only_as_parameters(engine: Engine) -> None:
    evil = "x'); DROP TABLE metrics_snapshots; --"
    doc: dict[str, Any] = {"host": SCRIPT}
    put(doc, (evil, "v"), 3.0)
    write_snapshots(engine, [(T0, "aggregated", doc)])
    path = join_path((evil, "v"))
    for interval in (None, "1h"):
        frame = load_frame(engine, metrics=[path], interval=interval, stats=("mean",))
        assert frame[path].tolist() == [3.0]
    assert load_frame(engine, host=SCRIPT)[path].tolist() == [3.0]  # every metric listed


def test_far_timestamps_round_trip_and_bucket(engine: Engine) -> None:
    stamps = [
        datetime(1900, 1, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2262, 4, 12, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 0, tzinfo=UTC),
    ]
    write_snapshots(engine, [(s, "aggregated", _doc(usage_percent=1.0)) for s in stamps])
    full = load_frame(engine, metrics=["cpu.usage_percent"])
    assert [t.to_pydatetime() for t in full.index] == stamps
    for method in ("auto", "pandas"):
        daily = load_frame(
            engine, metrics=["cpu.usage_percent"], interval="1D", stats=("count",), method=method
        )
        assert [str(t.date()) for t in daily.index] == [
            "1900-01-01", "1969-12-31", "1970-01-01", "2262-04-12", "9999-12-31",
        ]  # fmt: skip
        assert daily["cpu.usage_percent"].tolist() == [1.0] * 5


def test_one_conflicting_snapshot_does_not_block_the_archive(
    sqlite_url: str, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_url)
    try:
        rows: list[Row] = [
            (T0, "aggregated", {"host": "h", "cpu": {"usage_percent": 5.0}}),
            (
                T0 + timedelta(seconds=10),
                "aggregated",
                {"host": "h", "cpu": {"usage_percent": {"v": 1.0}}},
            ),
        ]
        later = T0 + timedelta(hours=2)
        rows += [
            (later + timedelta(seconds=10 * i), "aggregated", _doc(usage_percent=float(i)))
            for i in range(5)
        ]
        write_snapshots(engine, rows)
        run_archive(engine, now=T0 + timedelta(days=5), archive_path=tmp_path / "archive")
        frame = load_frame(engine, metrics=["cpu.usage_percent"], interval="1h", stats=("count",))
        assert frame["cpu.usage_percent"].tolist() == [1.0, 5.0]  # every number kept
        with engine.connect() as connection:
            rolled = connection.execute(
                text("SELECT count(*) FROM metrics_snapshots WHERE metric_data LIKE '%_rollup%'")
            ).scalar()
        assert rolled >= 1  # the clean bucket was rolled up
    finally:
        engine.dispose()
