"""System: uptime and boot time (the ``system`` section)."""

from __future__ import annotations

import time
from typing import ClassVar

import psutil

from metrics_toolkit.catalog import MetricSpec, specs_under
from metrics_toolkit.collect.collectors.base import Section


class SystemCollector:
    """The ``system`` section: ``uptime_seconds`` and ``boot_time_seconds`` (Unix epoch)."""

    FIELDS: ClassVar[tuple[MetricSpec, ...]] = specs_under("system")

    def collect(self) -> dict[str, Section]:
        boot = psutil.boot_time()
        return {
            "system": {
                "uptime_seconds": round(max(0.0, time.time() - boot), 1),
                "boot_time_seconds": round(boot, 1),
            }
        }
