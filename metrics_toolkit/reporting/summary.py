"""The summary table: mean, p50, p95, min and max per metric and host, and the change.

Mean, min and max come from the mergeable statistics of the detail frame, so they are
exact whatever the bucket width and through rolled-up rows. p50 and p95 can only be as
fine as the buckets: they are sample-weighted percentiles of the bucket means (exact when
every bucket holds one sample). :func:`percentile_basis` says which, in words.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from metrics_toolkit import catalog
from metrics_toolkit.intervals import Interval
from metrics_toolkit.reporting.buckets import metrics_of, weighted_quantile
from metrics_toolkit.reporting.model import SummaryRow


def host_means(frame: pd.DataFrame) -> dict[tuple[str, str], float]:
    """``{(metric, host): sample-weighted mean}`` of a frame with ``sum``/``count`` stats."""
    out: dict[tuple[str, str], float] = {}
    if not len(frame):
        return out
    hosts = frame.index.get_level_values("host")
    for metric in metrics_of(frame):
        sums = frame[metric, "sum"].groupby(hosts).sum(min_count=1)
        counts = frame[metric, "count"].fillna(0.0).groupby(hosts).sum()
        for host in sums.index:
            if counts[host] > 0 and not np.isnan(sums[host]):
                out[metric, str(host)] = float(sums[host] / counts[host])
    return out


def summarize(
    detail: pd.DataFrame,
    metrics: Sequence[tuple[str, str]],
    previous: dict[tuple[str, str], float],
) -> list[SummaryRow]:
    """One row per (metric, host) with data, metrics in the given order, hosts sorted."""
    rows: list[SummaryRow] = []
    if not len(detail):
        return rows
    present = set(metrics_of(detail))
    hosts = detail.index.get_level_values("host")
    for metric, label in metrics:
        if metric not in present:
            continue
        block = detail[metric]
        for host in sorted(set(hosts)):
            part = block[np.asarray(hosts == host)]
            count = part["count"].to_numpy(dtype=np.float64)
            total = float(np.nansum(count))
            if total <= 0:
                continue
            means = part["mean"].to_numpy(dtype=np.float64)
            mean = float(np.nansum(part["sum"].to_numpy(dtype=np.float64)) / total)
            before = previous.get((metric, host))
            rows.append(
                SummaryRow(
                    metric=metric,
                    label=label,
                    host=host,
                    unit=catalog.unit_of(metric),
                    samples=round(total),
                    mean=mean,
                    p50=weighted_quantile(means, count, 0.50),
                    p95=weighted_quantile(means, count, 0.95),
                    min=float(np.nanmin(part["min"].to_numpy(dtype=np.float64))),
                    max=float(np.nanmax(part["max"].to_numpy(dtype=np.float64))),
                    previous_mean=before,
                    change=None if before is None else mean - before,
                )
            )
    return rows


def percentile_basis(detail: pd.DataFrame, detail_interval: str, stored: Sequence[str] = ()) -> str:
    """A sentence saying what p50 and p95 are computed from, for this detail frame.

    ``stored``: the widths of rolled-up rows in the range (their buckets count as one mean).
    """
    metrics = metrics_of(detail)
    if not len(detail) or not metrics:
        return ""
    counts = np.column_stack([detail[m, "count"].to_numpy(dtype=np.float64) for m in metrics])
    if float(np.nanmax(counts)) <= 1:
        return "p50 and p95 are computed from every sample; mean, min and max are exact."
    coarser = [
        w for w in stored if Interval.parse(w).seconds > Interval.parse(detail_interval).seconds
    ]
    where = f", {', '.join(coarser)} where the data is stored rolled up," if coarser else ""
    return (
        f"p50 and p95 are computed from the {detail_interval} bucket means{where} each weighted "
        "by its number of samples, not from individual samples, so short peaks are smoothed; "
        "mean, min and max are exact (they merge exactly through buckets and rollups)."
    )


__all__ = ["host_means", "percentile_basis", "summarize"]
