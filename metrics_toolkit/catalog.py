"""The metric catalog: what each numeric leaf of a snapshot document is.

A leaf's dotted path (``cpu.usage_percent``) is its name everywhere. Its *kind* fixes how it
is aggregated and shown:

- ``gauge``: a level (percent, bytes used, load average);
- ``rate``: per second, computed by the collector from counter deltas;
- ``counter``: a raw cumulative value (rare; rolls up to a reset-aware increase).

Paths may contain ``*`` segments for names that depend on the machine (a disk, an
interface, a mount point). Unknown numeric leaves count as gauges, with the unit guessed
from the leaf name's suffix (``_percent``, ``_bytes``, ``_bytes_per_s``, ``_per_s``...).
Strings are labels (such as ``host``), never metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

Kind = Literal["gauge", "rate", "counter"]
KINDS: tuple[Kind, ...] = ("gauge", "rate", "counter")


@dataclass(frozen=True)
class MetricSpec:
    """One catalog row: a path pattern, its kind, its unit and a one-line description."""

    pattern: str
    kind: Kind
    unit: str
    description: str = ""


# Units are short symbols understood by the formatters of reports and the explorer:
# "percent", "bytes", "bytes/s", "1/s" (events per second), "count", "seconds",
# "celsius", "rpm", "load" (run-queue length), "" (dimensionless).
_SUFFIX_UNITS: tuple[tuple[str, Kind, str], ...] = (
    ("_bytes_per_s", "rate", "bytes/s"),
    ("_per_s", "rate", "1/s"),
    ("_percent", "gauge", "percent"),
    ("_bytes", "gauge", "bytes"),
    ("_seconds", "gauge", "seconds"),
    ("_celsius", "gauge", "celsius"),
    ("_rpm", "gauge", "rpm"),
    ("_count", "gauge", "count"),
    ("_total", "counter", "count"),
)

# The declarative table. Collectors add their rows here (one block per collector) and a
# test checks that every leaf a collector produces is declared.
CATALOG: tuple[MetricSpec, ...] = (
    MetricSpec("cpu.usage_percent", "gauge", "percent", "CPU busy time, all cores"),
    MetricSpec("memory.used_bytes", "gauge", "bytes", "Memory in use"),
)


def _split(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def _matches(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    return len(pattern) == len(path) and all(
        p in ("*", s) for p, s in zip(pattern, path, strict=True)
    )


@lru_cache(maxsize=4096)
def lookup(path: str) -> MetricSpec:
    """The catalog row for a metric path; unknown paths get a gauge with a guessed unit."""
    parts = _split(path)
    for spec in CATALOG:
        if _matches(_split(spec.pattern), parts):
            return spec
    leaf = parts[-1]
    for suffix, kind, unit in _SUFFIX_UNITS:
        if leaf.endswith(suffix):
            return MetricSpec(path, kind, unit)
    return MetricSpec(path, "gauge", "")


def is_declared(path: str) -> bool:
    """True when a catalog row (not a guess) covers ``path``."""
    parts = _split(path)
    return any(_matches(_split(spec.pattern), parts) for spec in CATALOG)


def kind_of(path: str) -> Kind:
    return lookup(path).kind


def unit_of(path: str) -> str:
    return lookup(path).unit
