"""Everything one explorer view shows, computed from a :class:`ViewQuery` in one call.

``build_view`` is what the app caches. All data goes through :func:`load_frame` with an
interval, so on PostgreSQL only buckets cross the wire, whatever the table size. The one
exception is the 95th percentile: it cannot be merged from bucket statistics, so it is
computed from raw samples, and only where it is defined: when no row of the range is
rolled up and the range holds at most ``p95_limit`` values. Otherwise the view says why
there is no p95 instead of showing a wrong number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from metrics_toolkit import catalog
from metrics_toolkit.analysis.coverage import HostCompleteness, cover
from metrics_toolkit.analysis.gaps import Gap
from metrics_toolkit.analysis.reads import Scope, collection_intervals, straddling_rows
from metrics_toolkit.analysis.summaries import grouped_quantiles
from metrics_toolkit.explorer.coverage import RolledUpPart, rolled_up_parts
from metrics_toolkit.explorer.query import AUTO, ViewQuery, stats_for
from metrics_toolkit.frames.contract import TIMESTAMP
from metrics_toolkit.frames.load import load_frame
from metrics_toolkit.frames.sources import Source, connect
from metrics_toolkit.intervals import Interval
from metrics_toolkit.rollup.arrays import bucket_starts

#: Most raw values (rows x metrics) read to compute percentiles.
P95_LIMIT = 500_000
SUMMARY_COLUMNS = ("mean", "p95", "min", "max", "samples")


@dataclass
class View:
    """The data of one view. ``frame`` has ``(metric, stat)`` columns (see ``stats_for``).

    ``frame``'s index is the bucket start (UTC), or ``(host, timestamp)`` when several hosts
    are shown apart. ``p95`` has the same index and one column per metric, or is None
    (``p95_reason`` says why).
    """

    query: ViewQuery
    frame: pd.DataFrame
    interval: str
    stored_intervals: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rolled_up: list[RolledUpPart] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    coverage: list[HostCompleteness] = field(default_factory=list)
    p95: pd.DataFrame | None = None
    p95_total: pd.Series | None = None
    p95_reason: str = ""
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def empty(self) -> bool:
        """True when no metric has a sample in the range."""
        return self.samples == 0

    @property
    def snapshots(self) -> int:
        """Snapshots in the range holding at least one of the metrics (gauges and rates).

        Per bucket row, the largest count of any metric: each snapshot gives every metric
        it holds one value, so a snapshot is counted once however many metrics it has.
        """
        counts = [c for c in self.frame.columns if c[1] == "count"]
        if not counts:
            return 0
        values = np.nan_to_num(self.frame[counts].to_numpy(dtype=np.float64))
        return int(values.max(axis=1, initial=0).sum())

    @property
    def samples(self) -> int:
        """Metric values in the range (one per metric per snapshot holding it), plus
        buckets with a counter increase."""
        counts = [c for c in self.frame.columns if c[1] == "count"]
        increases = [c for c in self.frame.columns if c[1] == "increase"]
        total = np.nansum(self.frame[counts].to_numpy()) if counts else 0.0
        if increases:
            total += np.isfinite(self.frame[increases].to_numpy(dtype=np.float64)).sum()
        return int(total)


def _keep_hosts(frame: pd.DataFrame, hosts: Sequence[str]) -> pd.DataFrame:
    if not hosts or not isinstance(frame.index, pd.MultiIndex):
        return frame
    kept = frame[frame.index.get_level_values("host").isin(list(hosts))]
    kept.attrs = dict(frame.attrs)
    return kept


def _load(
    source: Source, query: ViewQuery, metrics: list[str], interval: str, tiers: bool
) -> pd.DataFrame:
    """Buckets of ``metrics`` with ``(metric, stat)`` columns, kept apart per host.

    Hosts stay apart in the database unless the query names one host, so a single query
    also tells each host's gaps; :func:`pool_hosts` merges them afterwards when wanted.
    """
    stats = stats_for(catalog.kind_of(metrics[0]))
    frame = load_frame(
        source,
        query.start,
        query.end,
        metrics=metrics,
        host=query.host,
        by_host=query.host is None,
        interval=interval,
        stats=stats,
        point_budget=query.point_budget,
        tiers=tiers,
    )
    if not isinstance(frame.columns, pd.MultiIndex):  # one stat: make it (metric, stat)
        frame.columns = pd.MultiIndex.from_tuples(
            [(m, stats[0]) for m in frame.columns], names=["metric", "stat"]
        )
    return _keep_hosts(frame, query.hosts) if query.hosts else frame


def pool_hosts(frame: pd.DataFrame) -> pd.DataFrame:
    """Merge per-host buckets (a ``(host, timestamp)`` index) into one row per bucket.

    By the rollup rule's merge law: counts add, the mean is sample-weighted (sum of mean x
    count over the total count), min of mins, max of maxes; a counter's increases add and
    its peak rate is the highest. The result equals pooling the hosts in the database.
    """
    pooled: dict[tuple[str, str], pd.Series] = {}
    for metric, stat in frame.columns:
        column = frame[(metric, stat)]
        by_bucket = column.groupby(level=TIMESTAMP, sort=True)
        if stat == "mean":
            counts = frame[(metric, "count")].fillna(0.0)
            total = (column.fillna(0.0) * counts).groupby(level=TIMESTAMP, sort=True).sum()
            samples = counts.groupby(level=TIMESTAMP, sort=True).sum()
            pooled[metric, stat] = (total / samples.where(samples > 0)).astype(np.float64)
        elif stat == "count":
            pooled[metric, stat] = by_bucket.sum()
        elif stat == "increase":
            pooled[metric, stat] = by_bucket.sum(min_count=1)
        elif stat == "min":
            pooled[metric, stat] = by_bucket.min()
        else:  # max, max_rate
            pooled[metric, stat] = by_bucket.max()
    result = pd.DataFrame(pooled)
    result.columns = pd.MultiIndex.from_tuples(list(pooled), names=["metric", "stat"])
    result.index = pd.DatetimeIndex(result.index, name=TIMESTAMP)
    result.attrs = dict(frame.attrs)
    return result


def build_view(
    source: Source,
    query: ViewQuery,
    *,
    p95_limit: int = P95_LIMIT,
    percentiles: bool = True,
    tiers: bool = True,
) -> View:
    """Load the buckets of ``query`` and derive the notes, gaps, p95 and summary.

    One bucket query per metric kind (gauges and rates; counters), per host, computed in
    the database; the gaps come from the same buckets, then hosts are pooled unless the
    query shows several apart. Percentiles read raw values only within ``p95_limit``.

    ``percentiles=False`` leaves them out (``p95`` None, the summary's p95 NaN, no
    ``p95_reason``): the explorer draws the charts first and adds them with
    :func:`with_percentiles`, the one read of raw samples, while the browser draws.
    ``tiers=False`` reads the buckets from the snapshots only (``load_frame(tiers=False)``:
    the same numbers, the rollup tiers left unread).
    """
    gauges = [m for m in query.metrics if catalog.kind_of(m) != "counter"]
    counters = [m for m in query.metrics if catalog.kind_of(m) == "counter"]
    frames: list[pd.DataFrame] = []
    interval = query.interval
    for group in (gauges, counters):
        if group:
            part = _load(source, query, group, interval, tiers)
            interval = part.attrs.get("interval") or interval  # counters use the same width
            frames.append(part)
    if not frames:
        frame = pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name=TIMESTAMP))
        return View(query, frame, interval if interval != AUTO else "")
    per_host = frames[0] if len(frames) == 1 else frames[0].join(frames[1], how="outer")
    apart = isinstance(per_host.index, pd.MultiIndex)
    frame = pool_hosts(per_host) if apart and not query.by_host else per_host
    stored = sorted(
        {s for f in frames for s in f.attrs.get("stored_intervals", [])},
        key=lambda s: Interval.parse(s).seconds,
    )
    view = View(
        query,
        frame,
        str(interval),
        stored_intervals=stored,
        notes=list(dict.fromkeys(n for f in frames for n in f.attrs.get("notes", []))),
    )
    if view.empty:
        return view
    if stored:
        view.rolled_up = rolled_up_parts(source, query.start, query.end, hosts=query.hosts)
    view.coverage = _coverage(
        source, query, per_host, Interval.parse(view.interval), view.rolled_up
    )
    view.gaps = sorted(
        (g for c in view.coverage for g in c.gaps), key=lambda g: (g.start, g.host or "")
    )
    view.summary = summarize(frame, None)
    return with_percentiles(source, view, p95_limit) if percentiles else view


def with_percentiles(source: Source, view: View, p95_limit: int = P95_LIMIT) -> View:
    """``view`` with its p95 (per bucket and over the range) and the summary's p95 column.

    A new :class:`View` (the one given, maybe cached, is left as it is); where p95 is not
    defined, ``p95`` stays None and ``p95_reason`` says why.
    """
    if view.empty:
        return view
    gauges = [m for m in view.query.metrics if catalog.kind_of(m) != "counter"]
    p95, total, reason = _p95(source, view.query, gauges, view, p95_limit)
    summary = view.summary.copy()
    if len(summary):
        summary["p95"] = [
            _lookup(total, *(key if isinstance(key, tuple) else (None, key)))
            for key in summary.index
        ]
    return replace(view, p95=p95, p95_total=total, p95_reason=reason, summary=summary)


def _has_data(frame: pd.DataFrame) -> pd.Series:
    """Per row: does any metric have a sample (a count above 0, or a counter increase)?"""
    stats = frame.columns.get_level_values("stat")
    mask = pd.Series(False, index=frame.index)
    if (stats == "count").any():
        mask |= (frame.loc[:, stats == "count"].fillna(0) > 0).any(axis=1)
    if (stats == "increase").any():
        mask |= frame.loc[:, stats == "increase"].notna().any(axis=1)
    return mask


def _coverage(
    source: Source,
    query: ViewQuery,
    frame: pd.DataFrame,
    width: Interval,
    parts: list[RolledUpPart],
) -> list[HostCompleteness]:
    """Coverage and gaps of each host shown, by the analysis layer's code (as the report).

    Each bucket with data stands for its width (the stored width inside a part rolled up
    coarser than the view) and holds the samples its counts say; a stored bucket reaching
    into the range from before its start counts for its part inside.
    """
    scope = Scope("aggregated", query.start, query.end, query.host)
    with connect(source) as connection:
        before = straddling_rows(connection, scope)
        every = collection_intervals(connection, scope, before)
    has_data = _has_data(frame).to_numpy()
    rows = frame[has_data]
    stamps = pd.DatetimeIndex(rows.index.get_level_values(TIMESTAMP))
    starts = stamps.as_unit("us").asi8 / 1e6
    coarse = [p for p in parts if Interval.parse(p.interval).seconds > width.seconds]
    widths = np.array(
        [
            max(
                [width.seconds]
                + [Interval.parse(p.interval).seconds for p in coarse if p.covers(t)]
            )
            for t in stamps.to_pydatetime()
        ],
        dtype=np.float64,
    )
    counts = [c for c in rows.columns if c[1] == "count"]
    held = rows[counts].fillna(0.0).to_numpy().max(axis=1) if counts else np.zeros(len(rows))
    if isinstance(rows.index, pd.MultiIndex):
        hosts = [str(h) for h in rows.index.get_level_values("host")]
    else:
        hosts = [query.host or ""] * len(rows)
    out: list[HostCompleteness] = []
    for name in sorted(
        set(hosts) | {r.host for r in before if not query.hosts or r.host in query.hosts}
    ):
        step = every.get(name) or max(every.values(), default=width.seconds)
        mine = np.asarray([h == name for h in hosts], dtype=bool)
        edge = [r for r in before if r.host == name]
        # A bucket with only counter data has no sample count: it counts as full.
        full = widths[mine] / step
        samples = np.where(held[mine] > 0, held[mine], full)
        columns = (
            [r.timestamp.timestamp() for r in edge] + starts[mine].tolist(),
            [float(r.seconds) for r in edge] + widths[mine].tolist(),
            [float(r.samples) for r in edge] + samples.tolist(),
        )
        out.append(cover(name, columns, start=query.start, end=query.end, every=step))
    return out


def _p95(
    source: Source, query: ViewQuery, gauges: list[str], view: View, limit: int
) -> tuple[pd.DataFrame | None, pd.Series | None, str]:
    if not gauges:
        return None, None, "p95 is not defined for counters."
    if view.rolled_up:
        widths = ", ".join(sorted({p.interval for p in view.rolled_up}))
        return (
            None,
            None,
            (
                f"p95 needs raw samples, and part of this range is stored rolled up to {widths}: "
                "percentiles cannot be merged from bucket statistics."
            ),
        )
    values = int(np.nansum(view.frame.loc[:, (gauges, "count")].to_numpy()))
    if values > limit:
        return (
            None,
            None,
            (
                f"p95 needs raw samples, and this range holds {values:,} of them (the limit is "
                f"{limit:,}): choose a shorter range or fewer metrics."
            ),
        )
    apart = query.by_host or len(query.hosts) > 1  # named hosts are kept apart to filter
    raw = load_frame(
        source,
        query.start,
        query.end,
        metrics=gauges,
        host=query.host,
        by_host=apart,
        interval=None,
    )
    raw = _keep_hosts(raw, query.hosts) if apart else raw
    if not query.by_host and "host" in raw.index.names:  # pooled: one series of samples
        raw = raw.droplevel("host").sort_index()
    buckets, total = bucket_quantile(raw, Interval.parse(view.interval), 0.95)
    return buckets, total, ""


def bucket_quantile(
    values: pd.DataFrame, width: Interval, q: float
) -> tuple[pd.DataFrame, pd.Series]:
    """The ``q`` quantile of raw ``values`` per epoch-aligned bucket, and over the whole range.

    The percentile is the analysis layer's one definition
    (:data:`metrics_toolkit.analysis.summaries.P95_DEFINITION`: inverted CDF), as in the
    report. Buckets follow the rollup rule: ``[start, start + width)``, labelled by their
    start, aligned to the Unix epoch in UTC. With a ``(host, timestamp)`` index, both are
    per host (the total is then indexed by ``(host, metric)``). NaN values are ignored.
    """

    if isinstance(values.index, pd.MultiIndex):
        stamps = values.index.get_level_values(TIMESTAMP)
        keys = [values.index.get_level_values("host"), bucket_starts(stamps, width)]
        result = _quantile_per_group(values, values.groupby(keys), q)
        result.index.names = ["host", TIMESTAMP]
        total = _quantile_per_group(values, values.groupby(level="host"), q).stack()
    else:
        floor = bucket_starts(values.index, width).rename(TIMESTAMP)
        result = _quantile_per_group(values, values.groupby(floor), q)
        total = pd.Series(
            {m: grouped_quantiles(values[m], np.zeros(len(values)), 1, q)[0] for m in values},
            dtype=np.float64,
        )
    return result, total


def _quantile_per_group(values: pd.DataFrame, grouped: Any, q: float) -> pd.DataFrame:
    """``grouped.agg(quantile)`` for every column, sorting each column once (vectorised)."""
    codes = grouped.ngroup().to_numpy()
    index = grouped.size().index
    return pd.DataFrame(
        {m: grouped_quantiles(values[m], codes, len(index), q) for m in values.columns},
        index=index,
        columns=values.columns,
    )


def summarize(frame: pd.DataFrame, p95_total: pd.Series | None) -> pd.DataFrame:
    """Mean, p95, min, max and sample count per metric (per host and metric when apart).

    The mean is sample-weighted (sum of bucket mean x count over the total count), as the
    rollup rule defines it; for counters ``mean`` holds the total increase over the range
    and ``max`` the highest per-second rate.
    """
    by_host = isinstance(frame.index, pd.MultiIndex)
    groups: list[tuple[str | None, np.ndarray]]
    if by_host:  # each host's rows, hosts sorted (as a groupby on the host level)
        names = frame.index.get_level_values("host")
        groups = [(str(h), np.asarray(names == h)) for h in sorted(set(names))]
    else:
        groups = [(None, np.ones(len(frame), dtype=bool))]
    # Plain arrays per (metric, stat): selecting a metric's columns in a frame with
    # (metric, stat) columns costs milliseconds each, the rows of a host a mask.
    arrays = {key: frame[key].to_numpy(dtype=np.float64) for key in frame.columns}
    records = []
    for host, rows in groups:
        for metric in dict.fromkeys(frame.columns.get_level_values("metric")):
            record: dict[str, object] = {"metric": metric}
            if by_host:
                record["host"] = host
            if (metric, "count") in arrays:
                counts = np.nan_to_num(arrays[metric, "count"][rows], nan=0.0)
                samples = float(counts.sum())
                weighted = float((np.nan_to_num(arrays[metric, "mean"][rows]) * counts).sum())
                record.update(
                    mean=weighted / samples if samples else np.nan,
                    min=_extreme(np.nanmin, arrays[metric, "min"][rows]),
                    max=_extreme(np.nanmax, arrays[metric, "max"][rows]),
                    samples=int(samples),
                )
            else:
                increases = arrays[metric, "increase"][rows]
                present = ~np.isnan(increases)
                record.update(
                    mean=float(increases[present].sum()) if present.any() else np.nan,
                    min=np.nan,
                    max=_extreme(np.nanmax, arrays[metric, "max_rate"][rows]),
                    samples=int(present.sum()),
                )
            record["p95"] = _lookup(p95_total, host, metric)
            records.append(record)
    index = ["host", "metric"] if by_host else ["metric"]
    if not records:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    return pd.DataFrame.from_records(records).set_index(index)[list(SUMMARY_COLUMNS)]


def _extreme(pick: Any, values: np.ndarray) -> float:
    """``np.nanmin``/``np.nanmax`` of ``values``; NaN when none is a number (no warning)."""
    return float(pick(values)) if (~np.isnan(values)).any() else np.nan


def _lookup(total: pd.Series | None, host: str | None, metric: str) -> float:
    if total is None:
        return np.nan
    key = (host, metric) if host is not None else metric
    try:
        return float(total.loc[key])
    except KeyError:
        return np.nan
