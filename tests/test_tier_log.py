"""The tier log (store.tier_log) and the reference tier refresh (archive.tiers), on both
databases: every write is marked per (metric_type, host, UTC day), and a refresh makes the
tiers equal the rollup rule applied to the snapshots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from metrics_toolkit.archive.tiers import TIER_WIDTHS, refresh
from metrics_toolkit.intervals import Interval
from metrics_toolkit.rollup.rule import rollup_rows
from metrics_toolkit.store.ingest import write_snapshots
from metrics_toolkit.store.models import MetricsSnapshot, MetricsTier, TierDirty
from metrics_toolkit.store.tier_log import DaySpans, day_entries

T0 = datetime(2026, 11, 3, 22, 0, tzinfo=UTC)


def _doc(host: str, value: float) -> dict[str, Any]:
    return {"host": host, "cpu": {"usage_percent": value}}


def test_a_span_is_cut_at_utc_midnight() -> None:
    entries = day_entries([("aggregated", "h", T0, T0 + timedelta(hours=27))])
    assert [(e["day"].day, e["first"], e["last"]) for e in entries] == [
        (3, T0, datetime(2026, 11, 3, 23, 59, 59, 999_999, tzinfo=UTC)),
        (4, datetime(2026, 11, 4, tzinfo=UTC), datetime(2026, 11, 4, 23, 59, 59, 999_999, UTC)),
        (5, datetime(2026, 11, 5, tzinfo=UTC), T0 + timedelta(hours=27)),
    ]  # fmt: skip


def test_the_last_day_of_the_calendar_does_not_overflow() -> None:
    last = datetime(9999, 12, 31, 23, 0, tzinfo=UTC)
    entries = day_entries([("aggregated", "h", last - timedelta(days=1), last)])
    assert [e["day"].date().isoformat() for e in entries] == ["9999-12-30", "9999-12-31"]


def test_far_apart_rows_make_one_entry_per_day_they_hold() -> None:
    spans = DaySpans()
    for moment in (datetime(1900, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, tzinfo=UTC)):
        spans.add("aggregated", "h", moment)
    spans.add("aggregated", "h", datetime(1900, 1, 1, 5, tzinfo=UTC))
    entries = spans.entries()
    assert [(e["day"].year, e["first"].hour, e["last"].hour) for e in entries] == [
        (1900, 0, 5),
        (9999, 23, 23),
    ]


def _log(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(TierDirty.metric_type, TierDirty.host, TierDirty.day).order_by(
                TierDirty.metric_type, TierDirty.host, TierDirty.day
            )
        ).all()
    return [(mt, host, str(day)[:10]) for mt, host, day in rows]


def test_ingest_marks_each_host_and_day_it_wrote(engine: Engine) -> None:
    rows = [
        (T0 + timedelta(minutes=30 * i), "aggregated", _doc(host, float(i)))
        for i in range(6)
        for host in ("a", "b")
    ]
    write_snapshots(engine, rows)
    assert _log(engine) == [
        ("aggregated", "a", "2026-11-03"),
        ("aggregated", "a", "2026-11-04"),
        ("aggregated", "b", "2026-11-03"),
        ("aggregated", "b", "2026-11-04"),
    ]
    # Writing the same rows again inserts nothing new but still bumps the entries' seq.
    with engine.connect() as connection:
        before = connection.execute(select(func.sum(TierDirty.seq))).scalar_one()
    write_snapshots(engine, rows[:2])
    with engine.connect() as connection:
        after = connection.execute(select(func.sum(TierDirty.seq))).scalar_one()
    assert after > before


def test_refresh_makes_every_tier_equal_the_rule_on_the_snapshots(engine: Engine) -> None:
    rows = [
        (T0 + timedelta(seconds=70 * i), "aggregated", _doc(host, float((i * 7) % 13)))
        for i in range(200)
        for host in ("a", "b")
    ]
    write_snapshots(engine, rows)
    result = refresh(engine)
    assert result.entries == 4 and result.buckets > 0
    assert _log(engine) == []
    # A late row in an old bucket is marked, and the next refresh takes it in.
    late = (T0 + timedelta(seconds=35), "aggregated", _doc("a", 99.0))
    write_snapshots(engine, [late])
    assert _log(engine) == [("aggregated", "a", "2026-11-03")]
    refresh(engine)
    with engine.connect() as connection:
        stored = connection.execute(
            select(MetricsSnapshot.timestamp, MetricsSnapshot.metric_type,
                   MetricsSnapshot.metric_data)
        ).all()  # fmt: skip
        for width in TIER_WIDTHS:
            tiers = connection.execute(
                select(MetricsTier.host, MetricsTier.timestamp, MetricsTier.metric_data)
                .where(MetricsTier.width_seconds == width)
                .order_by(MetricsTier.host, MetricsTier.timestamp)
            ).all()
            expected = sorted(
                (doc["host"], ts, doc)
                for host in ("a", "b")
                for ts, _, doc in rollup_rows(
                    [(t.replace(tzinfo=UTC) if t.tzinfo is None else t, mt, d)
                     for t, mt, d in stored if d["host"] == host],
                    Interval(width),
                )
            )  # fmt: skip
            got = [(h, t.replace(tzinfo=UTC) if t.tzinfo is None else t, d) for h, t, d in tiers]
            assert [(h, t) for h, t, _ in got] == [(h, t) for h, t, _ in expected], width
            for (_, _, mine), (_, _, theirs) in zip(got, expected, strict=True):
                assert mine["_rollup"]["samples"] == theirs["_rollup"]["samples"]
                assert mine["cpu"]["usage_percent"] == pytest.approx(
                    theirs["cpu"]["usage_percent"], rel=1e-12
                )
