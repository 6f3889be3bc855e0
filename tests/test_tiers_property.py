"""Issue 18, end to end (docs/design.md §9): under random interleavings of every way the
snapshots change (bulk ingest of a few hosts, late rows into buckets already refreshed,
ORM writes and deletions, archive runs rolling up old rows and deleting older ones, a
policy change applied at once, restores of a day from the archive) and of refreshes, on
SQLite and PostgreSQL, after EVERY step a bucketed read from the tiers equals the read of
every snapshot and the pandas rule, to 1e-9 (``tier_helpers.assert_same``), for a random
window (aligned to the interval or not, open or closed) and interval (tier widths divide
5 min, 15 min, 30 min, 1 h, 2 h and 1 day; none divides 4 min), pooled and per host.

So that it cannot pass by never reading a tier: wherever tier rows of the width lie in
the range shrunk to whole buckets the read takes that width (``attrs["tiers"]``), and once
refreshed (the log empty) the snapshots it reads are exactly the range's unaligned edges.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from metrics_toolkit.archive.tiers import refresh
from metrics_toolkit.frames.tiers import tier_width
from metrics_toolkit.intervals import Interval, bucket_start
from metrics_toolkit.store.models import MetricsTier, TierDirty
from tests.tier_helpers import (
    METRICS,
    ROW,
    SPAN,
    T0,
    apply_step,
    assert_same,
    reset,
    snapshots_in,
    step_sequences,
)

STATS = ("mean", "min", "max", "count", "sum")
INTERVALS = ("5min", "15min", "30min", "1h", "2h", "1D", "4min")


@dataclass(frozen=True)
class Window:
    interval: str
    start: datetime | None
    end: datetime | None
    by_host: bool


@st.composite
def windows(draw: st.DrawFn) -> Window:
    """A read around the data (which spans ``[T0, T0 + SPAN)``), its ends on the interval's
    epoch-aligned buckets or anywhere, sometimes open (both: a stale tier row anywhere is
    read). Drawn inwards from 6 h beyond the data at either end, so the simplest window
    (the one Hypothesis tries most) is all of it."""
    interval = draw(st.sampled_from(INTERVALS))
    step = Interval.parse(interval).timedelta
    around = int((SPAN + timedelta(hours=12)).total_seconds())
    lo = T0 - timedelta(hours=6) + timedelta(seconds=draw(st.integers(0, around)))
    hi = T0 + SPAN + timedelta(hours=6) - timedelta(seconds=draw(st.integers(0, around)))
    lo, hi = min(lo, hi), max(lo, hi) + timedelta(seconds=1)
    if draw(st.booleans()):  # aligned (T0 is UTC midnight, so aligned to the epoch)
        lo = bucket_start(lo, step)
        hi = lo + max(1, -((lo - hi) // step)) * step
    ends = draw(st.sampled_from(["closed", "closed", "open start", "open end", "open"]))
    return Window(
        interval,
        None if ends in ("open start", "open") else lo,
        None if ends in ("open end", "open") else hi,
        draw(st.booleans()),
    )


def _count(engine: Engine, model: Any, *where: Any) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(model).where(*where)).scalar() or 0
        )


def check_read(engine: Engine, window: Window) -> None:
    """The three reads agree; the tiers are read where they must be."""
    frame = assert_same(
        engine,
        metrics=METRICS,
        start=window.start,
        end=window.end,
        interval=window.interval,
        stats=STATS,
        by_host=window.by_host,
    )
    width = tier_width(Interval.parse(window.interval).seconds)
    if width is None:
        assert frame.attrs["tiers"] == []
        event("no tier width divides the interval")
        return
    step = timedelta(seconds=width)
    # The range shrunk to whole tier buckets.
    lo = (
        None
        if window.start is None
        else bucket_start(window.start - timedelta.resolution, step) + step
    )
    hi = None if window.end is None else bucket_start(window.end, step)
    where = [MetricsTier.width_seconds == width, MetricsTier.metric_type == "aggregated"]
    if lo is not None:
        where.append(MetricsTier.timestamp >= lo)
    if hi is not None:
        where.append(MetricsTier.timestamp < hi)
    usable = _count(engine, MetricsTier, *where) > 0
    assert frame.attrs["tiers"] == ([width] if usable else []), (usable, frame.attrs)
    event("tiers read" if usable else "no tier row in the range")
    if usable and _count(engine, TierDirty) == 0:
        # Refreshed: every snapshot of the whole buckets is in a valid tier row.
        edges = 0
        if window.start is not None and lo is not None:
            edges += snapshots_in(engine, window.start, lo)
        if window.end is not None and hi is not None:
            edges += snapshots_in(engine, hi, window.end)
        assert frame.attrs["raw_rows"] == edges, frame.attrs
        event("refreshed: only the edges read")


@pytest.mark.filterwarnings("ignore::metrics_toolkit.frames.contract.MissingDataWarning")
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    first=st.lists(ROW, min_size=15, max_size=50),
    steps=step_sequences(max_size=7),
    data=st.data(),
)
def test_tier_reads_equal_the_snapshots_after_every_step(
    engine: Engine,
    tmp_path: Path,
    first: list[Any],
    steps: list[tuple[str, Any]],
    data: st.DataObject,
) -> None:
    reset(engine)
    archive = tmp_path / uuid.uuid4().hex
    archive.mkdir()
    apply_step(engine, archive, ("ingest", first))
    refresh(engine)  # tiers to go stale: every later step changes what they stand for

    check_read(engine, data.draw(windows(), label="read after the first refresh"))
    for n, step in enumerate(steps):
        apply_step(engine, archive, step)
        check_read(engine, data.draw(windows(), label=f"read after step {n} ({step[0]})"))
    refresh(engine)
    check_read(engine, data.draw(windows(), label="read after the last refresh"))
