"""Threshold breaches as episodes: when a metric stayed above its threshold, and how high.

Rules come from config ``report.thresholds``: ``{"metric pattern": rule}`` where a rule is
a number (the threshold) or ``{"above": 90, "for": "5min"}``. A pattern may hold ``*``
segments (``disk.mounts.*.usage_percent``: every mount).

Detection runs on the report's detail buckets (one row per host and bucket):

- with ``for``: a bucket is *above* when its **mean** exceeds the threshold, and an
  episode is a run of back-to-back above buckets lasting at least ``for``;
- without ``for``: a bucket is *above* when its **maximum** exceeds the threshold (any
  single sample), and every run counts.

With ``for``, an episode also needs samples that span the duration: its buckets must
hold at least ``for / sample interval`` samples (three snapshots 2 s apart never make a
"5 min" episode, whatever bucket they fall in). A host whose samples of the metric cannot
span the duration at all gets no episode: the rule could not be judged there
(:class:`Unjudged`).

A missing bucket (a gap in collection) ends an episode. The episode's ``peak`` is the
highest sample in it (exact, from the bucket maxima), ``peak_at`` the start of the bucket
holding it, ``mean`` its sample-weighted mean. Times are at bucket resolution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from metrics_toolkit import catalog
from metrics_toolkit.analysis.buckets import SECONDS
from metrics_toolkit.analysis.gaps import moment as _moment
from metrics_toolkit.intervals import Interval
from metrics_toolkit.store.threshold_rules import ThresholdRule


@dataclass(frozen=True)
class Breach:
    """An episode of ``metric`` above its threshold on ``host``: ``[start, end)``."""

    host: str
    metric: str
    unit: str
    threshold: float
    for_seconds: int
    start: datetime
    end: datetime
    peak: float
    peak_at: datetime
    mean: float

    @property
    def seconds(self) -> float:
        """The episode's length in seconds."""
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class Unjudged:
    """A duration rule that could not be judged on ``host``: its ``samples`` of ``metric``
    (one every ``sample_seconds``) span less than the rule's ``for_seconds``."""

    host: str
    metric: str
    pattern: str
    threshold: float
    for_seconds: int
    samples: int
    sample_seconds: int


def detect(
    detail: pd.DataFrame,
    checks: Sequence[tuple[ThresholdRule, str]],
    *,
    end: datetime,
    sample_seconds: Mapping[str, int],
) -> tuple[list[Breach], list[Unjudged]]:
    """Every episode of every ``(rule, metric)`` check on every host, ordered by start
    time, and the checks that could not be judged (per host)."""
    if not len(detail):
        return [], []
    hosts = detail.index.get_level_values("host")
    found: list[Breach] = []
    unjudged: list[Unjudged] = []
    for rule, metric in checks:
        for host in sorted(set(hosts)):
            part = detail[np.asarray(hosts == host)]
            every = sample_seconds.get(str(host)) or max(sample_seconds.values(), default=1)
            total = float(np.nansum(part[metric, "count"].to_numpy(dtype=np.float64)))
            if rule.for_seconds and 0 < total * every < rule.for_seconds:
                unjudged.append(
                    Unjudged(
                        str(host),
                        metric,
                        rule.pattern,
                        rule.above,
                        rule.for_seconds,
                        round(total),
                        every,
                    )
                )
                continue
            found.extend(_episodes(part, metric, str(host), rule, end, every))
    found.sort(key=lambda b: (b.start, b.host, b.metric))
    return found, unjudged


def _episodes(
    part: pd.DataFrame, metric: str, host: str, rule: ThresholdRule, end: datetime, every: int
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
        if hi - lo < rule.for_seconds or np.sum(counts[idx]) * every < rule.for_seconds:
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
    return text + (
        " An episode with a duration also needs samples spanning it (samples x collection "
        "interval); a host with fewer has the rule reported as not judged."
    )


__all__ = ["Breach", "Unjudged", "basis", "detect"]
