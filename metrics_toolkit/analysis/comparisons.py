"""Comparisons with the previous period of equal length, and what they stand on.

A change is only shown when the previous period holds at least :data:`MIN_COVERAGE` of
the samples it should: 31 minutes of data are no basis for "vs previous 30d". Each
previous mean carries the samples behind it and the previous period's coverage.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: The share of its expected samples the previous period needs for a change to be shown.
MIN_COVERAGE = 0.5


@dataclass(frozen=True)
class Previous:
    """The previous period's sample-weighted ``mean`` of a metric on a host, from
    ``samples`` samples, ``coverage`` of those expected (0..1)."""

    mean: float
    samples: int
    coverage: float


def previous_means(
    frame: pd.DataFrame, expected: Mapping[str, float]
) -> dict[tuple[str, str], Previous]:
    """``{(metric, host): Previous}`` of a frame with ``(metric, sum|count)`` columns and a
    ``(host, timestamp)`` index; ``expected`` gives the samples each host should have."""
    out: dict[tuple[str, str], Previous] = {}
    if not len(frame):
        return out
    hosts = frame.index.get_level_values("host")
    for metric in dict.fromkeys(frame.columns.get_level_values(0)):
        sums = frame[metric, "sum"].groupby(hosts).sum(min_count=1)
        counts = frame[metric, "count"].fillna(0.0).groupby(hosts).sum()
        for host in sums.index:
            if counts[host] > 0 and not np.isnan(sums[host]):
                want = expected.get(str(host)) or 0.0
                out[metric, str(host)] = Previous(
                    mean=float(sums[host] / counts[host]),
                    samples=round(float(counts[host])),
                    coverage=min(1.0, float(counts[host]) / want) if want > 0 else 0.0,
                )
    return out


def change(mean: float, previous: Previous | None) -> float | None:
    """``mean - previous.mean``, or None without a previous period covered enough."""
    if previous is None or previous.coverage < MIN_COVERAGE:
        return None
    return mean - previous.mean


def footnote(coverages: Iterable[tuple[str, float | None]]) -> str:
    """The footnote of a change not shown (a dash): the previous period's coverage per host."""
    seen = dict(coverages)
    thin = {h: c for h, c in seen.items() if c is not None and c < MIN_COVERAGE}
    if not thin:
        return ""
    parts = ", ".join(f"{host} {_share(c)}" for host, c in sorted(thin.items()))
    return (
        f"– : no change shown; the previous period holds data for only {parts} of its length "
        f"(at least {MIN_COVERAGE:.0%} is needed for a comparison)."
    )


def _share(coverage: float) -> str:
    return f"{coverage * 100:.1f} %" if coverage < 0.1 else f"{coverage * 100:.0f} %"


__all__ = ["MIN_COVERAGE", "Previous", "change", "footnote", "previous_means"]
