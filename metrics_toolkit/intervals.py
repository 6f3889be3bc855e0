"""Interval strings of the rollup rule: ``10s``, ``5min``, ``1h``, ``1D``.

One parser serves the collector's ``--interval``, the archive policy's
``downsample_interval``, ``load_frame(interval=...)``, reports and the explorer, so the
same string means the same width everywhere.

A width must divide one day evenly (``1s`` .. ``12h``) or be a whole number of days
(``1D``, ``7D``), so every width that is stored nests into one day and buckets aligned to
the Unix epoch line up with UTC midnight.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from metrics_toolkit.errors import InvalidInterval

SECONDS_PER_DAY = 86_400
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
