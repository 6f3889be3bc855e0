"""Small data factories for tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from metrics_toolkit.store.models import MetricsSnapshot

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def make_snapshot(
    timestamp: datetime | None = None,
    *,
    host: str = "test-host",
    metric_type: str = "aggregated",
    **metrics: Any,
) -> MetricsSnapshot:
    """A snapshot whose document nests ``cpu__usage_percent=5`` as ``{"cpu": {...}}``."""
    doc: dict[str, Any] = {"host": host}
    for name, value in metrics.items():
        node = doc
        *parents, leaf = name.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return MetricsSnapshot(timestamp=timestamp or T0, metric_type=metric_type, metric_data=doc)


def ticks(start: datetime, count: int, every: timedelta) -> list[datetime]:
    return [start + i * every for i in range(count)]
