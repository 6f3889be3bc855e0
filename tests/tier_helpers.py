"""What the rollup-tier tests share (docs/design.md §9).

- The write side's INVARIANT (:func:`check_invariant`): every tier row whose (metric_type,
  host, span) overlaps no log entry equals ``rollup_rows`` of the current snapshots of its
  bucket (to 1e-9; samples exact), and the tier blocks hold exactly the statistics of the
  tier rows, every one (:func:`check_blocks`).
- Random steps over three days of a few hosts (:data:`STEP`; sequences of them by
  :func:`step_sequences`), applied by :func:`apply_step` after :func:`reset`: bulk ingest,
  late rows, ORM writes and deletions, archive runs (rollups and retention deletes, the
  archive in a directory), a policy change applied at once, restores of a day, refreshes.
- The reader's comparison (:func:`assert_same`): ``load_frame(..., tiers=True)`` ==
  ``tiers=False`` == the pandas rule, to 1e-9.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, delete, func, select
from sqlalchemy.orm import Session

from metrics_toolkit.archive.restore import restore
from metrics_toolkit.archive.runner import run_archive
from metrics_toolkit.archive.tiers import TIER_WIDTHS, refresh
from metrics_toolkit.documents import flatten, host_of, host_of_any
from metrics_toolkit.frames.load import load_frame
from metrics_toolkit.intervals import Interval, as_utc
from metrics_toolkit.rollup.rule import rollup_rows
from metrics_toolkit.store.ingest import write_snapshots
from metrics_toolkit.store.models import (
    ArchiveFile,
    ArchiveRun,
    MetricsSnapshot,
    MetricsTier,
    TierBlock,
    TierDirty,
)
from metrics_toolkit.store.policies import update_policy

# ----------------------------------------------------------------- the write side

T0 = datetime(2026, 11, 1, tzinfo=UTC)  # UTC midnight: every tier width is aligned here
SPAN = timedelta(days=3)
HOSTS = ("a", "b", "c")
#: The leaves of :func:`make_doc`.
METRICS = ("cpu.usage_percent", "memory.used_bytes")


def same(mine: Any, theirs: Any, where: str) -> None:
    """Two documents are equal: floats to 1e-9, everything else exactly (and same type)."""
    if isinstance(mine, dict) and isinstance(theirs, dict):
        assert sorted(mine) == sorted(theirs), f"{where}: keys differ"
        for key in mine:
            same(mine[key], theirs[key], f"{where}.{key}")
    elif isinstance(mine, list) and isinstance(theirs, list):
        assert len(mine) == len(theirs), where
        for i, (a, b) in enumerate(zip(mine, theirs, strict=True)):
            same(a, b, f"{where}[{i}]")
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
            same(doc, rule[key], f"{width} s {key}")
            assert samples == rule[key]["_rollup"]["samples"]
            checked += 1
        check_blocks(connection, width, stored)
    return checked


_BLOCK_STATS = {"count": "counts", "sum": "sums", "min": "mins", "max": "maxes"}


def check_blocks(
    connection: Connection,
    width: int,
    stored: dict[tuple[str, str, datetime], tuple[int, dict[str, Any]]],
) -> None:
    """The blocks of ``width`` hold each stored tier row's samples and its leaves' count,
    sum, min and max exactly, and nothing else (NaN where there is no row or value)."""
    n = 86400 // width
    expected: dict[tuple[str, str, str, datetime], dict[str, np.ndarray]] = {}
    for (mt, host, ts), (samples, doc) in stored.items():
        day = ts.replace(hour=0, minute=0, second=0, microsecond=0)
        slot = int((ts - day).total_seconds()) // width
        cells = {("_rollup", "counts"): float(samples)}
        for stat, column in _BLOCK_STATS.items():
            for path, value in flatten(doc["_rollup"].get(stat, {})).items():
                cells[path, column] = value
        for (path, column), value in cells.items():
            arrays = expected.setdefault(
                (mt, host, path, day), {c: np.full(n, np.nan) for c in _BLOCK_STATS.values()}
            )
            arrays[column][slot] = value
    found: dict[tuple[str, str, str, datetime], dict[str, np.ndarray]] = {}
    columns = [getattr(TierBlock, c) for c in _BLOCK_STATS.values()]
    rows = connection.execute(
        select(TierBlock.metric_type, TierBlock.host, TierBlock.path, TierBlock.day, *columns)
        .where(TierBlock.width_seconds == width)
    )  # fmt: skip
    for mt, host, path, day, *data in rows:
        arrays = {
            c: np.full(n, np.nan) if blob is None else np.frombuffer(blob, dtype="<f8")
            for c, blob in zip(_BLOCK_STATS.values(), data, strict=True)
        }
        found[mt, host, path, as_utc(day)] = arrays
    for (mt, host, path, day), arrays in found.items():  # NULL counts: the samples'
        if path != "_rollup" and np.isnan(arrays["counts"]).all():
            arrays["counts"] = found[mt, host, "_rollup", day]["counts"]
    assert sorted(found) == sorted(expected), f"{width} s: blocks of other keys"
    for key, arrays in expected.items():
        for column, values in arrays.items():
            assert np.array_equal(found[key][column], values, equal_nan=True), (width, key, column)


def make_doc(host: str, value: float, *, with_mem: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = {"host": host, "cpu": {"usage_percent": value}}
    if with_mem:
        doc["memory"] = {"used_bytes": value * 1000 + 1}
    return doc


def reset(engine: Engine) -> None:
    """No snapshots, tiers (rows and blocks), log or archive runs; the policy rolls up to
    1 h after a day and deletes after two, archiving first."""
    with engine.begin() as connection:
        for table in (ArchiveFile, ArchiveRun, MetricsSnapshot, MetricsTier, TierBlock, TierDirty):
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
#: (time, host, value, with the memory leaf)
ROW = st.tuples(_moment, st.sampled_from(HOSTS), st.integers(0, 9), st.booleans())
_policy = st.tuples(
    st.integers(1, 3),  # retention days
    st.integers(0, 2),  # downsample after days (cut below the retention)
    st.sampled_from(["5min", "30min", "1h", "2h", "1D"]),
    st.integers(0, 36),  # hours after the data's end
)
# The day: the second and third hold the rollups of the first archive runs (listed first,
# Hypothesis draws them most); the first is deleted (retention) and restored as new rows.
_hours = st.integers(0, 29).map(lambda h: 30 - h)
_restore = st.tuples(st.just("restore"), st.sampled_from([1, 2, 0]))
STEP = st.one_of(
    st.tuples(st.just("ingest"), st.lists(ROW, min_size=1, max_size=25)),
    st.tuples(st.just("late"), st.lists(ROW, min_size=1, max_size=4)),
    st.tuples(st.just("orm"), st.lists(ROW, min_size=1, max_size=4)),
    # hours from the moment on, 30 the simplest: short spans of the sparse rows hit none
    st.tuples(st.just("delete"), st.tuples(st.sampled_from(HOSTS), _moment, _hours)),
    st.tuples(st.just("archive"), st.integers(0, 36)),  # hours after the data's end
    st.tuples(st.just("retention"), _policy),
    _restore,
    st.tuples(st.just("refresh"), st.just(0)),
)


@st.composite
def step_sequences(draw: st.DrawFn, max_size: int) -> list[tuple[str, Any]]:
    """Up to ``max_size`` steps of :data:`STEP` and, somewhere among them, an archive run
    that refreshes the tiers and a later restore: a restore changes what the tiers hold only
    after that, and uniform steps seldom draw that order."""
    drawn = draw(st.lists(STEP, max_size=max_size - 2))
    at = draw(st.integers(0, len(drawn)))
    drawn.insert(at, ("archive", 2 * draw(st.integers(0, 18))))  # even hours: tiers=True
    drawn.insert(draw(st.integers(at + 1, len(drawn))), draw(_restore))
    return drawn


def apply_step(engine: Engine, archive: Path, step: tuple[str, Any]) -> None:
    """One step of :data:`STEP` (after :func:`reset`); ``archive``: the archive directory."""
    kind, arg = step
    if kind in ("ingest", "late"):
        # "late": rows into the first hours, buckets the tiers (or the archive) already hold.
        def shift(t: datetime) -> datetime:
            return T0 + (t - T0) / 12 if kind == "late" else t

        write_snapshots(
            engine,
            [(shift(t), "aggregated", make_doc(h, v + 0.25, with_mem=m)) for t, h, v, m in arg],
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
                                    metric_data=make_doc(h, float(v), with_mem=m))
                )  # fmt: skip
    elif kind == "delete":
        # A user deleting a host's rows over some hours through the ORM (raw or rolled up).
        host, moment, hours = arg
        with Session(engine) as session, session.begin():
            for row in session.scalars(
                select(MetricsSnapshot).where(
                    MetricsSnapshot.timestamp >= moment,
                    MetricsSnapshot.timestamp < moment + timedelta(hours=hours),
                )
            ):
                if host_of_any(row.metric_data) == host:
                    session.delete(row)
    elif kind in ("archive", "retention"):
        # "archive": the current policy (at first: rolls up rows older than a day, deletes
        # those older than two); "retention": a new policy, applied at once. Even hours
        # refresh the tiers after the run.
        hours = arg if kind == "archive" else arg[3]
        if kind == "retention":
            retention, after, interval, _ = arg
            with Session(engine) as session, session.begin():
                update_policy(
                    session=session,
                    retention_days=retention,
                    downsample_after_days=min(after, retention - 1),
                    downsample_interval=interval,
                )
        now = T0 + SPAN + timedelta(hours=hours)
        run_archive(engine, now=now, archive_path=archive, tiers=hours % 2 == 0)
    elif kind == "restore":
        start = T0 + timedelta(days=arg)
        restore(engine, start=start, end=start + timedelta(days=1), archive_path=archive)
    else:
        refresh(engine)


# ----------------------------------------------------------------- the read side


def read(engine: Engine, *, metrics: Sequence[str], **kwargs: Any) -> pd.DataFrame:
    return load_frame(engine, metrics=metrics, **kwargs)


def assert_same(engine: Engine, *, metrics: Sequence[str], **kwargs: Any) -> pd.DataFrame:
    """The tier path equals the snapshot path and the pandas rule; returns the tier frame."""
    tiered = read(engine, metrics=metrics, **kwargs)
    plain = read(engine, metrics=metrics, tiers=False, **kwargs)
    reference = read(engine, metrics=metrics, tiers=False, **{**kwargs, "method": "pandas"})
    pd.testing.assert_frame_equal(tiered, plain, check_exact=False, rtol=1e-9, atol=1e-9)
    # the SQL and pandas paths label hosts with different string dtypes (as before tiers)
    pd.testing.assert_frame_equal(
        tiered, reference, check_exact=False, rtol=1e-9, atol=1e-9, check_index_type=False
    )
    for other in (plain, reference):
        assert tiered.attrs["stored_intervals"] == other.attrs["stored_intervals"]
        assert tiered.attrs["notes"] == other.attrs["notes"]
    assert plain.attrs["tiers"] == [] and reference.attrs["tiers"] == []
    return tiered


def snapshots_in(engine: Engine, start: datetime, end: datetime) -> int:
    with Session(engine) as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(MetricsSnapshot)
                .where(MetricsSnapshot.timestamp >= start, MetricsSnapshot.timestamp < end)
            )
            or 0
        )
