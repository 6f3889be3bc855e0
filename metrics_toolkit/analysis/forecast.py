"""When a rising gauge reaches its limit: a robust trend of bucket means, extended.

The fit is **Theil-Sen**: the slope is the median of the slopes between every pair of
points, the level the median of ``y - slope * x``. Half the points would have to be wrong
to move it, so one spike (or a few) does not decide the verdict. "Rising" means
significantly rising: the lower end of Sen's 95 % confidence interval of the slope (from
the Mann-Kendall variance) is above zero; otherwise the gauge is called flat or falling
and has no forecast (``days_left`` None). A forecast further than :data:`HORIZON_DAYS`
away is None too, and so is one further than :data:`MAX_EXTRAPOLATION` times the judged
stretch: six hours of a memory gauge's daily rise say nothing about next week (a trend is
extended at most four times as far as it was seen).

**Sawtooth series** (a log that fills a disk and is rotated, a cache that is flushed) need
a deliberate choice: over a window of many cycles, Theil-Sen on all points is biased
upwards (within a cycle most pairs rise), and the segment after the last drop always
rises. So drops are found first (:func:`find_drops`: a fall larger than
:data:`DROP_FRACTION` of the limit, or than the noise, after which the level *stays*
down, so a single spike down or up is not a drop), and then:

- no drop: Theil-Sen on every bucket mean;
- at least :data:`MIN_CYCLES` complete cycles (each ending in a drop): Theil-Sen on the
  cycle peaks. Peaks that creep up mean it will fill despite the clean-ups; steady peaks
  mean the clean-ups keep up (no forecast);
- fewer cycles (one or two clean-ups in the window): the growth since the last drop is
  judged, as ``predict_linear`` would over that stretch.

Time is in days relative to the end of the window (``x <= 0``), so the fitted level at
``x = 0`` is "now" and ``days_left = (limit - level) / slope``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]

#: Forecasts further away than this are reported as None (not filling, in practice).
HORIZON_DAYS = 3650.0
#: A drop must exceed this share of the limit (5 points of a 100 % gauge) ...
DROP_FRACTION = 0.05
#: ... and this many robust standard deviations of the step-to-step changes.
DROP_NOISE = 5.0
#: Complete cycles needed to fit the trend of their peaks.
MIN_CYCLES = 4
#: A trend is extended at most this many times the length of the stretch it was fitted on.
MAX_EXTRAPOLATION = 4.0
#: Points needed for a fit (fewer: no forecast).
MIN_POINTS = 5
#: Points at most in one fit: more are averaged in consecutive groups (pairs grow as n²).
MAX_POINTS = 1500
_Z95 = 1.959963984540054
_BEFORE, _AFTER = 5, 3  # buckets compared around a candidate drop (medians)


@dataclass(frozen=True)
class Fit:
    """A Theil-Sen line ``y = level + slope * x`` and Sen's 95 % interval of the slope."""

    slope: float
    level: float
    lower: float
    upper: float
    points: int


@dataclass(frozen=True)
class Trend:
    """The verdict on one series.

    ``slope`` (per day) and ``level`` (the fitted value at the window's end) describe the
    trend judged (None when there were too few points); ``days_left`` is None when it is
    not significantly rising or would take longer than :data:`HORIZON_DAYS`. ``since``:
    the x (days, <= 0) where the judged stretch begins; ``method``: what was fitted, in
    words.
    """

    slope: float | None
    level: float | None
    days_left: float | None
    since: float
    method: str


