"""Coverage per host: samples expected vs received, gaps, rolled-up stretches, sparse hosts.

*Expected* is the range divided by the host's collection interval; *received* counts the
samples the database holds for the range, a rolled-up row counting the raw samples it
merged (its ``samples``), and a stored bucket reaching over an edge of the range counting
in proportion to its part inside. Gaps come from :func:`metrics_toolkit.analysis.gaps.find_gaps`
on the same rows: uncovered stretches, and stored buckets holding fewer samples than their
width calls for (partial gaps, at the stored resolution).

A host whose coverage is under :data:`SPARSE` (a few live snapshots beside weeks of
history) is *sparse*: reports list it apart with its sample count, and do not chart it,
summarise it or let it set an axis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from metrics_toolkit.analysis.buckets import SECONDS, samples
from metrics_toolkit.analysis.gaps import Gap, find_gaps, moment, received
from metrics_toolkit.analysis.reads import RolledRow
from metrics_toolkit.intervals import Interval

#: A host with less than this share of its expected samples is sparse.
SPARSE = 0.01


@dataclass(frozen=True)
class RolledSpan:
    """Rolled-up rows of one host at one width, back to back over ``[start, end)``."""

    interval: str
    start: datetime
    end: datetime
    rows: int
    samples: int


@dataclass(frozen=True)
class HostCompleteness:
    """Samples expected over the range (at ``sample_interval``) against those received."""

    host: str
    sample_interval: str
    expected: int
    received: int
    first: datetime | None
    last: datetime | None
    gaps: tuple[Gap, ...]
    rolled_up: tuple[RolledSpan, ...]

    @property
    def ratio(self) -> float:
        return self.received / self.expected if self.expected else 0.0

    @property
    def gap_seconds(self) -> float:
        """Time without samples: whole gaps, and the missing share of partial ones."""
        return sum(g.seconds * (g.missing / g.expected if g.expected else 1.0) for g in self.gaps)

    @property
    def sparse(self) -> bool:
        """Too few samples to chart or summarise (under :data:`SPARSE` of those expected)."""
        return self.ratio < SPARSE


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


def cover(
    host: str,
    rows: tuple[Sequence[float], Sequence[float], Sequence[float]],
    *,
    start: datetime,
    end: datetime,
    every: int,
    rolled: Sequence[RolledRow] = (),
) -> HostCompleteness:
    """The coverage of one host over ``[start, end)`` from its ``rows``: epoch-second bucket
    starts (sorted), widths in seconds and samples held, collected every ``every`` seconds;
    ``rolled``: its rolled-up rows (listed as stretches)."""
    stamps, widths, held = rows
    return HostCompleteness(
        host=host,
        sample_interval=_interval_name(every),
        expected=round((end - start).total_seconds() / every),
        received=round(received(stamps, widths, held, start, end)),
        first=moment(max(stamps[0], start.timestamp())) if len(stamps) else None,
        last=moment(min(stamps[-1] + widths[-1], end.timestamp())) if len(stamps) else None,
        gaps=tuple(find_gaps(stamps, widths, held, start, end, every, host or None)),
        rolled_up=tuple(rolled_spans(rolled)),
    )


def completeness(
    detail: pd.DataFrame,
    *,
    start: datetime,
    end: datetime,
    hosts: Sequence[str],
    sample_seconds: Mapping[str, int],
    rolled: Sequence[RolledRow],
    before: Sequence[RolledRow] = (),
) -> list[HostCompleteness]:
    """One entry per host (in ``hosts`` order) of a bucket frame over ``[start, end)``.

    ``sample_seconds`` gives each host's collection interval; ``rolled`` the rolled-up rows
    of the range; ``before`` the stored buckets starting before ``start`` and reaching into
    the range (:func:`metrics_toolkit.analysis.reads.straddling_rows`).
    """
    out = []
    index_hosts = detail.index.get_level_values("host") if len(detail) else pd.Index([])
    counts = samples(detail)
    for host in hosts:
        mask = np.asarray(index_hosts == host)
        part = detail[mask] if len(detail) else detail
        edge = [r for r in before if r.host == host]
        stamps = [r.timestamp.timestamp() for r in edge]
        widths = [float(r.seconds) for r in edge]
        held = [float(r.samples) for r in edge]
        if len(part):
            index = pd.DatetimeIndex(part.index.get_level_values("timestamp"))
            stamps += (index.as_unit("us").asi8 / 1e6).tolist()
            widths += part[SECONDS].to_numpy(dtype=np.float64).tolist()
            held += counts[mask].tolist()
        every = sample_seconds.get(host) or max(sample_seconds.values(), default=10)
        mine = [r for r in [*edge, *rolled] if r.host == host]
        out.append(
            cover(host, (stamps, widths, held), start=start, end=end, every=every, rolled=mine)
        )
    return out


def sparse_hosts(entries: Sequence[HostCompleteness]) -> list[str]:
    """The hosts whose coverage is under :data:`SPARSE`."""
    return [c.host for c in entries if c.sparse]


def _interval_name(seconds: int) -> str:
    try:
        return str(Interval.parse(f"{seconds}s"))
    except ValueError:
        return f"{seconds}s"


__all__ = [
    "SPARSE",
    "HostCompleteness",
    "RolledSpan",
    "completeness",
    "cover",
    "rolled_spans",
    "sparse_hosts",
]
