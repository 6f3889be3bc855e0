"""Memory and swap: the ``memory`` and ``swap`` sections.

``memory.usage_percent`` is ``(total - available) / total``, psutil's definition (memory that
cannot be had without swapping), unrounded. ``used_bytes`` is psutil's ``used``, which on
Linux excludes page cache and buffers, so ``used + available`` is close to, not exactly,
``total``. Swap-in/out are cumulative byte counters turned into rates (none on the first tick).
"""

from __future__ import annotations

import time
from typing import ClassVar

import psutil

from metrics_toolkit.catalog import MetricSpec, specs_under
from metrics_toolkit.collect.collectors.base import DIGITS, Section, share
from metrics_toolkit.collect.collectors.rates import RateTracker


class MemoryCollector:
    """The ``memory`` and ``swap`` sections."""

    FIELDS: ClassVar[tuple[MetricSpec, ...]] = specs_under("memory", "swap")

    def __init__(self) -> None:
        self._rates = RateTracker[str]()

    def collect(self) -> dict[str, Section]:
        vm = psutil.virtual_memory()
        swap = psutil.swap_memory()
        now = time.monotonic()

        memory: Section = {
            "total_bytes": vm.total,
            "available_bytes": vm.available,
            "used_bytes": vm.used,
        }
        usage = share(vm.total - vm.available, vm.total)
        if usage is not None:
            memory["usage_percent"] = usage
        for field in ("cached", "buffers"):  # Linux and BSD only
            value = getattr(vm, field, None)
            if value is not None:
                memory[f"{field}_bytes"] = value

        swap_section: Section = {
            "total_bytes": swap.total,
            "used_bytes": swap.used,
            # No swap at all is 0 % in use, as psutil reports it (not a missing value).
            "usage_percent": share(swap.used, swap.total) or 0.0,
        }
        rates = self._rates.update({"in": swap.sin, "out": swap.sout}, now)
        for direction, rate in rates.items():
            swap_section[f"swapped_{direction}_bytes_per_s"] = round(rate, DIGITS)
        return {"memory": memory, "swap": swap_section}
