"""Top processes over a period, from the ``processes.top_cpu`` / ``top_memory`` label lists.

Each snapshot lists the top few processes by CPU and by resident memory (labels, not
metrics). A report reads a sample of those lists spread evenly over its range
(:func:`metrics_toolkit.reporting.metadata.process_samples`) and ranks process *names* per
host: entries with the same name in one list (``postgres`` workers) add up. Malformed
entries (a label list written by hand) are skipped, never an error.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from metrics_toolkit.reporting.metadata import ProcessSample
from metrics_toolkit.reporting.model import ProcessRow

#: Where each ranking reads its figure: (list, value key, unit), first key found wins.
_RANKINGS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "cpu": (("top_cpu", "cpu_percent", "percent"),),
    "memory": (("top_memory", "rss_bytes", "bytes"), ("top_memory", "memory_percent", "percent")),
}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _per_name(entries: Any, key: str) -> dict[str, float]:
    """``{name: summed value}`` of one label list; junk entries are skipped."""
    found: dict[str, float] = defaultdict(float)
    if not isinstance(entries, list):
        return {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        value = _number(entry.get(key))
        if value is not None:
            found[entry["name"]] += value
    return dict(found)


def top_processes(samples: Sequence[ProcessSample], *, limit: int = 8) -> list[ProcessRow]:
    """The ``limit`` busiest process names per host and ranking (cpu, memory)."""
    by_host: dict[str, list[ProcessSample]] = defaultdict(list)
    for sample in samples:
        by_host[sample.host].append(sample)
    rows: list[ProcessRow] = []
    for host in sorted(by_host):
        docs = by_host[host]
        for ranking, sources in _RANKINGS.items():
            rows.extend(_rank(host, ranking, docs, sources, limit))
    return rows


def _rank(
    host: str,
    ranking: str,
    docs: Sequence[ProcessSample],
    sources: tuple[tuple[str, str, str], ...],
    limit: int,
) -> list[ProcessRow]:
    for attribute, key, unit in sources:
        totals: dict[str, float] = defaultdict(float)
        peaks: dict[str, float] = {}
        seen: dict[str, int] = defaultdict(int)
        listed = 0
        for doc in docs:
            values = _per_name(getattr(doc, f"{attribute}"), key)
            if not values:
                continue
            listed += 1
            for name, value in values.items():
                totals[name] += value
                peaks[name] = max(peaks.get(name, value), value)
                seen[name] += 1
        if not listed:
            continue
        best = sorted(totals, key=lambda n: (-totals[n], n))[:limit]
        return [
            ProcessRow(
                host=host,
                ranking=ranking,
                name=name,
                unit=unit,
                mean=totals[name] / listed,
                peak=peaks[name],
                seen=seen[name] / listed,
            )
            for name in best
        ]
    return []


__all__ = ["top_processes"]
