"""The data of a report: plain dataclasses of numbers, times and frames, no rendering.

:func:`metrics_toolkit.reporting.build.build_report` fills a :class:`Report`; the HTML, PDF
and JSON renderers only read it. Times are timezone-aware UTC; durations are seconds;
metric values are in the catalog unit of their metric (``unit``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from metrics_toolkit.analysis.breaches import Breach, Unjudged
from metrics_toolkit.analysis.coverage import HostCompleteness, RolledSpan
from metrics_toolkit.analysis.gaps import Gap
from metrics_toolkit.analysis.summaries import SummaryRow
from metrics_toolkit.store.policies import PolicySettings
from metrics_toolkit.store.threshold_rules import ThresholdRule


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
    unjudged: list[Unjudged] = field(default_factory=list)
    completeness: list[HostCompleteness] = field(default_factory=list)
    sparse: list[HostCompleteness] = field(default_factory=list)
    comparison_note: str = ""
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
    "Unjudged",
]
