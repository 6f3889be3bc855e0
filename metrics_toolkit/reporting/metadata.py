"""The cheap reads a report needs besides its one ``load_frame``.

Each function takes an open SQLAlchemy ``Connection`` and reads little: a few hundred of
the newest raw rows (the collection interval), the rolled-up rows of the range (few by
design: one per stored bucket), a sample of snapshots for the top-process lists (one
indexed lookup per sampled instant), the policy and config rows. Metric paths never reach
SQL text; the only JSON keys used are fixed ones (``host``, ``_rollup``, ``processes``).
"""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVarTuple

from sqlalchemy import ColumnElement, Connection, Select, bindparam, func, select
from sqlalchemy.orm import Session

from metrics_toolkit.documents import ROLLUP_KEY
from metrics_toolkit.errors import InvalidInterval
from metrics_toolkit.intervals import Interval, as_utc
from metrics_toolkit.store.config import get_config
from metrics_toolkit.store.models import MetricsSnapshot
from metrics_toolkit.store.sqltypes import UTCDateTime

_Ts = TypeVarTuple("_Ts")
_DATA = MetricsSnapshot.metric_data
_host_label: ColumnElement[str] = func.coalesce(_DATA["host"].as_string(), "")
_ROLLUP_INTERVAL = _DATA[ROLLUP_KEY]["interval"].as_string()


@dataclass(frozen=True)
class Scope:
    """Which snapshots a report reads: ``[start, end)`` of one metric_type (and host)."""

    metric_type: str
    start: datetime
    end: datetime
    host: str | None = None


def _where(stmt: Select[*_Ts], scope: Scope) -> Select[*_Ts]:
    stmt = stmt.where(
        MetricsSnapshot.metric_type == scope.metric_type,
        MetricsSnapshot.timestamp >= scope.start,
        MetricsSnapshot.timestamp < scope.end,
    )
    if scope.host is not None:
        stmt = stmt.where(_host_label == scope.host)
    return stmt


def sample_intervals(connection: Connection, scope: Scope, *, rows: int = 400) -> dict[str, int]:
    """The collection interval of each host in seconds, from the newest raw rows.

    The median spacing of up to ``rows`` of the newest raw (not rolled-up) snapshots of the
    range, per host: one backwards index scan. Hosts seen only in rolled-up rows, or
    with a single raw row, are missing from the result.
    """
    stmt = _where(select(_host_label, MetricsSnapshot.timestamp), scope).where(
        _ROLLUP_INTERVAL.is_(None)
    )
    stmt = stmt.order_by(MetricsSnapshot.timestamp.desc()).limit(rows)
    stamps: dict[str, list[datetime]] = defaultdict(list)
    for host, stamp in connection.execute(stmt):
        stamps[str(host)].append(as_utc(stamp))
    found = {}
    for host, times in stamps.items():
        steps = [(a - b).total_seconds() for a, b in itertools.pairwise(times) if a > b]
        if steps:
            found[host] = max(1, round(statistics.median(steps)))
    return found


@dataclass(frozen=True)
class RolledRow:
    """One rolled-up row of the range: its host, bucket start, width and raw samples."""

    host: str
    timestamp: datetime
    seconds: int
    interval: str
    samples: int


def rolled_rows(connection: Connection, scope: Scope) -> list[RolledRow]:
    """Every rolled-up row in the scope, by host then time (rows with a bad width skipped)."""
    stmt = _where(
        select(
            _host_label,
            MetricsSnapshot.timestamp,
            _ROLLUP_INTERVAL,
            _DATA[ROLLUP_KEY]["samples"].as_float(),
        ),
        scope,
    ).where(_ROLLUP_INTERVAL.is_not(None))
    out = []
    for host, stamp, name, samples in connection.execute(stmt):
        try:
            width = Interval.parse(name)
        except InvalidInterval:
            continue
        out.append(
            RolledRow(str(host), as_utc(stamp), width.seconds, str(width), int(samples or 0))
        )
    out.sort(key=lambda row: (row.host, row.timestamp))
    return out


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
