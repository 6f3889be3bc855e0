"""CPU: time shares, per-CPU usage, load averages, context switches and interrupts.

Percents are computed from the delta of ``psutil.cpu_times()`` between two ticks, kept in
this object rather than in psutil's module-wide state (``psutil.cpu_percent(None)``), so two
collectors in one process do not disturb each other. The first tick has no percents and no
rates (there is no previous sample; psutil's own first call would return a meaningless 0.0).
"""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar

import psutil

from metrics_toolkit.catalog import MetricSpec, specs_under
from metrics_toolkit.collect.collectors.base import DIGITS, Section, share
from metrics_toolkit.collect.collectors.rates import RateTracker

log = logging.getLogger(__name__)

# Linux counts guest time inside user (and guest_nice inside nice): subtract it, as psutil does.
_DOUBLE_COUNTED = ("guest", "guest_nice")
_SHARES = ("user", "system", "iowait", "steal", "idle")


def time_shares(before: Any, after: Any) -> Section:
    """Percents of CPU time between two ``cpu_times`` samples (named tuples).

    ``usage_percent`` is everything but idle and iowait. Each field's delta is clamped at 0
    (Linux idle/iowait counters can step back slightly); fields the platform lacks (iowait,
    steal outside Linux) are omitted. Empty when no time elapsed.
    """
    deltas = {
        field: max(0.0, getattr(after, field) - getattr(before, field)) for field in after._fields
    }
    total = sum(deltas.values()) - sum(deltas.get(field, 0.0) for field in _DOUBLE_COUNTED)
    if total <= 0:
        return {}
    idle = deltas.get("idle", 0.0) + deltas.get("iowait", 0.0)
    shares: Section = {"usage_percent": share(total - idle, total)}
    for field in _SHARES:
        if field in deltas:
            shares[f"{field}_percent"] = share(deltas[field], total)
    return shares


class CpuCollector:
    """The ``cpu`` section."""

    FIELDS: ClassVar[tuple[MetricSpec, ...]] = specs_under("cpu")

    def __init__(self) -> None:
        self._times: Any = None
        self._per_cpu: list[Any] = []
        self._rates = RateTracker[str]()

    def collect(self) -> dict[str, Section]:
        times = psutil.cpu_times()
        per_cpu = psutil.cpu_times(percpu=True)
        stats = psutil.cpu_stats()
        now = time.monotonic()

        section: Section = {}
        if self._times is not None:
            section.update(time_shares(self._times, times))
        count = psutil.cpu_count()
        if count:
            section["logical_count"] = count
        section.update(_load_averages())
        rates = self._rates.update(
            {"ctx_switches": stats.ctx_switches, "interrupts": stats.interrupts}, now
        )
        for name, rate in rates.items():
            section[f"{name}_per_s"] = round(rate, DIGITS)
        # A CPU going on- or offline changes the list: no per-CPU shares for that tick.
        if len(self._per_cpu) == len(per_cpu):
            cores = {
                str(index): {"usage_percent": shares["usage_percent"]}
                for index, (before, after) in enumerate(zip(self._per_cpu, per_cpu, strict=True))
                if (shares := time_shares(before, after))
            }
            if cores:
                section["per_cpu"] = cores
        self._times, self._per_cpu = times, per_cpu
        return {"cpu": section}


def _load_averages() -> Section:
    try:
        load1, load5, load15 = psutil.getloadavg()
    except (AttributeError, OSError) as error:  # platform without load averages
        log.debug("no load averages: %s", error)
        return {}
    return {
        "load1": round(load1, DIGITS),
        "load5": round(load5, DIGITS),
        "load15": round(load15, DIGITS),
    }
