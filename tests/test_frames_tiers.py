"""Bucketed reads from the rollup tiers equal the reads of every snapshot (docs/design.md §9).

On both databases: ``load_frame(..., tiers=True)`` == ``tiers=False`` == the pandas rule
(``method="pandas", tiers=False``) to 1e-9, over aligned and unaligned ranges, widths that
a tier divides and widths none does, days the tier log marks (late rows written after the
refresh), the newest tail not yet refreshed, a host with no tier rows, rows an archive run
rolled up, pooled and per host, every statistic. ``frame.attrs`` tells which tier and how
many snapshots were read.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from metrics_toolkit.archive.runner import run_archive
from metrics_toolkit.archive.tiers import refresh
from metrics_toolkit.frames.tiers import tier_width
from metrics_toolkit.intervals import as_utc
from metrics_toolkit.rollup.rule import Row
from metrics_toolkit.store.ingest import write_snapshots
from metrics_toolkit.store.models import SNAPSHOT_ROLLUP_SQL, MetricsSnapshot, MetricsTier
from metrics_toolkit.store.policies import update_policy
from tests import tier_helpers
from tests.tier_helpers import snapshots_in

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday, UTC midnight
GAUGES = ["cpu.usage_percent", "mem.used_mb"]
COUNTER = "net.bytes_total"
STATS = ("mean", "min", "max", "count", "sum", "first", "last")
VIEW = ("mean", "min", "max", "count")  # the explorer's main view


def doc(host: str, n: int, k: int) -> dict[str, Any]:
    """A document with values that depend on host, tick and salt; ``mem`` missing at times."""
    seed = (n * 7919 + k * 104729 + sum(map(ord, host)) * 31) % 1009
    out: dict[str, Any] = {
        "host": host,
        "cpu": {"usage_percent": round(seed / 10.09, 3)},
        "net": {"bytes_total": n * 1000 + seed},
    }
    if n % 5:
        out["mem"] = {"used_mb": 1000 + (seed * 13) % 977 + n / 3}
    return out


def history(
    hosts: list[str], start: datetime, end: datetime, step: timedelta, salt: int = 0
) -> list[Row]:
    rows: list[Row] = []
    ts, n = start, 0
    while ts < end:
        for i, host in enumerate(hosts):
            rows.append((ts + timedelta(seconds=i), "aggregated", doc(host, n, salt)))
        ts += step
        n += 1
    return rows


# The shared comparison, on this module's gauges unless a test names other metrics.
read = partial(tier_helpers.read, metrics=GAUGES)
assert_same = partial(tier_helpers.assert_same, metrics=GAUGES)


HOSTS = ["db-1", "web-1", "web-2"]
END = T0 + timedelta(days=2)


@pytest.fixture
def refreshed(engine: Engine) -> Engine:
    """Three hosts, two days at 2 min, written by the bulk ingest and refreshed."""
    write_snapshots(engine, history(HOSTS, T0, END, timedelta(minutes=4)))
    refresh(engine)
    return engine


def test_tier_width_is_the_coarsest_divisor() -> None:
    assert tier_width(300) == 300
    assert tier_width(900) == 300
    assert tier_width(7200) == 7200
    assert tier_width(3 * 3600) == 3600
    assert tier_width(6 * 3600) == 7200
    assert tier_width(86400) == 86400
    assert tier_width(7 * 86400) == 86400
    assert tier_width(420) is None  # 7 min
    assert tier_width(60) is None


@pytest.mark.parametrize(
    ("interval", "width"),
    [
        ("5min", 300),
        ("15min", 300),
        ("1h", 3600),
        ("2h", 7200),
        ("3h", 3600),
        ("1D", 86400),
        ("7D", 86400),
    ],
)
@pytest.mark.parametrize("by_host", [True, False])
def test_aligned_range_reads_only_tiers(
    refreshed: Engine, interval: str, width: int, by_host: bool
) -> None:
    frame = assert_same(
        refreshed, start=T0, end=END, interval=interval, stats=VIEW, by_host=by_host
    )
    assert frame.attrs["tiers"] == [width]
    assert frame.attrs["raw_rows"] == 0
    assert len(frame) > 0


@pytest.mark.parametrize("stats", [STATS, ("first", "last"), ("sum",), ("mean",)])
@pytest.mark.parametrize("by_host", [True, False])
def test_unaligned_range_reads_the_edges(
    refreshed: Engine, stats: tuple[str, ...], by_host: bool
) -> None:
    start = T0 + timedelta(hours=3, minutes=7, seconds=13)
    end = T0 + timedelta(hours=30, minutes=41)
    frame = assert_same(
        refreshed, start=start, end=end, interval="1h", stats=stats, by_host=by_host
    )
    assert frame.attrs["tiers"] == [3600]
    edges = snapshots_in(refreshed, start, T0 + timedelta(hours=4)) + snapshots_in(
        refreshed, T0 + timedelta(hours=30), end
    )
    assert frame.attrs["raw_rows"] == edges > 0


def test_a_width_no_tier_divides_reads_the_snapshots(refreshed: Engine) -> None:
    start, end = T0 + timedelta(hours=1), T0 + timedelta(hours=20)
    for interval in ("4min", "90s"):
        frame = assert_same(refreshed, start=start, end=end, interval=interval, stats=STATS)
        assert frame.attrs["tiers"] == []
        assert frame.attrs["raw_rows"] == snapshots_in(refreshed, start, end)


def test_full_resolution_is_unchanged(refreshed: Engine) -> None:
    start, end = T0, T0 + timedelta(hours=2)
    tiered = read(refreshed, start=start, end=end, by_host=True)
    plain = read(refreshed, start=start, end=end, by_host=True, tiers=False)
    pd.testing.assert_frame_equal(tiered, plain)
    assert tiered.attrs["tiers"] == [] and tiered.attrs["raw_rows"] == len(plain)


def test_late_rows_make_their_buckets_read_from_the_snapshots(refreshed: Engine) -> None:
    late = [  # odd seconds: new identities, in an already refreshed day, one host only
        (T0 + timedelta(hours=5, minutes=m, seconds=37), "aggregated", doc("web-1", 900 + m, 1))
        for m in range(0, 70, 7)
    ]
    write_snapshots(refreshed, late)
    for interval, width in (("5min", 300), ("1h", 3600), ("1D", 86400)):
        for by_host, stats in ((True, STATS), (False, STATS), (True, VIEW), (False, VIEW)):
            frame = assert_same(
                refreshed, start=T0, end=END, interval=interval, stats=stats, by_host=by_host
            )
            assert frame.attrs["tiers"] == [width]
            # only web-1's marked buckets are read, whole tier buckets
            lo = T0 + timedelta(hours=5)
            hi = T0 + timedelta(hours=5, minutes=63, seconds=37)
            step = timedelta(seconds=width)
            a = T0 + (lo - T0) // step * step
            b = T0 + (hi - T0) // step * step + step
            with Session(refreshed) as session:
                expected = session.scalar(
                    select(func.count())
                    .select_from(MetricsSnapshot)
                    .where(
                        MetricsSnapshot.timestamp >= a,
                        MetricsSnapshot.timestamp < b,
                        MetricsSnapshot.metric_data["host"].as_string() == "web-1",
                    )
                )
            assert frame.attrs["raw_rows"] == expected
    refresh(refreshed)  # once refreshed, nothing is read from the snapshots
    frame = assert_same(refreshed, start=T0, end=END, interval="1h", stats=STATS, by_host=True)
    assert frame.attrs["raw_rows"] == 0


def test_the_tail_not_yet_refreshed_is_read(refreshed: Engine) -> None:
    tail = history(HOSTS, END, END + timedelta(hours=3, minutes=10), timedelta(minutes=2), 2)
    write_snapshots(refreshed, tail)
    frame = assert_same(
        refreshed, start=T0, end=END + timedelta(hours=4), interval="1h", stats=STATS
    )
    assert frame.attrs["tiers"] == [3600]
    assert frame.attrs["raw_rows"] == len(tail)
    # an unbounded read takes the same tiers and the same tail
    frame = assert_same(refreshed, interval="1h", stats=VIEW, by_host=True)
    assert frame.attrs["tiers"] == [3600] and frame.attrs["raw_rows"] == len(tail)


def test_a_host_with_no_tier_rows_is_read_from_the_snapshots(refreshed: Engine) -> None:
    newcomer = history(["cache-1"], T0, END, timedelta(minutes=10), 3)
    write_snapshots(refreshed, newcomer)
    frame = assert_same(refreshed, start=T0, end=END, interval="2h", stats=STATS, by_host=True)
    assert frame.attrs["tiers"] == [7200]
    assert frame.attrs["raw_rows"] == len(newcomer)
    assert "cache-1" in frame.index.get_level_values("host")
    frame = assert_same(refreshed, start=T0, end=END, interval="2h", stats=VIEW, host="cache-1")
    assert frame.attrs["raw_rows"] == len(newcomer)
    frame = assert_same(refreshed, start=T0, end=END, interval="2h", stats=VIEW, host="web-2")
    assert frame.attrs["raw_rows"] == 0


def test_one_host_and_counters(refreshed: Engine) -> None:
    for kwargs in (
        {"host": "web-1"},
        {"metrics": [*GAUGES, COUNTER]},
        {"metrics": [COUNTER], "by_host": True},
        {"metrics": [COUNTER], "stats": ("increase", "resets", "max_rate", "last")},
    ):
        start = T0 + timedelta(minutes=95)
        kwargs = {"stats": STATS, **kwargs}
        frame = assert_same(
            refreshed, start=start, end=END - timedelta(minutes=1), interval="1h", **kwargs
        )
        assert frame.attrs["tiers"] == [3600]


def test_pandas_method_reads_the_tiers_too(refreshed: Engine) -> None:
    start = T0 + timedelta(minutes=17)
    kwargs: dict[str, Any] = {"start": start, "end": END, "interval": "1h", "stats": STATS}
    tiered = read(refreshed, method="pandas", by_host=True, **kwargs)
    plain = read(refreshed, tiers=False, by_host=True, **kwargs)
    pd.testing.assert_frame_equal(
        tiered, plain, check_exact=False, rtol=1e-9, atol=1e-9, check_index_type=False
    )
    assert tiered.attrs["tiers"] == [3600]
    assert tiered.attrs["raw_rows"] == snapshots_in(refreshed, start, T0 + timedelta(hours=1))


def test_rows_rolled_up_by_an_archive_run(engine: Engine, tmp_path: Path) -> None:
    now = T0 + timedelta(days=3)
    write_snapshots(engine, history(HOSTS, T0, now, timedelta(minutes=2)))
    with Session(engine) as session, session.begin():
        update_policy(
            session=session,
            retention_days=30,
            downsample_after_days=1,
            downsample_interval="1h",
            archive_enabled=False,
        )
    result = run_archive(engine, now=now, archive_path=tmp_path)
    assert result.status == "completed"
    refresh(engine)
    with Session(engine) as session:
        rolled = session.scalar(
            select(func.count())
            .select_from(MetricsSnapshot)
            .where(text(SNAPSHOT_ROLLUP_SQL[engine.dialect.name]))
            .where(MetricsSnapshot.timestamp < now - timedelta(days=1))
        )
    assert rolled
    for interval in ("5min", "1h", "2h", "1D"):
        for by_host, stats in ((True, STATS), (False, STATS), (True, VIEW), (False, VIEW)):
            frame = assert_same(
                engine,
                start=T0 + timedelta(minutes=33),
                end=now,
                interval=interval,
                stats=stats,
                by_host=by_host,
            )
            assert frame.attrs["tiers"]
            assert frame.attrs["stored_intervals"] == ["1h"]


def test_no_tier_rows_at_all(engine: Engine) -> None:
    write_snapshots(engine, history(HOSTS, T0, T0 + timedelta(hours=6), timedelta(minutes=5)))
    frame = assert_same(engine, start=T0, end=T0 + timedelta(hours=6), interval="1h", stats=VIEW)
    assert frame.attrs["tiers"] == []
    assert frame.attrs["raw_rows"] == 3 * 72


# --------------------------------------------------------------------- property


@pytest.mark.filterwarnings("ignore::metrics_toolkit.frames.contract.MissingDataWarning")
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["write", "late", "refresh"]),
            st.integers(0, 2),  # host
            st.integers(0, 36 * 60),  # minute
            st.integers(1, 40),  # rows
        ),
        min_size=1,
        max_size=5,
    ),
    interval=st.sampled_from(["5min", "10min", "1h", "3h", "1D", "4min"]),
    lo=st.integers(0, 30 * 60),
    span=st.integers(1, 40 * 60),
    by_host=st.booleans(),
)
def test_property_tiers_equal_the_snapshots(
    engine: Engine,
    steps: list[tuple[str, int, int, int]],
    interval: str,
    lo: int,
    span: int,
    by_host: bool,
) -> None:
    with engine.begin() as connection:
        for table in (
            "metrics_snapshots",
            "metrics_tiers",
            "metrics_tier_blocks",
            "metrics_tier_dirty",
        ):
            connection.execute(text(f"DELETE FROM {table}"))
    seen: set[tuple[str, datetime]] = set()
    for n, (kind, h, minute, count) in enumerate(steps):
        if kind == "refresh":
            refresh(engine)
            continue
        host = HOSTS[h]
        rows = []
        for j in range(count):
            extra = 0 if kind == "write" else 17 + n
            ts = T0 + timedelta(minutes=minute + 3 * j, seconds=extra)
            if (host, ts) not in seen:
                seen.add((host, ts))
                rows.append((ts, "aggregated", doc(host, minute + j, n)))
        write_snapshots(engine, rows)
    start = T0 + timedelta(minutes=lo)
    frame = assert_same(
        engine,
        start=start,
        end=start + timedelta(minutes=span),
        interval=interval,
        stats=("mean", "min", "max", "count", "sum"),
        by_host=by_host,
    )
    with Session(engine) as session:
        has_tiers = bool(session.scalar(select(func.count()).select_from(MetricsTier)))
    if not has_tiers or interval == "4min":
        assert frame.attrs["tiers"] == []
    assert not math.isnan(float(frame.attrs["raw_rows"]))


def test_every_host_marked_reads_every_host_over_those_times(refreshed: Engine) -> None:
    late = [  # the day being written: every host marked over the same hour
        (T0 + timedelta(hours=5, minutes=m, seconds=41), "aggregated", doc(host, 700 + m, 4))
        for m in range(0, 60, 6)
        for host in HOSTS
    ]
    write_snapshots(refreshed, late)
    for stats in (VIEW, STATS):
        for by_host in (True, False):
            frame = assert_same(
                refreshed, start=T0, end=END, interval="15min", stats=stats, by_host=by_host
            )
            assert frame.attrs["tiers"] == [300]
            lo, hi = T0 + timedelta(hours=5), T0 + timedelta(hours=5, minutes=55)
            assert frame.attrs["raw_rows"] == snapshots_in(refreshed, lo, hi)


def test_a_wide_read_takes_more_statistics_than_one_json_call_holds(engine: Engine) -> None:
    """45 metrics x 4 statistics = 180 paths of a tier row: SQLite's json_extract takes at
    most 127 arguments, so the reader asks in groups (a notebook loading every metric)."""
    rows: list[Row] = [
        (
            T0 + timedelta(seconds=60 * n),
            "aggregated",
            {"host": host, "m": {f"v{j}": float((n * 31 + j * 7 + len(host)) % 97)
                                 for j in range(45)}},
        )
        for n in range(180)
        for host in ("a", "bb")
    ]  # fmt: skip
    write_snapshots(engine, rows)
    refresh(engine)
    wide = [f"m.v{j}" for j in range(45)]
    frame = assert_same(
        engine, metrics=wide, start=T0, end=T0 + timedelta(hours=3), interval="1h",
        stats=VIEW, by_host=True,
    )  # fmt: skip
    assert frame.attrs["tiers"] == [3600]
    assert frame.shape == (6, 45 * len(VIEW))


def test_migration_0007_brings_the_2h_width(refreshed: Engine) -> None:
    """A database refreshed before 0007 has no 2-hour rows: the upgrade marks every day of
    its tiers whole, the refresh makes them (lz4-compressed on PostgreSQL), and until then
    the 2-hour view reads the snapshots: exact all along."""
    from metrics_toolkit.store import migrate

    migrate.downgrade(refreshed, "0006")  # as the database was: no 2-hour rows
    with Session(refreshed) as session:
        widths = set(session.scalars(select(MetricsTier.width_seconds).distinct()))
    assert 7200 not in widths and 3600 in widths
    before = assert_same(refreshed, start=T0, end=END, interval="2h", stats=VIEW)
    assert before.attrs["tiers"] == []  # no row of the width: the snapshots
    migrate.upgrade(refreshed)
    with refreshed.connect() as connection:
        marked = connection.execute(
            text("SELECT host, day, first_ts, last_ts FROM metrics_tier_dirty")
        ).all()
    assert len(marked) == 2 * len(HOSTS)  # every (host, day) of the tiers, whole days
    for _, day, first, last in marked:
        assert as_utc(first) == as_utc(day)
        assert as_utc(last) == as_utc(day) + timedelta(days=1, microseconds=-1)
    during = assert_same(refreshed, start=T0, end=END, interval="2h", stats=VIEW)
    assert during.attrs["raw_rows"] == snapshots_in(refreshed, T0, END)
    refresh(refreshed)
    after = assert_same(refreshed, start=T0, end=END, interval="2h", stats=VIEW)
    assert after.attrs["tiers"] == [7200] and after.attrs["raw_rows"] == 0
    if refreshed.dialect.name == "postgresql":
        with refreshed.connect() as connection:
            methods = connection.execute(
                text("SELECT DISTINCT pg_column_compression(metric_data) FROM metrics_tiers")
            ).scalars()
            assert set(methods) <= {"lz4", None}  # None: a document stored uncompressed


def test_views_read_the_blocks_not_the_documents(refreshed: Engine) -> None:
    """count/sum/min/max/mean come from the tier blocks (a leaf's blocks removed: its tier
    buckets are empty, the other leaf's are whole); first/last read the documents."""
    full = assert_same(refreshed, start=T0, end=END, interval="1h", stats=VIEW)
    with refreshed.begin() as connection:
        gone = connection.execute(
            text("DELETE FROM metrics_tier_blocks WHERE path = 'cpu.usage_percent'")
        ).rowcount
    assert gone > 0
    holed = read(refreshed, start=T0, end=END, interval="1h", stats=VIEW)
    assert holed.attrs["tiers"] == [3600] and holed.attrs["raw_rows"] == 0
    assert (holed["cpu.usage_percent", "count"] == 0).all()
    assert holed["cpu.usage_percent", "mean"].isna().all()
    pd.testing.assert_series_equal(holed["mem.used_mb", "mean"], full["mem.used_mb", "mean"])
    edges = assert_same(refreshed, start=T0, end=END, interval="1h", stats=("first", "last"))
    assert edges.attrs["tiers"] == [3600] and edges.attrs["raw_rows"] == 0


def test_migration_0008_brings_the_blocks(refreshed: Engine) -> None:
    """A database refreshed before 0008 has no blocks: the upgrade marks every day of its
    tiers whole, the refresh makes the blocks, and until then views read the snapshots."""
    from metrics_toolkit.store import migrate

    migrate.downgrade(refreshed, "0007")
    with refreshed.connect() as connection:
        assert not connection.dialect.has_table(connection, "metrics_tier_blocks")
    migrate.upgrade(refreshed)
    with refreshed.connect() as connection:
        marked = connection.execute(text("SELECT day, first_ts, last_ts FROM metrics_tier_dirty"))
        assert len(marked.all()) == 2 * len(HOSTS)
        blocks = connection.execute(text("SELECT count(*) FROM metrics_tier_blocks")).scalar()
        assert blocks == 0
    during = assert_same(refreshed, start=T0, end=END, interval="2h", stats=VIEW)
    assert during.attrs["raw_rows"] == snapshots_in(refreshed, T0, END)
    refresh(refreshed)
    after = assert_same(refreshed, start=T0, end=END, interval="2h", stats=VIEW)
    assert after.attrs["tiers"] == [7200] and after.attrs["raw_rows"] == 0
    with refreshed.connect() as connection:
        assert tier_helpers.check_invariant(connection, clean=True) > 0  # blocks checked too
        if refreshed.dialect.name == "postgresql":
            methods = connection.execute(
                text("SELECT DISTINCT pg_column_compression(sums) FROM metrics_tier_blocks")
            ).scalars()
            assert set(methods) <= {"lz4", None}  # None: an array stored uncompressed
