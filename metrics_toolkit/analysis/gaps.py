"""The one gap algorithm and the one ``Gap``, for the report, the explorer and notebooks.

A host's range is covered by rows ``[start, start + seconds)`` each holding ``samples``
snapshots: raw samples, the buckets of a frame, or stored rollups (whose ``samples`` say
how many raw samples they merged). A *gap* is where samples are missing:

- a stretch of the range no row covers (every expected sample is missing);
- a *partial gap*: a row holding fewer samples than its width calls for, reported at that
  row's resolution (a stored 1h bucket of 60 s samples holding 30 is half a gap: 30
  missing). A row counts as short when it misses more than one sample and more than
  :data:`TOLERANCE` of its expected samples (clock jitter moves a sample across a bucket
  edge; that is not a gap).

A row that starts before the range (a stored bucket reaching into it) counts in proportion
to its part inside; a row read by its start holds only samples of the range, and one
reaching past the end is expected to hold only its part inside. Neither edge makes a
phantom gap. Gaps that touch
merge into one, their missing samples added.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

#: A row missing at most this share of its expected samples (or one sample) is not short.
TOLERANCE = 0.1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Gap:
    """``[start, end)`` of ``host`` (None: every host shown) where samples are missing.

    ``missing`` samples of the ``expected`` ones are not there; ``partial`` when some are.
    Two gaps are equal when they are at the same place (start, end, host).
    """

    start: datetime
    end: datetime
    host: str | None = None
    missing: float = field(default=0.0, compare=False)
    expected: float = field(default=0.0, compare=False)

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    @property
    def partial(self) -> bool:
        """True when part of the expected samples are there (a short stored bucket)."""
        return round(self.missing) < round(self.expected)


def moment(seconds: float) -> datetime:
    """Epoch seconds as an aware UTC datetime."""
    return _EPOCH + timedelta(seconds=float(seconds))


def short(samples: float, expected: float) -> bool:
    """Does a row holding ``samples`` of ``expected`` count as a partial gap?"""
    missing = expected - samples
    return missing > 1 and missing > TOLERANCE * expected


def find_gaps(
    starts: Sequence[float],
    widths: Sequence[float],
    samples: Sequence[float],
    start: datetime,
    end: datetime,
    every: float,
    host: str | None = None,
) -> list[Gap]:
    """The gaps of ``[start, end)`` given rows (epoch-second ``starts``, sorted; ``widths``
    in seconds; ``samples`` each) of one host collected every ``every`` seconds."""
    lo, hi = start.timestamp(), end.timestamp()
    pieces: list[list[float]] = []  # [start, end, missing, expected]

    def add(a: float, b: float, missing: float, expected: float) -> None:
        if b <= a:
            return
        if pieces and pieces[-1][1] >= a:
            last = pieces[-1]
            last[1], last[2], last[3] = max(last[1], b), last[2] + missing, last[3] + expected
        else:
            pieces.append([a, b, missing, expected])

    cursor = lo
    for begin, width, count in zip(starts, widths, samples, strict=True):
        a, b = max(begin, lo), min(begin + width, hi)
        if b <= a or b <= cursor:
            continue
        if a > cursor:
            add(cursor, a, (a - cursor) / every, (a - cursor) / every)
        # A row read by its start holds only samples of the range; one starting before
        # the range (a stored bucket reaching into it) counts for its part inside.
        share = (b - a) / width if begin < lo else 1.0
        expected, held = (b - a) / every, count * share
        if short(held, expected):
            add(max(a, cursor), b, expected - held, expected)
        cursor = b
        if cursor >= hi:
            break
    if cursor < hi:
        add(cursor, hi, (hi - cursor) / every, (hi - cursor) / every)
    return [
        Gap(moment(a), moment(b), host, missing, expected) for a, b, missing, expected in pieces
    ]


def received(
    starts: Sequence[float],
    widths: Sequence[float],
    samples: Sequence[float],
    start: datetime,
    end: datetime,
) -> float:
    """Samples inside ``[start, end)``: a row starting before ``start`` (a stored bucket
    reaching into the range) counts in proportion to its part inside."""
    lo, hi = start.timestamp(), end.timestamp()
    total = 0.0
    for begin, width, count in zip(starts, widths, samples, strict=True):
        inside = min(begin + width, hi) - max(begin, lo)
        if inside > 0:
            total += count * min(1.0, inside / width) if begin < lo and width > 0 else count
    return total


__all__ = ["TOLERANCE", "Gap", "find_gaps", "moment", "received", "short"]
