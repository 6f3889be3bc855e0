"""The report's forecasts: which gauges are forecast, on which points, and the rows.

Forecast are every ``disk.mounts.*.usage_percent`` (per mount) and
``memory.usage_percent`` against 100, and any metric config ``report.forecast_limits``
names (a path pattern -> its limit; it also overrides the 100 of the defaults). The
points are the report's detail buckets merged into about :data:`FIT_BUDGET` buckets over
the range (rolled-up stretches keep their stored width, one point per stored bucket);
the computation is :func:`metrics_toolkit.analysis.forecast.forecast`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from metrics_toolkit import catalog
from metrics_toolkit.analysis.forecast import forecast
from metrics_toolkit.frames.contract import choose_interval
from metrics_toolkit.intervals import Interval
from metrics_toolkit.reporting import buckets
from metrics_toolkit.reporting.model import Forecast
from metrics_toolkit.reporting.spec import expand
from metrics_toolkit.reporting.units import format_time

DEFAULT_LIMITS: dict[str, float] = {
    "disk.mounts.*.usage_percent": 100.0,
    "memory.usage_percent": 100.0,
}
#: Points per host and metric the fit aims under (pairs grow as the square).
FIT_BUDGET = 240
_DAY = 86_400.0


def targets(configured: Mapping[str, Any] | None, present: Sequence[str]) -> dict[str, float]:
    """``{metric path: limit}`` of the present metrics to forecast.

    Configured patterns win over the defaults; among matching patterns the one with the
    fewest ``*`` (the most specific) wins.
    """
    configured = {str(k): float(v) for k, v in (configured or {}).items()}
    ranked = [(p, limit, 1) for p, limit in DEFAULT_LIMITS.items() if p not in configured]
    ranked += [(p, limit, 0) for p, limit in configured.items()]
    chosen: dict[str, tuple[tuple[int, int], float]] = {}
    for pattern, limit, default in ranked:
        rank = (default, pattern.split(".").count("*"))
        for path, _ in expand(pattern, present):
            if path not in chosen or rank < chosen[path][0]:
                chosen[path] = (rank, limit)
    return {path: limit for path, (_, limit) in sorted(chosen.items())}


def build_forecasts(
    detail: pd.DataFrame,
    limits: Mapping[str, float],
    *,
    start: datetime,
    end: datetime,
    detail_interval: str,
    labels: Mapping[str, str],
) -> list[Forecast]:
    """One :class:`Forecast` per host and metric of ``limits`` with data in ``detail``."""
    present = [m for m in buckets.metrics_of(detail) if m in limits]
    if not present or not len(detail):
        return []
    width = choose_interval(start, end, point_budget=FIT_BUDGET)
    frame = detail
    if width.seconds > Interval.parse(detail_interval).seconds:
        frame = buckets.merge(detail[[*present, buckets.ROW]], width)
    hosts = frame.index.get_level_values("host")
    stamps = pd.DatetimeIndex(frame.index.get_level_values("timestamp")).as_unit("us").asi8 / 1e6
    mids = stamps + frame[buckets.SECONDS].to_numpy(dtype=np.float64) / 2
    out = []
    for metric in present:
        means = frame[metric, "mean"].to_numpy(dtype=np.float64)
        for host in sorted(set(hosts)):
            keep = np.asarray(hosts == host) & np.isfinite(means)
            if keep.any():
                out.append(
                    _one(str(host), metric, labels.get(metric, metric), limits[metric],
                         mids[keep], means[keep], start, end, width)
                )  # fmt: skip
    return out


def _one(
    host: str,
    metric: str,
    label: str,
    limit: float,
    times: np.ndarray[Any, np.dtype[np.float64]],
    values: np.ndarray[Any, np.dtype[np.float64]],
    start: datetime,
    end: datetime,
    width: Interval,
) -> Forecast:
    finish = end.timestamp()
    trend = forecast((times - finish) / _DAY, values, limit)
    full_at = None
    if trend.days_left is not None:
        full_at = end + timedelta(days=trend.days_left)
    window = f"{format_time(start)} to {format_time(end)}"
    return Forecast(
        host=host,
        metric=metric,
        label=label,
        unit=catalog.unit_of(metric),
        limit=limit,
        slope_per_day=trend.slope,
        days_left=trend.days_left,
        full_at=full_at,
        basis=f"{trend.method}, {width} buckets, {window}",
        level=trend.level,
        since=datetime.fromtimestamp(finish + trend.since * _DAY, UTC),
        times=tuple(float(t) for t in times),
        values=tuple(float(v) for v in values),
    )


__all__ = ["DEFAULT_LIMITS", "FIT_BUDGET", "build_forecasts", "targets"]
