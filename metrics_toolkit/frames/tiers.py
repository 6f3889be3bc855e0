"""Which rows a bucketed read takes from the rollup tiers and which from the snapshots.

The plan for ``load_frame(..., interval=I)`` (docs/design.md §9): the tier of width ``w``
is usable when ``w`` divides ``I`` (every ``I`` bucket is then a whole number of ``w``
buckets, both aligned to the epoch). The coarsest such width of
:data:`metrics_toolkit.archive.tiers.TIER_WIDTHS` is used. Its rows are taken in
``[lo, hi)``: the asked range shrunk to whole ``w`` buckets, and cut at the end of the newest
tier row (the *tail* after it is not materialized yet). A tier row overlapping an entry of
the tier log (``metrics_tier_dirty``, per metric_type, host and day) is stale and left out.
Everything else is read from the snapshots: the range's unaligned edges, the tail, and per
host the buckets the log marks. Both sets are rolled-up (or raw) rows that the readers
already merge by the law, so the combination is the rule applied to the snapshots.

The plan reads the log once, in Python: the tier rows it leaves out and the snapshots it
reads instead come from the same entries. A host with snapshots but no tier row outside
the log cannot exist (the invariant of §9: every writer marks what it writes), so hosts
need no listing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, false, func, or_, select, true

from metrics_toolkit.archive.tiers import TIER_WIDTHS
from metrics_toolkit.intervals import as_utc, bucket_start
from metrics_toolkit.rollup.sql import Filters, Span
from metrics_toolkit.store.models import MetricsTier, TierDirty

# Core columns: an ORM-enabled select costs a fresh process ~10 ms per statement to compile.
_TIER = MetricsTier.__table__.c
_LOG = TierDirty.__table__.c


@dataclass(frozen=True)
class TierPlan:
    """``tiers``: the tier rows to take; ``raw``: the snapshots to read, one ``Filters`` per
    time span (each an index range scan of its own), disjoint."""

    width: int
    tiers: Filters
    raw: tuple[Filters, ...]


def tier_width(interval_seconds: int) -> int | None:
    """The coarsest tier width dividing ``interval_seconds``, or None."""
    usable = [w for w in TIER_WIDTHS if interval_seconds % w == 0]
    return max(usable) if usable else None


def plan(connection: Connection, filters: Filters, interval_seconds: int) -> TierPlan | None:
    """The plan for buckets of ``interval_seconds`` over ``filters``, or None when no tier
    row can serve (no dividing width, no tier rows in the range)."""
    width = tier_width(interval_seconds)
    if width is None:
        return None
    step = timedelta(seconds=width)
    lo = _align_up(filters.start, step) if filters.start is not None else None
    hi = bucket_start(filters.end, step) if filters.end is not None else None
    first, last = _tier_bounds(connection, filters, width, lo, hi)
    if first is None or last is None:
        return None
    lo = first if lo is None else lo
    hi = last + step if hi is None else min(hi, last + step)
    if lo >= hi:
        return None
    dirty = _dirty_spans(connection, filters, step, lo, hi)
    if dirty and filters.host is None:
        dirty = _cheaper_spans(connection, filters, width, lo, hi, dirty)
    raw: list[Span] = []
    if filters.start is None or filters.start < lo:
        raw.append(Span(filters.start, lo))
    if filters.end is None or hi < filters.end:
        raw.append(Span(hi, filters.end))
    raw.extend(dirty)
    tiers = replace(filters, start=lo, end=hi, exclude=tuple(dirty), tier_width=width)
    return TierPlan(width, tiers, tuple(_narrowed(filters, span) for span in raw))


def _narrowed(filters: Filters, span: Span) -> Filters:
    """``filters`` limited to ``span``: its times as the range, its hosts as the one span."""
    starts = [t for t in (filters.start, span.start) if t is not None]
    ends = [t for t in (filters.end, span.end) if t is not None]
    return replace(
        filters,
        start=max(starts) if starts else None,
        end=min(ends) if ends else None,
        spans=None if span.hosts is None else (Span(None, None, span.hosts),),
    )


def _align_up(moment: datetime, step: timedelta) -> datetime:
    start = bucket_start(moment, step)
    return start if start == as_utc(moment) else start + step


def _tier_bounds(
    connection: Connection,
    filters: Filters,
    width: int,
    lo: datetime | None,
    hi: datetime | None,
) -> tuple[datetime | None, datetime | None]:
    """The first and last tier bucket starts of ``width`` in ``[lo, hi)`` (index lookups on
    ``ix_metrics_tiers_time``, or the primary key with a host)."""
    where: list[ColumnElement[bool]] = [
        _TIER.width_seconds == width,
        _TIER.metric_type == filters.metric_type,
    ]
    if filters.host is not None:
        where.append(_TIER.host == filters.host)
    if lo is not None:
        where.append(_TIER.timestamp >= lo)
    if hi is not None:
        where.append(_TIER.timestamp < hi)
    first = connection.execute(select(func.min(_TIER.timestamp)).where(*where)).scalar()
    last = connection.execute(select(func.max(_TIER.timestamp)).where(*where)).scalar()
    return (as_utc(first) if first is not None else None), (
        as_utc(last) if last is not None else None
    )


def _dirty_spans(
    connection: Connection, filters: Filters, step: timedelta, lo: datetime, hi: datetime
) -> list[Span]:
    """The tier log's entries overlapping ``[lo, hi)``, widened to whole tier buckets and
    clipped to ``[lo, hi)``; hosts with the same span share one."""
    stmt = select(_LOG.host, _LOG.first_ts, _LOG.last_ts).where(
        _LOG.metric_type == filters.metric_type,
        _LOG.last_ts >= lo,
        _LOG.first_ts < hi,
    )
    if filters.host is not None:
        stmt = stmt.where(_LOG.host == filters.host)
    per_host: dict[str, list[list[datetime]]] = defaultdict(list)
    entries = sorted(
        (host, max(lo, bucket_start(first, step)), min(hi, bucket_start(last, step) + step))
        for host, first, last in connection.execute(stmt)
    )
    for host, a, b in entries:
        spans = per_host[host]
        if spans and a <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], b)
        else:
            spans.append([a, b])
    hosts_of: dict[tuple[datetime, datetime], list[str]] = defaultdict(list)
    for host, spans in per_host.items():
        for a, b in spans:
            hosts_of[a, b].append(host)
    return [Span(a, b, tuple(sorted(hosts))) for (a, b), hosts in sorted(hosts_of.items())]


def _cheaper_spans(
    connection: Connection,
    filters: Filters,
    width: int,
    lo: datetime,
    hi: datetime,
    dirty: list[Span],
) -> list[Span]:
    """``dirty``, or their times for every host when reading that is cheaper.

    Selecting a host's snapshots reads the host out of each document (a second
    decompression of a compressed one), so it costs about twice an unfiltered read. When
    many hosts are marked (the day being written: every host), reading every host's
    snapshots over the marked times, and no tier row there, is cheaper, and as exact:
    snapshots are what the tiers stand for.
    """
    stmt = select(func.count(func.distinct(_TIER.host))).where(
        _TIER.width_seconds == width,
        _TIER.metric_type == filters.metric_type,
        _TIER.timestamp >= lo,
        _TIER.timestamp < hi,
    )
    hosts = int(connection.execute(stmt).scalar() or 0)
    merged: list[list[datetime]] = []
    for span in sorted(dirty, key=lambda s: (s.start, s.end)):
        assert span.start is not None and span.end is not None
        if merged and span.start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], span.end)
        else:
            merged.append([span.start, span.end])
    filtered = 0.0
    for span in dirty:
        assert span.start is not None and span.end is not None
        filtered += 2 * (span.end - span.start).total_seconds() * len(span.hosts or ())
    unfiltered = hosts * sum((b - a).total_seconds() for a, b in merged)
    if unfiltered >= filtered:
        return dirty
    return [Span(a, b) for a, b in merged]


def spans_clause(spans: tuple[Span, ...], timestamp: Any, host: Any) -> ColumnElement[bool]:
    """``spans`` as a SQLAlchemy condition on the ``timestamp`` and ``host`` expressions."""
    ors: list[ColumnElement[bool]] = []
    for span in spans:
        ands: list[ColumnElement[bool]] = []
        if span.start is not None:
            ands.append(timestamp >= span.start)
        if span.end is not None:
            ands.append(timestamp < span.end)
        if span.hosts is not None:
            ands.append(host.in_(span.hosts) if span.hosts else false())
        ors.append(and_(true(), *ands))
    return or_(false(), *ors)


def tier_rows(connection: Connection, filters: Filters) -> list[tuple[datetime, str, Any]]:
    """The tier rows ``filters`` (a plan's ``tiers``) selects, as ``(timestamp,
    metric_type, document)`` rows in time order."""
    assert filters.tier_width is not None
    stmt = select(_TIER.timestamp, _TIER.metric_type, _TIER.metric_data).where(
        _TIER.width_seconds == filters.tier_width,
        _TIER.metric_type == filters.metric_type,
    )
    if filters.start is not None:
        stmt = stmt.where(_TIER.timestamp >= filters.start)
    if filters.end is not None:
        stmt = stmt.where(_TIER.timestamp < filters.end)
    if filters.host is not None:
        stmt = stmt.where(_TIER.host == filters.host)
    if filters.exclude:
        stmt = stmt.where(~spans_clause(filters.exclude, _TIER.timestamp, _TIER.host))
    stmt = stmt.order_by(_TIER.timestamp, _TIER.host)
    return [(as_utc(ts), mt, doc) for ts, mt, doc in connection.execute(stmt)]


__all__ = ["TierPlan", "plan", "spans_clause", "tier_rows", "tier_width"]
