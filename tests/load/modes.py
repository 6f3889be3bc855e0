"""Smoke or full: how big the load scenarios are.

``METRICS_TOOLKIT_LOAD=full`` (what ``make load`` sets) runs the sizes of issue #8: 50
collectors into PostgreSQL for 5 minutes, 10 collectors into one SQLite file for 5 minutes.
Anything else runs the smoke sizes, small enough for the default ``make test`` on a shared
two-core machine. ``METRICS_TOOLKIT_LOAD_COLLECTORS`` / ``METRICS_TOOLKIT_LOAD_SECONDS``
override both fleets' size and length (for trying things out; figures go to
``load-<mode>-custom.json``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

MODE_ENV = "METRICS_TOOLKIT_LOAD"


@dataclass(frozen=True)
class LoadMode:
    name: str
    postgres_collectors: int
    postgres_seconds: float
    rollup_interval: str  # the archive policy's width during the PostgreSQL run
    sqlite_collectors: int
    sqlite_seconds: float

    @property
    def timeout(self) -> float:
        """pytest-timeout for one scenario: the run plus start-up, stop and checks."""
        return max(self.postgres_seconds, self.sqlite_seconds) + 300.0


SMOKE = LoadMode("smoke", 8, 20.0, "10s", 4, 10.0)
FULL = LoadMode("full", 50, 300.0, "1min", 10, 300.0)


def current() -> LoadMode:
    mode = FULL if os.environ.get(MODE_ENV, "").strip().lower() == "full" else SMOKE
    collectors = os.environ.get("METRICS_TOOLKIT_LOAD_COLLECTORS")
    seconds = os.environ.get("METRICS_TOOLKIT_LOAD_SECONDS")
    if collectors:
        mode = replace(mode, postgres_collectors=int(collectors), sqlite_collectors=int(collectors))
    if seconds:
        mode = replace(mode, postgres_seconds=float(seconds), sqlite_seconds=float(seconds))
    return replace(mode, name=f"{mode.name}-custom") if collectors or seconds else mode
