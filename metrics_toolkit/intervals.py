"""Interval strings of the rollup rule: ``10s``, ``5min``, ``1h``, ``1D``.

One parser serves the collector's ``--interval``, the archive policy's
``downsample_interval``, ``load_frame(interval=...)``, reports and the explorer, so the
same string means the same width everywhere.

A width must divide one day evenly (``1s`` .. ``12h``) or be a whole number of days
(``1D``, ``7D``), so every width that is stored nests into one day and buckets aligned to
the Unix epoch line up with UTC midnight.

This module is also the one home of the bucket start (:func:`bucket_start` on datetimes,
:func:`bucket_start_ticks` on integer epoch ticks, for Python ints and numpy arrays alike)
and of the time rule under it (:func:`as_utc`: naive means UTC). Every Python caller uses
them; the SQL forms live in :mod:`metrics_toolkit.rollup.sql` and
``tests/test_bucket_start.py`` ties each to :func:`bucket_start` on both databases
(docs/design.md §3, the rollup rule).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, overload

from metrics_toolkit.errors import InvalidInterval

SECONDS_PER_DAY = 86_400
#: Where every bucket grid starts: the Unix epoch, in UTC.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
#: The widest interval accepted: 100 years of days (wider widths overflow date arithmetic).
MAX_DAYS = 36_525

# Accepted unit spellings -> seconds. Pandas-style; 'T' is pandas' old alias for minutes.
_UNITS: dict[str, int] = {
    "s": 1,
    "sec": 1,
    "min": 60,
    "T": 60,
    "h": 3600,
    "H": 3600,
    "D": SECONDS_PER_DAY,
    "d": SECONDS_PER_DAY,
}
_PATTERN = re.compile(r"^\s*(?P<n>\d+)\s*(?P<unit>[A-Za-z]+)\s*$")

ACCEPTED_FORMS = (
    "a positive whole number followed by s, min, h or D (e.g. 10s, 5min, 1h, 1D), "
    f"dividing one day evenly or being a whole number of days, at most {MAX_DAYS}D"
)


@dataclass(frozen=True, order=True)
class Interval:
    """A validated bucket width, in whole seconds.

    >>> Interval.parse("5min").seconds
    300
    >>> str(Interval.parse("3600s"))
    '1h'
    """

    seconds: int

    @classmethod
    def parse(cls, value: str | Interval | timedelta) -> Interval:
        """Parse ``value`` or raise :class:`InvalidInterval` listing the accepted forms."""
        if isinstance(value, Interval):
            return value
        if isinstance(value, timedelta):
            seconds_f = value.total_seconds()
            if seconds_f != int(seconds_f):
                msg = f"Invalid interval {value!r}: {ACCEPTED_FORMS}."
                raise InvalidInterval(msg)
            return cls._checked(int(seconds_f), str(value))
        if not isinstance(value, str):
            msg = f"Invalid interval {value!r}: expected a string such as '1h'; {ACCEPTED_FORMS}."
            raise InvalidInterval(msg)
        match = _PATTERN.match(value)
        if match is None or match["unit"] not in _UNITS:
            msg = f"Invalid interval {value!r}: {ACCEPTED_FORMS}."
            raise InvalidInterval(msg)
        return cls._checked(int(match["n"]) * _UNITS[match["unit"]], value)

    @classmethod
    def _checked(cls, seconds: int, original: str) -> Interval:
        if seconds <= 0:
            msg = f"Invalid interval {original!r}: the width must be positive; {ACCEPTED_FORMS}."
            raise InvalidInterval(msg)
        if seconds > MAX_DAYS * SECONDS_PER_DAY:
            msg = f"Invalid interval {original!r}: wider than {MAX_DAYS} days; {ACCEPTED_FORMS}."
            raise InvalidInterval(msg)
        if SECONDS_PER_DAY % seconds and seconds % SECONDS_PER_DAY:
            msg = (
                f"Invalid interval {original!r}: {seconds} s neither divides one day evenly nor "
                f"is a whole number of days; {ACCEPTED_FORMS}."
            )
            raise InvalidInterval(msg)
        return cls(seconds)

    @property
    def timedelta(self) -> timedelta:
        return timedelta(seconds=self.seconds)

    @property
    def pandas_rule(self) -> str:
        """The rule for ``DataFrame.resample`` (always in seconds, so never ambiguous)."""
        return f"{self.seconds}s"

    @property
    def postgres(self) -> str:
        """The width as a PostgreSQL interval literal, for ``date_bin``."""
        return f"{self.seconds} seconds"

    def divides(self, other: Interval) -> bool:
        """True when buckets of ``other`` are made of whole buckets of ``self``."""
        return other.seconds % self.seconds == 0

    def __str__(self) -> str:
        for unit, size in (("D", SECONDS_PER_DAY), ("h", 3600), ("min", 60)):
            if self.seconds % size == 0:
                return f"{self.seconds // size}{unit}"
        return f"{self.seconds}s"


def parse_interval(value: str | Interval | timedelta) -> Interval:
    """Parse an interval string such as ``"10s"``, ``"5min"``, ``"1h"`` or ``"1D"``."""
    return Interval.parse(value)


def as_utc(moment: datetime | str) -> datetime:
    """``moment`` as an aware UTC datetime; a naive one is taken to be UTC already.

    Text is read as ISO 8601: SQLite expressions such as ``min(timestamp)`` bypass the
    column type and return the stored text.
    """
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is UTC:
        return moment
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def epoch_microseconds(moment: datetime) -> int:
    """Whole microseconds since the Unix epoch (naive datetimes count as UTC)."""
    return (as_utc(moment) - EPOCH) // _MICROSECOND


@overload
def bucket_start_ticks(ticks: int, width: int) -> int: ...
@overload
def bucket_start_ticks(ticks: Any, width: int) -> Any: ...
def bucket_start_ticks(ticks: Any, width: int) -> Any:
    """The bucket start of integer epoch ``ticks`` for buckets ``width`` ticks wide.

    The largest multiple of ``width`` at or below ``ticks``: works on a Python int and on a
    numpy integer array. Python's and numpy's ``%`` take the sign of the divisor, so times
    before 1970 floor (to the earlier start) as well.

    >>> bucket_start_ticks(299, 300), bucket_start_ticks(300, 300), bucket_start_ticks(-1, 300)
    (0, 300, -300)
    """
    return ticks - ticks % width


def bucket_start(moment: datetime, interval: str | Interval | timedelta) -> datetime:
    """The start of the epoch-aligned bucket ``[start, start + width)`` holding ``moment``.

    In UTC; a naive ``moment`` counts as UTC. A time exactly on a boundary starts a new
    bucket. Widths of whole days align to UTC midnight (``7D`` buckets start on Thursdays,
    as 1970-01-01 was one).

    >>> bucket_start(datetime(2026, 1, 5, 12, 34, 56, tzinfo=UTC), "5min")
    datetime.datetime(2026, 1, 5, 12, 30, tzinfo=datetime.timezone.utc)
    """
    width_us = Interval.parse(interval).seconds * 1_000_000
    return EPOCH + timedelta(microseconds=bucket_start_ticks(epoch_microseconds(moment), width_us))
