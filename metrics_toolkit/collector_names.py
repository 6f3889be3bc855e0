"""The names of the collectors, declared once below every layer that checks them.

The registry of :mod:`metrics_toolkit.collect.collectors` maps exactly these names to their
classes (a test checks it), so ``config set collector.enabled`` (in the store layer) refuses
the names ``collect`` would refuse, without importing the collectors.
"""

from __future__ import annotations

from collections.abc import Sequence

from metrics_toolkit.errors import UnknownCollector

#: Every collector, in document order; the default of the config key ``collector.enabled``.
COLLECTOR_NAMES: tuple[str, ...] = (
    "cpu",
    "memory",
    "disk",
    "diskio",
    "network",
    "processes",
    "sensors",
    "system",
)


def check_collector_names(names: Sequence[str]) -> tuple[str, ...]:
    """``names`` without duplicates, in order; an unknown or missing name raises
    :class:`UnknownCollector` listing the valid ones."""
    for name in names:
        if name not in COLLECTOR_NAMES:
            msg = f"Unknown collector {name!r}. Available: {', '.join(sorted(COLLECTOR_NAMES))}."
            raise UnknownCollector(msg)
    if not names:
        msg = f"Name at least one collector. Available: {', '.join(sorted(COLLECTOR_NAMES))}."
        raise UnknownCollector(msg)
    return tuple(dict.fromkeys(names))
