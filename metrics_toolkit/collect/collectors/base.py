"""What every collector module shares: the ``Source`` protocol and small pure helpers.

A collector (a *source*) reads psutil and returns its sections of the snapshot document,
e.g. ``{"memory": {...}, "swap": {...}}``. It keeps whatever state it needs for rates
between calls, never touches the database, never prints, and logs expected gaps (a missing
API, a process that is not ours) at debug level only. Its ``FIELDS`` are its rows of the
metric catalog, so each unit and description is declared once, in ``catalog.py``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Protocol

from metrics_toolkit.catalog import MetricSpec

Section = dict[str, Any]

# Decimal places kept for computed floats (percents, rates): far below measurement noise,
# and it keeps the stored JSON small.
DIGITS = 3


class Source(Protocol):
    """One collector: ``collect()`` returns ``{section name: section dict}``."""

    FIELDS: ClassVar[tuple[MetricSpec, ...]]

    def collect(self) -> dict[str, Section]:
        """Read the machine once; omit leaves that cannot be known on this tick."""
        ...


def clean_key(name: str) -> str:
    """A machine-provided name (disk, interface, mount, sensor) usable as a dict key.

    Dots become ``_`` so dotted metric paths stay unambiguous; an empty name becomes ``_``.
    """
    return name.replace(".", "_") or "_"


def unique_key(name: str, taken: set[str]) -> str:
    """``clean_key(name)``, suffixed ``_2``, ``_3``... if already in ``taken`` (then updated)."""
    key = clean_key(name)
    candidate, n = key, 1
    while candidate in taken:
        n += 1
        candidate = f"{key}_{n}"
    taken.add(candidate)
    return candidate


def share(part: float, whole: float) -> float | None:
    """``part / whole * 100`` clamped to [0, 100] and rounded; ``None`` when ``whole <= 0``."""
    if whole <= 0:
        return None
    return round(min(100.0, max(0.0, part / whole * 100.0)), DIGITS)


def finite(value: Any) -> float | int | None:
    """``value`` when it is a finite number (not a bool), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
