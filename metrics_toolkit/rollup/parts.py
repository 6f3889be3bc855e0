"""Reading rows for the rollup rule: raw and rolled-up rows as *parts* with statistics.

The semantics live in :mod:`metrics_toolkit.rollup.rule` (its docstring defines every
statistic); this module only reads inputs: timestamps to epoch time, raw documents to flat
values, rolled-up documents (``"_rollup"``) to per-leaf :class:`LeafStats`, checked.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from metrics_toolkit import catalog
from metrics_toolkit.documents import ROLLUP_KEY, flatten, host_of, strip_metrics
from metrics_toolkit.errors import InvalidInterval, InvalidSnapshot
from metrics_toolkit.intervals import Interval, as_utc, epoch_microseconds

#: A snapshot row: (timestamp UTC, metric_type, metric_data document).
Row = tuple[datetime, str, dict[str, Any]]
#: How a leaf's kind is decided; the catalog by default.
KindOf = Callable[[str], catalog.Kind]


#: Statistics kept for every leaf.
COMMON_STATS = ("count", "first", "last", "first_time", "last_time")
#: Statistics kept for gauge and rate leaves.
GAUGE_STATS = ("count", "sum", "min", "max", "first", "last", "first_time", "last_time")
#: Statistics kept for counter leaves.
COUNTER_STATS = (
    "count",
    "first",
    "last",
    "first_time",
    "last_time",
    "increase",
    "resets",
    "max_rate",
)
#: Every per-leaf statistic, in the canonical column order.
LEAF_STATS = (*GAUGE_STATS, "increase", "resets", "max_rate")
#: Statistics stored as whole numbers.
INT_STATS = frozenset({"count", "resets"})


def _utc(ts: datetime) -> datetime:
    """:func:`~metrics_toolkit.intervals.as_utc`, but a row's timestamp must be a datetime:
    text here is bad input (a snapshot row), not SQLite's stored form."""
    if not isinstance(ts, datetime):
        msg = f"Invalid timestamp {ts!r}: expected a datetime (timezone-aware UTC)."
        raise InvalidSnapshot(msg)
    return as_utc(ts)


def epoch_seconds(ts: datetime) -> float:
    """Seconds since the Unix epoch as a float, the unit of ``first_time``/``last_time``."""
    return epoch_microseconds(ts) / 1_000_000


@dataclass(slots=True)
class LeafStats:
    """The mergeable statistics of one leaf over one part or bucket.

    Values are floats (``count`` and ``resets`` are ints); statistics that do not apply
    to the leaf's kind are ``nan`` (``max_rate`` is also ``nan`` with fewer than two
    samples). Times are epoch seconds, UTC.
    """

    count: int
    first: float
    last: float
    first_time: float
    last_time: float
    sum: float = math.nan
    min: float = math.nan
    max: float = math.nan
    increase: float = math.nan
    resets: int = 0
    max_rate: float = math.nan

    @classmethod
    def sample(cls, value: float, time: float, kind: catalog.Kind) -> LeafStats:
        """One raw sample as a bucket of one."""
        if kind == "counter":
            return cls(1, value, value, time, time, increase=0.0)
        return cls(1, value, value, time, time, value, value, value)

    def get(self, stat: str) -> float:
        """A statistic by name (``count`` and ``resets`` as floats)."""
        return float(getattr(self, stat))


@dataclass(slots=True)
class RowStats:
    """One input row read as a part: its per-leaf statistics and labels."""

    timestamp: datetime
    metric_type: str
    host: str
    interval_seconds: int  # 0 for a raw row
    samples: int
    labels: dict[str, Any]
    leaves: dict[str, LeafStats] = field(default_factory=dict)

    @property
    def end(self) -> float:
        """Time of the row's latest sample (its timestamp when it holds no leaf)."""
        if not self.leaves:
            return epoch_seconds(self.timestamp)
        return max(s.last_time for s in self.leaves.values())


def is_rolled_up(doc: Mapping[str, Any]) -> bool:
    """True for a rolled-up row (one holding the reserved ``"_rollup"`` key)."""
    return ROLLUP_KEY in doc


def row_stats(
    timestamp: datetime,
    metric_type: str,
    doc: Mapping[str, Any],
    *,
    kind_of: KindOf = catalog.kind_of,
) -> RowStats:
    """Read one raw or rolled-up row as a part.

    Raises :class:`InvalidSnapshot` when a rolled-up row's ``"_rollup"`` lacks what its
    leaves' kinds need (for example a counter leaf without ``increase``).
    """
    ts = _utc(timestamp)
    if not isinstance(doc, Mapping):
        msg = f"Invalid snapshot at {ts.isoformat()}: the document must be a JSON object."
        raise InvalidSnapshot(msg)
    part = RowStats(ts, metric_type, host_of(doc), 0, 1, strip_metrics(doc))
    if is_rolled_up(doc):
        _read_rollup(part, doc[ROLLUP_KEY], kind_of)
    else:
        time = epoch_seconds(ts)
        part.leaves = {
            path: LeafStats.sample(value, time, kind_of(path))
            for path, value in flatten(doc).items()
        }
    return part


