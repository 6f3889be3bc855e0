"""Collectors: psutil readings turned into one nested snapshot document per tick.

>>> from metrics_toolkit.collect.collectors import Collector
>>> collector = Collector(["cpu", "memory"], host="web-1")
>>> doc = collector.collect()      # first tick: levels only, no rates yet
>>> doc = collector.collect()      # later ticks: rates from the counter deltas
>>> doc["host"], sorted(doc)
('web-1', ['cpu', 'host', 'memory', 'swap'])

Each collector lives in its own module and is registered once in :data:`COLLECTORS`;
adding one is a module with a class following
:class:`~metrics_toolkit.collect.collectors.base.Source` and a line here. Its ``FIELDS`` are
its rows of :mod:`metrics_toolkit.catalog`.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

from metrics_toolkit.collect.collectors import (
    cpu,
    disk,
    diskio,
    memory,
    network,
    processes,
    sensors,
    system,
)
from metrics_toolkit.collect.collectors.base import Source
from metrics_toolkit.collector_names import check_collector_names
from metrics_toolkit.documents_check import validate_document

# The registry, in document order. Names are the default of the config key collector.enabled.
COLLECTORS: dict[str, Callable[[], Source]] = {
    "cpu": cpu.CpuCollector,
    "memory": memory.MemoryCollector,
    "disk": disk.DiskCollector,
    "diskio": diskio.DiskIOCollector,
    "network": network.NetworkCollector,
    "processes": processes.ProcessesCollector,
    "sensors": sensors.SensorsCollector,
    "system": system.SystemCollector,
}
AVAILABLE: tuple[str, ...] = tuple(COLLECTORS)


def resolve_names(names: Sequence[str] | str | None) -> tuple[str, ...]:
    """Validated collector names, duplicates dropped, in the given order.

    ``None`` means all of :data:`AVAILABLE`; a string is read as a comma-separated list
    (``"cpu,memory"``). An unknown name, or none at all, raises :class:`UnknownCollector`
    listing the valid ones (:func:`~metrics_toolkit.collector_names.check_collector_names`).
    """
    if names is None:
        return AVAILABLE
    if isinstance(names, str):
        names = [part.strip() for part in names.split(",") if part.strip()]
    return check_collector_names(names)


class Collector:
    """Collects one snapshot document per :meth:`collect` call, keeping counter state between calls.

    :param names: collectors to run (default: all of :data:`AVAILABLE`).
    :param host: the document's ``host`` label (default: this machine's hostname).
    :raises UnknownCollector: for a name that is not registered.
    """

    def __init__(self, names: Sequence[str] | None = None, *, host: str | None = None) -> None:
        self.names = resolve_names(names)
        self.host = host or socket.gethostname()
        self._sources = [COLLECTORS[name]() for name in self.names]

    def collect(self) -> dict[str, Any]:
        """One document: ``{"host": ..., "cpu": {...}, "memory": {...}, ...}``.

        Rates (``*_per_s``) and CPU percents come from the delta since the previous call
        on this object, so the first call has none of them (omitted, never 0). A section the
        machine cannot provide (no sensors) is omitted.
        """
        doc: dict[str, Any] = {"host": self.host}
        for source in self._sources:
            doc.update(source.collect())
        return doc


def collect_snapshot(
    names: Sequence[str] | None = None, *, host: str | None = None, prime_seconds: float = 0.5
) -> dict[str, Any]:
    """One-shot collection for notebooks and scripts: a document *with* rates.

    Collects once to prime the counters, sleeps ``prime_seconds``, and returns the second
    document, whose rates cover that pause. ``prime_seconds <= 0`` skips priming and returns
    a first-tick document (no rates, no CPU percents).
    """
    collector = Collector(names, host=host)
    if prime_seconds > 0:
        collector.collect()
        time.sleep(prime_seconds)
    return collector.collect()


__all__ = [
    "AVAILABLE",
    "COLLECTORS",
    "Collector",
    "collect_snapshot",
    "resolve_names",
    "validate_document",
]
