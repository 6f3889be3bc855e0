"""Summaries of a bucket frame and the one percentile definition.

**p50 and p95** (report, explorer and notebooks alike): the inverted-CDF percentile of the
samples, where a bucket holding ``n`` samples counts as ``n`` samples at its mean
(:func:`weighted_quantile`). Where every bucket holds one sample (raw data) this is
exactly ``np.quantile(samples, q, method="inverted_cdf")``: the smallest sample with at
least ``q`` of the samples at or below it. Where buckets hold several samples (detail
buckets, stored rollups), it is that percentile of the bucket means, each weighted by its
samples: short peaks are smoothed, and :func:`percentile_basis` says so.

Mean, min and max come from the mergeable statistics, so they are exact whatever the
bucket width and through rolled-up rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from metrics_toolkit import catalog
from metrics_toolkit.analysis.buckets import metrics_of
from metrics_toolkit.analysis.comparisons import Previous, change
from metrics_toolkit.intervals import Interval

Floats = npt.NDArray[np.float64]
#: The percentile definition in words, for every place that shows a p95.
P95_DEFINITION = (
    "p95: the value 95 % of the samples are at or below (inverted CDF, each bucket counting "
    "as its samples at its mean; exact on raw samples)."
)


@dataclass(frozen=True)
class SummaryRow:
    """One metric on one host over a range.

    ``mean``, ``min`` and ``max`` are exact (sample-weighted mean, extremes of every
    sample, also through rollups). ``p50`` and ``p95`` follow :data:`P95_DEFINITION`.
    ``previous_mean`` is the mean over the previous period of equal length (None without
    data there), standing on ``previous_samples`` samples, ``previous_coverage`` of those
    expected (0..1); ``change`` is ``mean - previous_mean`` in the metric's unit, None when
    the previous period is under half covered (see
    :data:`metrics_toolkit.analysis.comparisons.MIN_COVERAGE`).
    """

    metric: str
    label: str
    host: str
    unit: str
    samples: int
    mean: float
    p50: float
    p95: float
    min: float
    max: float
    previous_mean: float | None
    change: float | None
    previous_samples: int = 0
    previous_coverage: float | None = None


def weighted_quantile(values: Floats, weights: Floats, q: float) -> float:
    """The ``q`` quantile of ``values`` where each value counts ``weights`` times.

    The inverted-CDF definition (numpy's ``method="inverted_cdf"``): the smallest value
    whose cumulative weight reaches ``q`` of the total. With all weights 1 it equals
    ``np.quantile(values, q, method="inverted_cdf")``. NaN values and non-positive
    weights are ignored; NaN when nothing is left.
    """
    keep = ~np.isnan(values) & (weights > 0)
    v, w = values[keep], weights[keep]
    if not len(v):
        return float("nan")
    order = np.argsort(v, kind="stable")
    cumulative = np.cumsum(w[order])
    position = int(np.searchsorted(cumulative, q * cumulative[-1], side="left"))
    return float(v[order][min(position, len(v) - 1)])


def grouped_quantiles(values: npt.ArrayLike, groups: npt.ArrayLike, count: int, q: float) -> Floats:
    """:func:`weighted_quantile` with unit weights of each group of ``values`` at once.

    ``groups`` holds each value's group number in ``range(count)``; the result has one
    quantile per group (NaN for a group without a value). Equal to calling
    :func:`weighted_quantile` on each group (sorting all values once instead of per group:
    the explorer's p95 per bucket and host over a day of raw samples).
    """
    data = np.asarray(values, dtype=np.float64)
    codes = np.asarray(groups, dtype=np.int64)
    keep = ~np.isnan(data)
    data, codes = data[keep], codes[keep]
    order = np.lexsort((data, codes))
    ordered = data[order]
    sizes = np.bincount(codes, minlength=count)[:count]
    firsts = np.concatenate(([0], np.cumsum(sizes)[:-1])) if count else sizes
    # The smallest rank whose cumulative count reaches q of the group's: as weighted_quantile
    # computes it (searchsorted over 1, 2, ... n of q * n), clipped to the last value.
    ranks = np.ceil(q * sizes.astype(np.float64)).astype(np.int64) - 1
    ranks = np.clip(ranks, 0, np.maximum(sizes - 1, 0))
    out = np.full(count, np.nan)
    present = sizes > 0
    out[present] = ordered[firsts[present] + ranks[present]]
    return out


def summarize(
    detail: pd.DataFrame,
    metrics: Sequence[tuple[str, str]],
    previous: dict[tuple[str, str], Previous],
    *,
    skip: Sequence[str] = (),
) -> list[SummaryRow]:
    """One row per (metric, host) with data, metrics in the given order, hosts sorted.

    Hosts in ``skip`` (sparse ones) get no row.
    """
    rows: list[SummaryRow] = []
    if not len(detail):
        return rows
    present = set(metrics_of(detail))
    hosts = detail.index.get_level_values("host")
    for metric, label in metrics:
        if metric not in present:
            continue
        block = detail[metric]
        for host in sorted(set(hosts) - set(skip)):
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
                    previous_mean=None if before is None else before.mean,
                    change=change(mean, before),
                    previous_samples=0 if before is None else before.samples,
                    previous_coverage=None if before is None else before.coverage,
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


__all__ = [
    "P95_DEFINITION",
    "SummaryRow",
    "grouped_quantiles",
    "percentile_basis",
    "summarize",
    "weighted_quantile",
]