def _read_rollup(part: RowStats, meta: Any, kind_of: KindOf) -> None:
    where = f"rolled-up row at {part.timestamp.isoformat()} (host {part.host!r})"
    if not isinstance(meta, Mapping):
        msg = f"Invalid {where}: '_rollup' must be an object."
        raise InvalidSnapshot(msg)
    try:
        part.interval_seconds = Interval.parse(meta.get("interval")).seconds  # type: ignore[arg-type]
    except InvalidInterval as error:
        msg = f"Invalid {where}: '_rollup.interval': {error}"
        raise InvalidSnapshot(msg) from error
    samples = meta.get("samples")
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 0:
        msg = f"Invalid {where}: '_rollup.samples' must be a whole number >= 0, got {samples!r}."
        raise InvalidSnapshot(msg)
    part.samples = samples
    maps: dict[str, dict[str, float]] = {}
    for stat in LEAF_STATS:
        value = meta.get(stat, {})
        if not isinstance(value, Mapping):
            msg = f"Invalid {where}: '_rollup.{stat}' must be an object shaped like the document."
            raise InvalidSnapshot(msg)
        maps[stat] = flatten(value)
    for path, count in maps["count"].items():
        if count != int(count) or count < 0:
            msg = f"Invalid {where}: '_rollup.count' of {path!r} must be a whole number >= 0."
            raise InvalidSnapshot(msg)
        if count == 0:
            continue
        kind = kind_of(path)
        needed = COUNTER_STATS[:-1] if kind == "counter" else GAUGE_STATS
        missing = [stat for stat in needed if path not in maps[stat]]
        if missing:
            msg = (
                f"Invalid {where}: {kind} leaf {path!r} has no {', '.join(missing)} in "
                f"'_rollup' (a {kind} keeps {', '.join(needed)})."
            )
            raise InvalidSnapshot(msg)
        stats = LeafStats(
            int(count),
            maps["first"][path],
            maps["last"][path],
            maps["first_time"][path],
            maps["last_time"][path],
        )
        if kind == "counter":
            stats.increase = maps["increase"][path]
            stats.resets = int(maps["resets"][path])
            stats.max_rate = maps["max_rate"].get(path, math.nan)
        else:
            stats.sum, stats.min, stats.max = (maps[s][path] for s in ("sum", "min", "max"))
        part.leaves[path] = stats


def read_parts(rows: Iterable[Row], *, kind_of: KindOf = catalog.kind_of) -> list[Part]:
    """Read rows as parts, in *row order*: by host, metric type and time, input order
    breaking ties (a stable sort). Raw documents are flattened once here.
    """
    parts = [Part.read(ts, metric_type, doc, kind_of) for ts, metric_type, doc in rows]
    parts.sort(key=lambda p: (p.host, p.metric_type, p.micros))
    return parts


@dataclass(slots=True)
class Part:
    """An input row as the rollup reads it (see :func:`read_parts`).

    Raw rows keep their flat numeric ``values`` (``stats`` is ``None``); rolled-up rows
    keep their statistics in ``stats``. ``micros`` is the timestamp in epoch microseconds.
    """

    host: str
    metric_type: str
    timestamp: datetime
    micros: int
    doc: Mapping[str, Any]
    values: dict[str, float]
    stats: RowStats | None

    @classmethod
    def read(cls, ts: datetime, metric_type: str, doc: Any, kind_of: KindOf) -> Part:
        if isinstance(doc, Mapping) and not is_rolled_up(doc):
            ts = _utc(ts)
            micros = epoch_microseconds(ts)
            return cls(host_of(doc), metric_type, ts, micros, doc, flatten(doc), None)
        stats = row_stats(ts, metric_type, doc, kind_of=kind_of)
        micros = epoch_microseconds(stats.timestamp)
        return cls(stats.host, metric_type, stats.timestamp, micros, doc, {}, stats)

    def as_stats(self, kind_of: KindOf) -> RowStats:
        if self.stats is not None:
            return self.stats
        time = self.micros / 1_000_000
        part = RowStats(self.timestamp, self.metric_type, self.host, 0, 1, strip_metrics(self.doc))
        part.leaves = {p: LeafStats.sample(v, time, kind_of(p)) for p, v in self.values.items()}
        return part
