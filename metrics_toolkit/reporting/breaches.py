"""Threshold breaches as episodes: when a metric stayed above its threshold, and how high.

Rules come from config ``report.thresholds``: ``{"metric pattern": rule}`` where a rule is
a number (the threshold) or ``{"above": 90, "for": "5min"}``. A pattern may hold ``*``
segments (``disk.mounts.*.usage_percent``: every mount).

Detection runs on the report's detail buckets (one row per host and bucket):

- with ``for``: a bucket is *above* when its **mean** exceeds the threshold, and an
  episode is a run of back-to-back above buckets lasting at least ``for``;
- without ``for``: a bucket is *above* when its **maximum** exceeds the threshold (any
  single sample), and every run counts.

A missing bucket (a gap in collection) ends an episode. The episode's ``peak`` is the
highest sample in it (exact, from the bucket maxima), ``peak_at`` the start of the bucket
holding it, ``mean`` its sample-weighted mean. Times are at bucket resolution.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from metrics_toolkit import catalog
from metrics_toolkit.intervals import Interval
from metrics_toolkit.reporting.buckets import SECONDS
from metrics_toolkit.reporting.model import Breach
from metrics_toolkit.reporting.spec import expand
from metrics_toolkit.store.threshold_rules import ThresholdRule


def rule_metrics(rules: Sequence[ThresholdRule], present: Iterable[str]) -> list[str]:
    """The present metric paths some rule applies to."""
    paths = list(present)
    return list(dict.fromkeys(p for rule in rules for p, _ in expand(rule.pattern, paths)))


def detect(
    detail: pd.DataFrame,
    rules: Sequence[ThresholdRule],
    *,
    end: datetime,
) -> list[Breach]:
    """Every episode of every rule on every host, ordered by start time."""
    if not len(detail):
        return []
    present = list(dict.fromkeys(detail.columns.get_level_values(0)))
    hosts = detail.index.get_level_values("host")
    found: list[Breach] = []
    for rule in rules:
        for metric, _ in expand(rule.pattern, present):
            for host in sorted(set(hosts)):
                part = detail[np.asarray(hosts == host)]
                found.extend(_episodes(part, metric, str(host), rule, end))
    found.sort(key=lambda b: (b.start, b.host, b.metric))
    return found


def _episodes(
    part: pd.DataFrame, metric: str, host: str, rule: ThresholdRule, end: datetime
) -> list[Breach]:
    count = part[metric, "count"].to_numpy(dtype=np.float64)
    keep = count > 0
    if not keep.any():
        return []
    stamps = pd.DatetimeIndex(part.index.get_level_values("timestamp"))[keep]
    start_s = stamps.as_unit("us").asi8 / 1e6
    width = part[SECONDS].to_numpy(dtype=np.float64)[keep]
    sums = part[metric, "sum"].to_numpy(dtype=np.float64)[keep]
    counts = count[keep]
    maxima = part[metric, "max"].to_numpy(dtype=np.float64)[keep]
    level = sums / counts if rule.for_seconds else maxima
    above = level > rule.above
    # A run breaks where a bucket is not above or does not start where the last one ended.
    adjacent = np.r_[False, start_s[1:] <= start_s[:-1] + width[:-1]]
    run_start = above & ~(adjacent & np.r_[False, above[:-1]])
    run_id = np.cumsum(run_start)
    limit = end.timestamp()
    out = []
    for rid in np.unique(run_id[above]):
        idx = np.flatnonzero(above & (run_id == rid))
        lo = start_s[idx[0]]
        hi = min(float(np.max(start_s[idx] + width[idx])), limit)
        if hi - lo < rule.for_seconds:
            continue
        peak_i = idx[int(np.nanargmax(maxima[idx]))]
        out.append(
            Breach(
                host=host,
                metric=metric,
                unit=catalog.unit_of(metric),
                threshold=rule.above,
                for_seconds=rule.for_seconds,
                start=_moment(lo),
                end=_moment(hi),
                peak=float(maxima[peak_i]),
                peak_at=_moment(start_s[peak_i]),
                mean=float(np.sum(sums[idx]) / np.sum(counts[idx])),
            )
        )
    return out


def _moment(seconds: float) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=float(seconds))


def basis(rules: Sequence[ThresholdRule], detail_interval: str) -> str:
    """A sentence saying how episodes were found, for the report."""
    width = Interval.parse(detail_interval).seconds
    text = (
        f"Episodes are found on {detail_interval} buckets: with a duration, a run of "
        "back-to-back buckets whose mean is above the threshold for at least that long; "
        "without one, buckets holding any sample above it. Start and end are bucket bounds."
    )
    short = [r for r in rules if 0 < r.for_seconds < width]
    if short:
        names = ", ".join(f"{r.pattern} ({Interval(r.for_seconds)})" for r in short)
        text += (
            f" The duration of {names} is shorter than one bucket: a bucket mean above the "
            "threshold is enough there."
        )
    return text


__all__ = ["basis", "detect", "rule_metrics"]
