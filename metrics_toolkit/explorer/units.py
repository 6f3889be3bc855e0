"""Numbers for people in the explorer: chart axes in readable units (GiB, MB/s, %, ...).

Table cells use the reports' formatters (:mod:`metrics_toolkit.reporting.units`,
re-exported here), so a value reads the same in a report and in the explorer. Charts need
a divisor instead of text: :func:`axis_scale` picks the same prefixes for a whole axis.
Sizes use binary prefixes (GiB), rates decimal ones (MB/s), as the reports do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from metrics_toolkit.reporting.units import format_duration, format_value, format_values

_BINARY = (("TiB", 1024.0**4), ("GiB", 1024.0**3), ("MiB", 1024.0**2), ("KiB", 1024.0), ("B", 1.0))
_DECIMAL_RATE = (("GB/s", 1e9), ("MB/s", 1e6), ("kB/s", 1e3), ("B/s", 1.0))
_EVENTS = (("G/s", 1e9), ("M/s", 1e6), ("k/s", 1e3), ("/s", 1.0))
_DURATIONS = (("d", 86_400.0), ("h", 3600.0), ("min", 60.0), ("s", 1.0))


@dataclass(frozen=True)
class Scale:
    """Divide values by ``divisor`` to plot them in ``label`` units."""

    divisor: float
    label: str


def _pick(prefixes: Sequence[tuple[str, float]], magnitude: float) -> tuple[str, float]:
    for label, size in prefixes:
        if magnitude >= size:
            return label, size
    return prefixes[-1]


def axis_scale(unit: str, values: Sequence[float] | None = None) -> Scale:
    """The divisor and label that put a chart's values in readable units.

    The prefix is chosen from the largest absolute value of ``values`` (NaN ignored), so
    a memory chart reads in GiB and a quiet network in kB/s.

    >>> axis_scale("bytes", [3 * 1024**3])
    Scale(divisor=1073741824.0, label='GiB')
    """
    finite = [abs(float(v)) for v in values or () if math.isfinite(float(v))]
    peak = max(finite, default=0.0)
    if unit == "bytes":
        label, size = _pick(_BINARY, peak)
        return Scale(size, label)
    if unit == "bytes/s":
        label, size = _pick(_DECIMAL_RATE, peak)
        return Scale(size, label)
    if unit == "1/s":
        label, size = _pick(_EVENTS, peak)
        return Scale(size, "events/s" if label == "/s" else f"{label[:-2]} events/s")
    if unit == "seconds":
        label, size = _pick(_DURATIONS, peak)
        return Scale(size, label)
    return Scale(1.0, {"percent": "%", "celsius": "°C", "load": "load", "": ""}.get(unit, unit))


__all__ = ["Scale", "axis_scale", "format_duration", "format_value", "format_values"]
