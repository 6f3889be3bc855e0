"""Data completeness per host: samples expected vs received, gaps, rolled-up stretches.

*Expected* is the report's range divided by the host's collection interval; *received*
counts the snapshots the database holds for the range (a rolled-up row counts the samples
it merged). *Gaps* are stretches of the range with no sample at all, found at the
resolution of the detail buckets: a bucket with at least one sample counts as covered, so
gaps shorter than one bucket do not show (they lower ``received`` instead).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from metrics_toolkit.intervals import Interval
from metrics_toolkit.reporting.buckets import SECONDS, samples
from metrics_toolkit.reporting.metadata import RolledRow
from metrics_toolkit.reporting.model import Gap, HostCompleteness, RolledSpan

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _moment(seconds: float) -> datetime:
    return _EPOCH + timedelta(seconds=float(seconds))


def gaps(
    starts: Sequence[float], widths: Sequence[float], start: datetime, end: datetime
) -> list[Gap]:
    """Uncovered stretches of ``[start, end)`` given rows ``[starts[i], starts[i] + widths[i])``.

    Times are epoch seconds, rows sorted by start.
    """
    lo, hi = start.timestamp(), end.timestamp()
    cursor = lo
    found = []
    for begin, width in zip(starts, widths, strict=True):
        if begin > cursor:
            found.append(Gap(_moment(cursor), _moment(min(begin, hi))))
        cursor = max(cursor, begin + width)
        if cursor >= hi:
            break
    if cursor < hi:
        found.append(Gap(_moment(cursor), end))
    return [g for g in found if g.seconds > 0]


def rolled_spans(rows: Sequence[RolledRow]) -> list[RolledSpan]:
    """Back-to-back rolled-up rows of one host merged into spans, per width (sorted rows)."""
    spans: list[RolledSpan] = []
    for row in rows:
        last = spans[-1] if spans else None
        if last is not None and last.interval == row.interval and last.end == row.timestamp:
            spans[-1] = RolledSpan(
                last.interval,
                last.start,
                row.timestamp + timedelta(seconds=row.seconds),
                last.rows + 1,
                last.samples + row.samples,
            )
        else:
            spans.append(
                RolledSpan(
                    row.interval,
                    row.timestamp,
                    row.timestamp + timedelta(seconds=row.seconds),
                    1,
                    row.samples,
                )
            )
    return spans


def completeness(
    detail: pd.DataFrame,
    *,
    start: datetime,
    end: datetime,
    hosts: Sequence[str],
    sample_seconds: Mapping[str, int],
    rolled: Sequence[RolledRow],
) -> list[HostCompleteness]:
    """One entry per host (in ``hosts`` order); ``sample_seconds`` gives each interval."""
    out = []
    index_hosts = detail.index.get_level_values("host") if len(detail) else pd.Index([])
    received_all = samples(detail)
    span = (end - start).total_seconds()
    for host in hosts:
        mask = np.asarray(index_hosts == host)
        part = detail[mask] if len(detail) else detail
        stamps = (
            pd.DatetimeIndex(part.index.get_level_values("timestamp")).as_unit("us").asi8 / 1e6
            if len(part)
            else np.array([])
        )
        widths = part[SECONDS].to_numpy(dtype=np.float64) if len(part) else np.array([])
        every = sample_seconds.get(host) or max(sample_seconds.values(), default=10)
        host_rolled = [r for r in rolled if r.host == host]
        out.append(
            HostCompleteness(
                host=host,
                sample_interval=_interval_name(every),
                expected=round(span / every),
                received=round(float(received_all[mask].sum())) if len(detail) else 0,
                first=_moment(max(stamps[0], start.timestamp())) if len(stamps) else None,
                last=_moment(min(stamps[-1] + widths[-1], end.timestamp()))
                if len(stamps)
                else None,
                gaps=tuple(gaps(stamps.tolist(), widths.tolist(), start, end)),
                rolled_up=tuple(rolled_spans(host_rolled)),
            )
        )
    return out


def _interval_name(seconds: int) -> str:
    try:
        return str(Interval.parse(f"{seconds}s"))
    except ValueError:
        return f"{seconds}s"


__all__ = ["completeness", "gaps", "rolled_spans"]
