"""Which part of a range is rolled up (and to what width), for the explorer's tints.

Gaps are found by the analysis layer (:mod:`metrics_toolkit.analysis.gaps`, the same
algorithm and ``Gap`` as the report); a part stored rolled up to a width coarser than the
view holds one point per stored bucket, which is not a gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from metrics_toolkit.analysis.gaps import Gap
from metrics_toolkit.documents import ROLLUP_KEY
from metrics_toolkit.errors import InvalidInterval
from metrics_toolkit.frames.sources import Source, connect
from metrics_toolkit.intervals import Interval
from metrics_toolkit.store.models import MetricsSnapshot


@dataclass(frozen=True)
class RolledUpPart:
    """Rows rolled up to ``interval`` cover ``[start, end)`` (``rows`` stored rows)."""

    interval: str
    start: datetime
    end: datetime
    rows: int

    def covers(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


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


__all__ = ["Gap", "RolledUpPart", "rolled_up_parts"]
