"""The cheap reads a report needs besides its one ``load_frame``.

Each function takes an open SQLAlchemy ``Connection`` and reads little: a few hundred of
the newest raw rows (the collection interval), the rolled-up rows of the range (few by
design: one per stored bucket), a sample of snapshots for the top-process lists (one
indexed lookup per sampled instant), the policy and config rows. Metric paths never reach
SQL text; the only JSON keys used are fixed ones (``host``, ``_rollup``, ``processes``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from metrics_toolkit.analysis.reads import (
    RolledRow,
    Scope,
    rolled_rows,
    sample_intervals,
)
from metrics_toolkit.analysis.reads import (
    host_label as _host_label,
)
from metrics_toolkit.intervals import as_utc
from metrics_toolkit.store.config import get_config
from metrics_toolkit.store.models import MetricsSnapshot
from metrics_toolkit.store.sqltypes import UTCDateTime

_DATA = MetricsSnapshot.metric_data


@dataclass(frozen=True)
class ProcessSample:
    """The top-process lists of one snapshot (raw label lists, checked by the caller)."""

    host: str
    timestamp: datetime
    top_cpu: Any
    top_memory: Any


def process_samples(
    connection: Connection, scope: Scope, *, instants: int = 96, per_instant: int = 8
) -> list[ProcessSample]:
    """Snapshots holding top-process lists, sampled evenly over the scope.

    For each of ``instants`` evenly spaced times (rounded up to whole minutes, where the
    history generator puts its lists), the first ``per_instant`` snapshots at or after it
    that carry ``processes.top_cpu``, before the next instant: one small indexed lookup
    each (the same compiled statement), so the cost does not grow with the range's rows.
    """
    span = (scope.end - scope.start).total_seconds()
    if span <= 0 or instants < 1:
        return []
    step = span / instants
    top_cpu = _DATA["processes"]["top_cpu"]
    stmt = select(_host_label, MetricsSnapshot.timestamp, top_cpu, _DATA["processes"]["top_memory"])
    # Only the instant's own bounds on the timestamp, so the index scan starts there.
    stmt = stmt.where(
        MetricsSnapshot.metric_type == scope.metric_type,
        MetricsSnapshot.timestamp >= bindparam("lo", type_=UTCDateTime()),
        MetricsSnapshot.timestamp < bindparam("hi", type_=UTCDateTime()),
        top_cpu.as_string().is_not(None),
    )
    if scope.host is not None:
        stmt = stmt.where(_host_label == scope.host)
    stmt = stmt.order_by(MetricsSnapshot.timestamp).limit(per_instant)
    out: list[ProcessSample] = []
    seen: set[datetime] = set()
    for i in range(instants):
        at = scope.start + timedelta(seconds=i * step)
        if at.second or at.microsecond:
            at = at.replace(second=0, microsecond=0) + timedelta(minutes=1)
        if at in seen or at >= scope.end:
            continue
        seen.add(at)
        until = min(scope.end, at + timedelta(seconds=max(step, 60)))
        for host, stamp, cpu, memory in connection.execute(stmt, {"lo": at, "hi": until}):
            out.append(ProcessSample(str(host), as_utc(stamp), cpu, memory))
    return out


def read_config(connection: Connection, keys: Sequence[str]) -> dict[str, Any]:
    """The stored (or default) values of known config keys."""
    with Session(bind=connection) as session:
        return {key: get_config(session=session, key=key) for key in keys}


__all__ = [
    "ProcessSample",
    "RolledRow",
    "Scope",
    "process_samples",
    "read_config",
    "rolled_rows",
    "sample_intervals",
]
