"""Which part of a range is rolled up (and to what width), and where collection has gaps.

Coverage is data (docs/design.md §3): a bucket with no samples is a gap, never silently bridged.
A part stored rolled up to a width coarser than the view holds one point per stored
bucket, which is not a gap; :func:`find_gaps` knows the difference from the rolled-up
parts :func:`rolled_up_parts` finds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from metrics_toolkit.documents import ROLLUP_KEY
from metrics_toolkit.errors import InvalidInterval
from metrics_toolkit.frames.sources import Source, connect
from metrics_toolkit.intervals import Interval
from metrics_toolkit.store.models import MetricsSnapshot

#: Consecutive buckets further apart than this many expected steps enclose a gap.
GAP_FACTOR = 1.5


@dataclass(frozen=True)
class RolledUpPart:
    """Rows rolled up to ``interval`` cover ``[start, end)`` (``rows`` stored rows)."""

    interval: str
    start: datetime
    end: datetime
    rows: int

    def covers(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


@dataclass(frozen=True)
class Gap:
    """No samples in ``[start, end)`` (for ``host``, or for every host when None)."""

    start: datetime
    end: datetime
    host: str | None = None

    @property
    def length(self) -> timedelta:
        return self.end - self.start


def _as_utc(value: Any) -> datetime:
    if isinstance(value, str):  # SQLite min()/max() over the text column bypass the type
        value = datetime.fromisoformat(value)
    moment: datetime = value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def rolled_up_parts(
    source: Source,
    start: datetime,
    end: datetime,
    *,
    hosts: Sequence[str] = (),
    metric_type: str = "aggregated",
) -> list[RolledUpPart]:
    """The rolled-up rows in ``[start, end)``, one part per stored width, oldest first.

    One grouped query over the range; the width name comes from each row's ``_rollup``
    key, so it shows what is stored, whatever the policy says today.
    """
    interval = MetricsSnapshot.metric_data[ROLLUP_KEY]["interval"].as_string()
    stmt = (
        select(
            interval,
            func.min(MetricsSnapshot.timestamp),
            func.max(MetricsSnapshot.timestamp),
            func.count(),
        )
        .where(
            MetricsSnapshot.metric_type == metric_type,
            MetricsSnapshot.timestamp >= start,
            MetricsSnapshot.timestamp < end,
            interval.is_not(None),
        )
        .group_by(interval)
    )
    if hosts:
        host = func.coalesce(MetricsSnapshot.metric_data["host"].as_string(), "")
        stmt = stmt.where(host.in_(list(hosts)))
    parts = []
    with connect(source) as connection:
        for name, first, last, rows in connection.execute(stmt):
            try:
                width = Interval.parse(name)
            except InvalidInterval:
                continue  # a malformed rollup row is read as raw by the rule, too
            parts.append(
                RolledUpPart(str(width), _as_utc(first), _as_utc(last) + width.timedelta, rows)
            )
    return sorted(parts, key=lambda part: part.start)


def _step_at(
    moment: datetime, width: Interval, raw_step: float, parts: Sequence[RolledUpPart]
) -> float:
    for part in parts:
        if part.covers(moment):
            return max(Interval.parse(part.interval).seconds, width.seconds)
    return raw_step


def find_gaps(
    stamps: Sequence[datetime] | pd.DatetimeIndex,
    width: Interval,
    parts: Sequence[RolledUpPart] = (),
    *,
    host: str | None = None,
) -> list[Gap]:
    """Gaps between the buckets that hold data (bucket starts ``stamps``, any order).

    The expected step is the view's ``width``, or the sample spacing where samples are
    sparser than buckets (the median step between raw buckets), or the stored width inside a
    part rolled up coarser. Two buckets more than :data:`GAP_FACTOR` steps apart enclose a
    gap starting one step after the first. Before the first and after the last bucket
    nothing is reported (the range may simply start before collection did).
    """
    index = pd.DatetimeIndex(stamps)
    if index.tz is None:
        index = index.tz_localize(UTC)
    index = index.tz_convert(UTC).unique().sort_values()
    if len(index) < 2:
        return []
    moments = [stamp.to_pydatetime() for stamp in index]
    steps = np.asarray((index[1:] - index[:-1]).total_seconds(), dtype=np.float64)
    coarse = [p for p in parts if Interval.parse(p.interval).seconds > width.seconds]
    raw = [
        step
        for moment, step in zip(moments[:-1], steps, strict=True)
        if not any(part.covers(moment) for part in coarse)
    ]
    raw_step = max(float(np.median(raw)) if raw else width.seconds, width.seconds)
    gaps = []
    for moment, following, step in zip(moments[:-1], moments[1:], steps, strict=True):
        expected = _step_at(moment, width, raw_step, coarse)
        if step > GAP_FACTOR * expected:
            gaps.append(Gap(moment + timedelta(seconds=expected), following, host))
    return gaps
