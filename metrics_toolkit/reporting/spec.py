"""What a report shows: its chart sections and summary metrics, declared once.

Panels name metric paths, possibly with ``*`` segments (``disk.mounts.*.usage_percent``)
that expand to one panel per path present in the data (one per mount). A panel whose
metric is absent (a host without swap) is left out, and a section without panels too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from metrics_toolkit import catalog
from metrics_toolkit.documents import split_path
from metrics_toolkit.reporting.model import ChartPanel, ChartSection

# (key, section title, ((metric pattern, panel title, summary label), ...)); "{0}" in a
# title or label is the path segment the first "*" matched.
SECTIONS: tuple[tuple[str, str, tuple[tuple[str, str, str], ...]], ...] = (
    ("cpu", "CPU", (("cpu.usage_percent", "CPU busy, all cores", "CPU busy"),)),
    ("load", "Load average", (("cpu.load1", "Load average, 1 minute", "Load (1 min)"),)),
    (
        "memory",
        "Memory and swap",
        (
            ("memory.usage_percent", "Memory used", "Memory used"),
            ("swap.usage_percent", "Swap used", "Swap used"),
        ),
    ),
    (
        "disk",
        "Disk usage per mount",
        (("disk.mounts.*.usage_percent", "Mount {0}", "Disk used, {0}"),),
    ),
    (
        "diskio",
        "Disk I/O",
        (
            ("diskio.read_bytes_per_s", "Read", "Disk read"),
            ("diskio.write_bytes_per_s", "Written", "Disk written"),
        ),
    ),
    (
        "network",
        "Network",
        (
            ("network.bytes_recv_per_s", "Received", "Network received"),
            ("network.bytes_sent_per_s", "Sent", "Network sent"),
        ),
    ),
)

#: Metrics in the summary table besides the charted ones.
EXTRA_SUMMARY: tuple[tuple[str, str], ...] = (("memory.used_bytes", "Memory used, size"),)


def match(pattern: str, path: str) -> tuple[str, ...] | None:
    """The segments ``*`` matched when ``path`` fits ``pattern``, else None.

    >>> match("disk.mounts.*.usage_percent", "disk.mounts./data.usage_percent")
    ('/data',)
    >>> match("cpu.usage_percent", "cpu.load1") is None
    True
    """
    want, have = split_path(pattern), split_path(path)
    if len(want) != len(have):
        return None
    found = []
    for w, h in zip(want, have, strict=True):
        if w == "*":
            found.append(h)
        elif w != h:
            return None
    return tuple(found)


def expand(pattern: str, present: Iterable[str]) -> list[tuple[str, tuple[str, ...]]]:
    """The present paths matching ``pattern`` (sorted), each with its ``*`` matches."""
    out = []
    for path in sorted(set(present)):
        found = match(pattern, path)
        if found is not None:
            out.append((path, found))
    return out


def sections(present: Sequence[str]) -> list[ChartSection]:
    """The chart sections that have data, their panels expanded against ``present``."""
    out = []
    for key, title, panels in SECTIONS:
        expanded = [
            ChartPanel(path, panel_title.format(*found), catalog.unit_of(path))
            for pattern, panel_title, _ in panels
            for path, found in expand(pattern, present)
        ]
        if expanded:
            out.append(ChartSection(key, title, tuple(expanded)))
    return out


def summary_metrics(present: Sequence[str]) -> list[tuple[str, str]]:
    """``(path, label)`` of every summary metric with data: charted ones, then extras."""
    seen: dict[str, str] = {}
    for _, _, panels in SECTIONS:
        for pattern, _, label in panels:
            for path, found in expand(pattern, present):
                seen.setdefault(path, label.format(*found))
    for path, label in EXTRA_SUMMARY:
        if path in present:
            seen.setdefault(path, label)
    return list(seen.items())


__all__ = ["EXTRA_SUMMARY", "SECTIONS", "expand", "match", "sections", "summary_metrics"]
