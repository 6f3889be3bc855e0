"""Rollup tiers: the rollup rule's buckets kept ahead at a few widths (docs/design.md §9).

``metrics_tiers`` holds, per width in :data:`TIER_WIDTHS`, metric_type, host and bucket, the
rolled-up document the archive would write for that bucket (``rollup.rule.rollup_rows``).
Writers never compute tiers: they mark what they touched in the tier log
(``store.tier_log``), in their own transaction. :func:`refresh` recomputes the marked
buckets: the finest width from the snapshots, each coarser width from the one below by the
merge law (``rollup(rollup(raw, 5min), 1h) == rollup(raw, 1h)``), and deletes a log entry
only if no writer widened it meanwhile. A tier row overlapping a log entry is stale; readers
read the snapshots there (``frames.load``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, insert, select

from metrics_toolkit.documents import ROLLUP_KEY, host_of
from metrics_toolkit.intervals import Interval, as_utc, bucket_start
from metrics_toolkit.rollup.rule import Row, rollup_rows
from metrics_toolkit.store.models import MetricsSnapshot, MetricsTier, TierDirty

#: The tier widths, finest first; each divides the next. 5 min answers views up to a day or
#: two at a few hundred points, 1 h a week to a few months, 1 day a year and more.
TIER_WIDTHS: tuple[int, ...] = (300, 3600, 86400)


@dataclass
class RefreshResult:
    entries: int = 0  # tier log entries worked through
    buckets: int = 0  # tier rows written


def refresh(
    engine: Engine | Connection,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> RefreshResult:
    """Recompute the tier buckets the tier log marks, one (metric_type, day) per transaction.

    ``progress(done, total)`` is called after each day. Safe to interrupt: what was done
    is committed, the rest stays in the log.
    """
    result = RefreshResult()
    if isinstance(engine, Connection):
        work = _pending(engine)
        for n, (key, entries) in enumerate(work, 1):
            result.buckets += _refresh_day(engine, key[0], entries)
            result.entries += len(entries)
            if progress is not None:
                progress(n, len(work))
        return result
    with engine.connect() as connection:
        work = _pending(connection)
        connection.rollback()
    for n, (key, entries) in enumerate(work, 1):
        with engine.begin() as connection:
            result.buckets += _refresh_day(connection, key[0], entries)
        result.entries += len(entries)
        if progress is not None:
            progress(n, len(work))
    return result


def _pending(connection: Connection) -> list[tuple[tuple[str, datetime], list[Any]]]:
    rows = connection.execute(
        select(TierDirty).order_by(TierDirty.metric_type, TierDirty.day, TierDirty.host)
    ).all()
    days: dict[tuple[str, datetime], list[Any]] = defaultdict(list)
    for entry in rows:
        days[entry.metric_type, as_utc(entry.day)].append(entry)
    return list(days.items())


def _refresh_day(connection: Connection, metric_type: str, entries: Sequence[Any]) -> int:
    hosts = {e.host for e in entries}
    lo = min(as_utc(e.first_ts) for e in entries)
    hi = max(as_utc(e.last_ts) for e in entries)
    written = 0
    below: int | None = None
    for width in TIER_WIDTHS:
        step = timedelta(seconds=width)
        start, end = bucket_start(lo, step), bucket_start(hi, step) + step
        if below is None:
            rows = [
                r
                for r in _snapshot_rows(connection, metric_type, start, end)
                if host_of(r[2]) in hosts
            ]
        else:
            rows = _tier_rows(connection, below, metric_type, hosts, start, end)
        docs = rollup_rows(rows, Interval(width))
        connection.execute(
            delete(MetricsTier).where(
                MetricsTier.width_seconds == width,
                MetricsTier.metric_type == metric_type,
                MetricsTier.host.in_(sorted(hosts)),
                MetricsTier.timestamp >= start,
                MetricsTier.timestamp < end,
            )
        )
        if docs:
            connection.execute(
                insert(MetricsTier),
                [
                    {
                        "width_seconds": width,
                        "metric_type": mt,
                        "host": host_of(doc),
                        "timestamp": ts,
                        "samples": doc[ROLLUP_KEY]["samples"],
                        "metric_data": doc,
                    }
                    for ts, mt, doc in docs
                ],
            )
        written += len(docs)
        below = width
    for e in entries:  # only if no writer widened the entry since it was read
        connection.execute(
            delete(TierDirty).where(
                and_(
                    TierDirty.metric_type == e.metric_type,
                    TierDirty.host == e.host,
                    TierDirty.day == e.day,
                    TierDirty.seq == e.seq,
                )
            )
        )
    return written


def _snapshot_rows(
    connection: Connection, metric_type: str, start: datetime, end: datetime
) -> list[Row]:
    stmt = (
        select(MetricsSnapshot.timestamp, MetricsSnapshot.metric_type, MetricsSnapshot.metric_data)
        .where(
            MetricsSnapshot.metric_type == metric_type,
            MetricsSnapshot.timestamp >= start,
            MetricsSnapshot.timestamp < end,
        )
        .order_by(MetricsSnapshot.timestamp, MetricsSnapshot.id)
    )
    return [(as_utc(ts), mt, doc) for ts, mt, doc in connection.execute(stmt)]


def _tier_rows(
    connection: Connection,
    width: int,
    metric_type: str,
    hosts: set[str],
    start: datetime,
    end: datetime,
) -> list[Row]:
    stmt = (
        select(MetricsTier.timestamp, MetricsTier.metric_type, MetricsTier.metric_data)
        .where(
            MetricsTier.width_seconds == width,
            MetricsTier.metric_type == metric_type,
            MetricsTier.host.in_(sorted(hosts)),
            MetricsTier.timestamp >= start,
            MetricsTier.timestamp < end,
        )
        .order_by(MetricsTier.host, MetricsTier.timestamp)
    )
    return [(as_utc(ts), mt, doc) for ts, mt, doc in connection.execute(stmt)]


__all__ = ["TIER_WIDTHS", "RefreshResult", "refresh"]
