"""The cheap reads the analysis layer needs besides ``load_frame``.

Each function takes an open SQLAlchemy ``Connection`` and reads little: a few hundred of
the newest raw rows (the collection interval per host) and the rolled-up rows of a range
(few by design: one per stored bucket), including a stored bucket that starts before the
range and reaches into it (so a range starting mid-bucket is counted honestly). Metric
paths never reach SQL text; the only JSON keys used are fixed ones (``host``, ``_rollup``).
"""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVarTuple

from sqlalchemy import ColumnElement, Connection, Select, func, select, text

from metrics_toolkit.documents import ROLLUP_KEY
from metrics_toolkit.errors import InvalidInterval
from metrics_toolkit.intervals import Interval, as_utc
from metrics_toolkit.store.models import SNAPSHOT_ROLLUP_SQL, MetricsSnapshot

_Ts = TypeVarTuple("_Ts")
_DATA = MetricsSnapshot.metric_data
host_label: ColumnElement[str] = func.coalesce(_DATA["host"].as_string(), "")
_host_label = host_label
_ROLLUP_INTERVAL = _DATA[ROLLUP_KEY]["interval"].as_string()
#: How far before a range a stored bucket reaching into it may start (the widest rollup).
WIDEST_STORED = timedelta(days=7)


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
    rolled = SNAPSHOT_ROLLUP_SQL.get(connection.dialect.name)
    if rolled is not None:  # the partial index's own condition: it finds them at once
        stmt = stmt.where(text(rolled))
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


def collection_intervals(
    connection: Connection, scope: Scope, rolled: Sequence[RolledRow] = ()
) -> dict[str, int]:
    """Each host's collection interval in seconds: from its newest raw rows
    (:func:`sample_intervals`), else from its fullest rolled-up row (width / samples)."""
    found = sample_intervals(connection, scope)
    for row in sorted(rolled, key=lambda r: -r.samples):  # the fullest row of a host wins
        if row.host not in found and row.samples > 0:
            found[row.host] = max(1, round(row.seconds / row.samples))
    return found


def straddling_rows(connection: Connection, scope: Scope) -> list[RolledRow]:
    """The rolled-up rows that start before ``scope.start`` and reach into the scope.

    ``load_frame`` reads rows by their start, so a stored bucket labelled 16:00 is not read
    by a range starting at 16:29; its samples still cover the range's first half hour.
    """
    before = Scope(scope.metric_type, scope.start - WIDEST_STORED, scope.start, scope.host)
    return [
        row
        for row in rolled_rows(connection, before)
        if row.timestamp + timedelta(seconds=row.seconds) > scope.start
    ]


__all__ = [
    "WIDEST_STORED",
    "RolledRow",
    "Scope",
    "collection_intervals",
    "host_label",
    "rolled_rows",
    "sample_intervals",
    "straddling_rows",
]
