"""The newest snapshots as stored, for the explorer's raw-rows view."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from metrics_toolkit.documents import ROLLUP_KEY
from metrics_toolkit.frames.sources import Source, connect
from metrics_toolkit.intervals import as_utc
from metrics_toolkit.store.models import MetricsSnapshot

MAX_ROWS = 100


@dataclass(frozen=True)
class RawRow:
    """One stored row: its timestamp (UTC), host label, metric_type and JSON document."""

    timestamp: datetime
    host: str
    metric_type: str
    document: dict[str, Any]

    @property
    def rollup_interval(self) -> str | None:
        """The width this row is rolled up to, or None for a raw snapshot."""
        meta = self.document.get(ROLLUP_KEY)
        interval = meta.get("interval") if isinstance(meta, dict) else None
        return interval if isinstance(interval, str) else None


def latest_snapshots(
    source: Source,
    *,
    hosts: Sequence[str] = (),
    before: datetime | None = None,
    metric_type: str = "aggregated",
    limit: int = 5,
) -> list[RawRow]:
    """The ``limit`` newest rows (at most :data:`MAX_ROWS`), newest first.

    ``hosts`` keeps rows of those host labels only; ``before`` keeps rows older than it.
    """
    host = func.coalesce(MetricsSnapshot.metric_data["host"].as_string(), "")
    stmt = select(
        MetricsSnapshot.timestamp, host, MetricsSnapshot.metric_type, MetricsSnapshot.metric_data
    ).where(MetricsSnapshot.metric_type == metric_type)
    if hosts:
        stmt = stmt.where(host.in_(list(hosts)))
    if before is not None:
        stmt = stmt.where(MetricsSnapshot.timestamp < before)
    stmt = stmt.order_by(MetricsSnapshot.timestamp.desc(), MetricsSnapshot.id.desc())
    stmt = stmt.limit(max(1, min(int(limit), MAX_ROWS)))
    with connect(source) as connection:
        return [
            RawRow(
                as_utc(ts), str(name), str(kind), doc if isinstance(doc, dict) else {"value": doc}
            )
            for ts, name, kind, doc in connection.execute(stmt)
        ]