def theil_sen(x: Floats, y: Floats) -> Fit:
    """The Theil-Sen line through ``(x, y)`` (finite values, at least two distinct x).

    Vectorised over the ``n (n - 1) / 2`` pairs (callers pass a few hundred points; more
    than :data:`MAX_POINTS` are first averaged in consecutive groups).
    """
    x, y = _thin(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    n = len(x)
    first, second = np.triu_indices(n, k=1)
    dx = x[second] - x[first]
    keep = dx != 0
    slopes = np.sort((y[second] - y[first])[keep] / dx[keep])
    if not len(slopes):
        raise ValueError("Theil-Sen needs at least two distinct x values")
    slope = float(np.median(slopes))
    level = float(np.median(y - slope * x))
    # Sen (1968): ranks of the 95 % interval among the sorted slopes, from the variance of
    # the Mann-Kendall statistic (ties ignored, which only widens the interval).
    pairs = len(slopes)
    spread = _Z95 * math.sqrt(n * (n - 1) * (2 * n + 5) / 18.0)
    low_rank = math.floor((pairs - spread) / 2)
    high_rank = math.ceil((pairs + spread) / 2)
    lower = float(slopes[low_rank]) if low_rank >= 0 else -math.inf
    upper = float(slopes[high_rank]) if high_rank < pairs else math.inf
    return Fit(slope, level, lower, upper, n)


def _thin(x: Floats, y: Floats) -> tuple[Floats, Floats]:
    if len(x) <= MAX_POINTS:
        return x, y
    groups = np.array_split(np.arange(len(x)), MAX_POINTS)
    return (
        np.array([x[g].mean() for g in groups]),
        np.array([y[g].mean() for g in groups]),
    )


def drop_threshold(y: Floats, limit: float) -> float:
    """How far a value must fall to count as a drop: the larger of a share of the limit
    and a multiple of the noise (robust spread of the step-to-step changes)."""
    steps = np.diff(y)
    noise = 0.0
    if len(steps) >= 3:
        noise = 1.4826 * float(np.median(np.abs(steps - np.median(steps))))
    return max(DROP_FRACTION * abs(limit), DROP_NOISE * noise)


def find_drops(y: Floats, threshold: float) -> list[int]:
    """Indexes where a new cycle starts: ``y`` fell by more than ``threshold`` from the
    previous point, and the median of that point and the next two is below the median of
    the five before by more than ``threshold`` (so the level stays down: a spike down and
    back, or a spike up and back, is not a drop). A drop spread over consecutive points
    counts once, at its last point. Drops in the last two points cannot be confirmed and
    are not reported."""
    n = len(y)
    starts: list[int] = []
    for i in range(1, n - _AFTER + 1):
        if y[i] >= y[i - 1] - threshold:
            continue
        before = float(np.median(y[max(0, i - _BEFORE) : i]))
        after = float(np.median(y[i : i + _AFTER]))
        if after < before - threshold:
            if starts and starts[-1] == i - 1:
                starts[-1] = i
            else:
                starts.append(i)
    return starts


def forecast(x: Floats, y: Floats, limit: float) -> Trend:
    """The verdict for points ``(x, y)`` (x in days, the window ending at 0) and ``limit``."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = x[finite], y[finite]
    start = float(x[0]) if len(x) else 0.0
    drops = find_drops(y, drop_threshold(y, limit)) if len(y) else []
    if not drops:
        return _verdict(x, y, limit, start, f"Theil-Sen on {len(x)} bucket means")
    bounds = [0, *drops, len(y)]
    complete = list(itertools.pairwise(bounds[:-1]))  # the cycles that end in a drop
    if len(complete) >= MIN_CYCLES:
        peaks = np.array([lo + int(np.argmax(y[lo:hi])) for lo, hi in complete])
        method = (
            f"Theil-Sen on the peaks of {len(complete)} cycles ending in a drop "
            "(log rotation or clean-up)"
        )
        return _verdict(x[peaks], y[peaks], limit, start, method)
    last = drops[-1]
    method = (
        f"Theil-Sen on {len(y) - last} bucket means since the drop {_ago(float(x[last]))} "
        f"({len(drops)} drop(s) in the window, too few cycles for a trend of their peaks)"
    )
    return _verdict(x[last:], y[last:], limit, float(x[last]), method)


def _verdict(x: Floats, y: Floats, limit: float, since: float, method: str) -> Trend:
    if len(x) < MIN_POINTS or len(np.unique(x)) < 2:
        return Trend(None, None, None, since, f"{method}: too few points for a trend")
    fit = theil_sen(x, y)
    days_left = None
    if fit.slope > 0 and fit.lower > 0:
        days_left = max(0.0, (limit - fit.level) / fit.slope)
        seen = -since
        if days_left > min(HORIZON_DAYS, MAX_EXTRAPOLATION * seen):
            method += (
                f"; rising, but the limit ({days_left:.1f} days away) is beyond "
                f"{MAX_EXTRAPOLATION:g} times the {_span(seen)} judged"
            )
            days_left = None
    return Trend(fit.slope, fit.level, days_left, since, method)


def _span(days: float) -> str:
    return f"{days * 24:.0f} h" if days < 2 else f"{days:.1f} days"


def _ago(days: float) -> str:
    hours = -days * 24
    return f"{hours:.0f} h before the end" if hours < 48 else f"{-days:.1f} days before the end"


__all__ = [
    "DROP_FRACTION",
    "HORIZON_DAYS",
    "MAX_EXTRAPOLATION",
    "MIN_CYCLES",
    "Fit",
    "Trend",
    "drop_threshold",
    "find_drops",
    "forecast",
    "theil_sen",
]
