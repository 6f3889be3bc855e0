"""Per-second rates from cumulative counters, without fake zeros or negative rates.

Pure code (no psutil, no clock): the caller passes the counter values and a monotonic
timestamp, so tests can feed any sequence directly.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


def per_second(previous: float, current: float, elapsed_s: float) -> float | None:
    """The rate of a counter that went from ``previous`` to ``current`` in ``elapsed_s`` seconds.

    Returns ``None`` (no rate for this tick, never a negative or a made-up one) when the
    elapsed time is not positive or the counter went backwards (a reboot, a wrap, a device
    that vanished and came back).

    >>> per_second(100, 400, 2.0)
    150.0
    >>> per_second(400, 100, 2.0) is None
    True
    """
    if elapsed_s <= 0 or current < previous:
        return None
    return (current - previous) / elapsed_s


class RateTracker(Generic[K]):
    """Turns named cumulative counters into per-second rates between successive updates.

    Each :meth:`update` gets *all* counters of one tick and the tick's monotonic time in
    seconds, returns the rates of the keys that have a valid one, and remembers only the
    counters of this tick: a key missing from a tick (a vanished device) starts over when it
    comes back, so its first tick back has no rate.

    >>> tracker = RateTracker[str]()
    >>> tracker.update({"eth0": 1000}, now=10.0)
    {}
    >>> tracker.update({"eth0": 3000}, now=12.0)
    {'eth0': 1000.0}
    """

    def __init__(self) -> None:
        self._previous: dict[K, float] = {}
        self._at: float | None = None

    def update(self, counters: Mapping[K, float], now: float) -> dict[K, float]:
        """Record this tick's counters; return ``{key: per-second rate}`` for valid ones."""
        rates: dict[K, float] = {}
        if self._at is not None:
            elapsed = now - self._at
            for key, value in counters.items():
                previous = self._previous.get(key)
                if previous is None:
                    continue
                rate = per_second(previous, value, elapsed)
                if rate is not None:
                    rates[key] = rate
        self._previous = dict(counters)
        self._at = now
        return rates
