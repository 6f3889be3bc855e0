"""The data of a report: plain dataclasses of numbers, times and frames, no rendering.

:func:`metrics_toolkit.reporting.build.build_report` fills a :class:`Report`; the HTML, PDF
and JSON renderers only read it. Times are timezone-aware UTC; durations are seconds;
metric values are in the catalog unit of their metric (``unit``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from metrics_toolkit.store.policies import PolicySettings
from metrics_toolkit.store.threshold_rules import ThresholdRule


@dataclass(frozen=True)
class SummaryRow:
    """One metric on one host over the report's range.

    ``mean``, ``min`` and ``max`` are exact (sample-weighted mean, extremes of every
    sample, also through rollups). ``p50`` and ``p95`` are sample-weighted percentiles of
    the bucket means at the report's ``detail_interval`` (see ``Report.percentile_basis``).
    ``previous_mean`` is the mean over the previous period of equal length (None without
    data there); ``change`` is ``mean - previous_mean`` in the metric's unit.
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
class Gap:
    """A stretch ``[start, end)`` of a host's range without any sample."""

    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class RolledSpan:
    """Rolled-up rows of one host at one width, back to back over ``[start, end)``."""

    interval: str
    start: datetime
    end: datetime
    rows: int
    samples: int


@dataclass(frozen=True)
class HostCompleteness:
    """Samples expected over the range (at ``sample_interval``) against those received."""

    host: str
    sample_interval: str
    expected: int
    received: int
    first: datetime | None
    last: datetime | None
    gaps: tuple[Gap, ...]
    rolled_up: tuple[RolledSpan, ...]

    @property
    def ratio(self) -> float:
        return self.received / self.expected if self.expected else 0.0

    @property
    def gap_seconds(self) -> float:
        return sum(g.seconds for g in self.gaps)


@dataclass(frozen=True)
class ProcessRow:
    """One process name's share of a host's top list over the sampled snapshots.

    ``mean`` averages over every sampled snapshot (0 where the name was not in the top
    list, so it is a lower bound); ``peak`` is the highest value seen; ``seen`` the share
    of sampled snapshots that listed it. ``unit`` is ``percent`` (CPU of one core = 100)
    or ``bytes`` (resident memory).
    """

    host: str
    ranking: str  # "cpu" or "memory"
    name: str
    unit: str
    mean: float
    peak: float
    seen: float


@dataclass(frozen=True)
class Forecast:
    """When ``metric`` on ``host`` reaches ``limit`` at the trend over the report's range.

    ``slope_per_day`` is the robust trend (None with too few points); ``days_left``
    counts from the report's end and is None when the trend is flat or falling (or the
    limit is more than ten years away); ``full_at`` is the moment it is reached.
    ``basis``: the window and the method, in words. For the chart: ``times`` (epoch
    seconds, bucket midpoints) and ``values`` (bucket means) over the range, the trend's
    ``level`` at the report's end and where the judged stretch begins (``since``).
    """

    host: str
    metric: str
    label: str
    unit: str
    limit: float
    slope_per_day: float | None
    days_left: float | None
    full_at: datetime | None
    basis: str
    level: float | None = None
    since: datetime | None = None
    times: tuple[float, ...] = field(default=(), repr=False)
    values: tuple[float, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class ChartPanel:
    """One axes of a chart: one metric, a line per host."""

    metric: str
    title: str
    unit: str


@dataclass(frozen=True)
class ChartSection:
    """A chart of the report (CPU, load, memory...), its panels stacked over time."""

    key: str
    title: str
    panels: tuple[ChartPanel, ...]


@dataclass
class Report:
    """Everything a renderer needs; built by ``build_report``.

    Frames (never modified after the build):

    - ``detail``: the one frame loaded from the database, per ``(host, timestamp)`` bucket
      of ``detail_interval`` (stored rollups coarser than that keep their width), with
      ``(metric, stat)`` columns ``sum``, ``count``, ``min``, ``max`` and ``mean``, and the
      row column ``("_row", "seconds")``: the bucket's width.
    - ``chart``: ``detail`` merged into buckets of ``interval`` by the rollup rule (sums
      and counts add, min of mins, max of maxes), same columns.
    """

    title: str
    start: datetime
    end: datetime
    period: str
    generated_at: datetime
    source: str
    metric_type: str
    host_filter: str | None
    hosts: list[str]
    interval: str
    detail_interval: str
    sample_interval: str
    policy: PolicySettings | None  # the archive policy in force when the report was built
    sections: list[ChartSection] = field(default_factory=list)
    summary: list[SummaryRow] = field(default_factory=list)
    thresholds: list[ThresholdRule] = field(default_factory=list)
    breaches: list[Breach] = field(default_factory=list)
    completeness: list[HostCompleteness] = field(default_factory=list)
    processes: list[ProcessRow] = field(default_factory=list)
    process_samples: int = 0
    forecasts: list[Forecast] = field(default_factory=list)
    #: The "Running out" section lists forecasts reaching their limit within this many days.
    forecast_days: float = 30.0
    percentile_basis: str = ""
    breach_basis: str = ""
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    detail: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    chart: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    @property
    def empty(self) -> bool:
        """True when the range holds no data at all (the report then says only that)."""
        return not self.hosts

    @property
    def seconds(self) -> float:
        """The length of the report's range in seconds."""
        return (self.end - self.start).total_seconds()

    def running_out(self) -> list[Forecast]:
        """Forecasts reaching their limit within ``forecast_days``, most urgent first."""
        soon = [
            f
            for f in self.forecasts
            if f.days_left is not None and f.days_left < self.forecast_days
        ]
        return sorted(soon, key=lambda f: (f.days_left, f.host, f.metric))

    def rows_for(self, metric: str) -> list[SummaryRow]:
        """The summary rows of one metric, one per host."""
        return [row for row in self.summary if row.metric == metric]


__all__ = [
    "Breach",
    "ChartPanel",
    "ChartSection",
    "Forecast",
    "Gap",
    "HostCompleteness",
    "ProcessRow",
    "Report",
    "RolledSpan",
    "SummaryRow",
    "ThresholdRule",
]
