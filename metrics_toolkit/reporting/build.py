"""``build_report``: read what a report needs once, compute every section, return a Report.

The data come from **one** ``load_frame`` call: every charted, summarised and
threshold-checked metric of the range, at the report's *detail* width, with the mergeable
statistics ``sum, count, min, max`` per host. Every section reuses that frame: the charts
merge it into coarser buckets, the summary and the breaches read it directly, completeness
counts its samples. Besides it, a report makes a second, smaller ``load_frame`` over the
previous period of equal length (only ``sum`` and ``count``, in a handful of buckets, for
the change column) and a few cheap reads (:mod:`metrics_toolkit.reporting.metadata`).

Widths:

- the chart ``interval`` (default: a few hundred points over the range, as the explorer);
- the *detail* width: the finest standard width that is at least the collection interval,
  gives at most :data:`DETAIL_BUDGET` buckets per host and divides the chart interval.
  Breaches, p50/p95 and gaps are computed at this width (24 h of 10 s data: 10 s, exact;
  30 days: 5 min).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pandas as pd
from sqlalchemy import Connection

from metrics_toolkit.analysis import breaches as episodes
from metrics_toolkit.analysis import buckets, comparisons, summaries
from metrics_toolkit.analysis.coverage import completeness
from metrics_toolkit.analysis.reads import collection_intervals, straddling_rows
from metrics_toolkit.errors import InvalidArgument, InvalidInterval
from metrics_toolkit.frames.contract import (
    AUTO_WIDTHS,
    MissingDataWarning,
    TimeLike,
    choose_interval,
    parse_time,
)
from metrics_toolkit.frames.load import list_metrics, load_frame, time_range
from metrics_toolkit.frames.sources import Source, connect
from metrics_toolkit.intervals import Interval, as_utc
from metrics_toolkit.reporting import breaches, forecasts, metadata, spec
from metrics_toolkit.reporting.model import Report
from metrics_toolkit.reporting.processes import top_processes
from metrics_toolkit.reporting.units import format_time
from metrics_toolkit.store.db import mask_url
from metrics_toolkit.store.policies import read_policy
from metrics_toolkit.store.threshold_rules import ThresholdRule, parse_rules

#: Chart points per host the default chart interval aims under.
CHART_BUDGET = 400
#: Detail buckets per host at most (breaches, percentiles and gaps are computed on them).
DETAIL_BUDGET = 12_000
#: Buckets the previous-period query returns per host at most (only sums and counts).
PREVIOUS_BUDGET = 8
#: Snapshots sampled for the top-process lists.
PROCESS_INSTANTS = 96
#: ``end="latest"``: the minute after the newest snapshot (of the host, if one is given).
LATEST = "latest"
#: The collection interval assumed when the range has no raw rows and config has none.
DEFAULT_SAMPLE_SECONDS = 10

#: The config keys a report reads.
CONFIG_READ = (
    "report.thresholds",
    "collector.interval",
    "report.forecast_limits",
    "report.forecast_days",
)

PeriodLike = str | Interval | timedelta | None
Thresholds = Mapping[str, Any] | Sequence[ThresholdRule] | None


def build_report(
    source: Source,
    *,
    start: TimeLike = None,
    end: TimeLike = None,
    period: PeriodLike = None,
    host: str | None = None,
    interval: str | Interval | timedelta | None = None,
    metric_type: str = "aggregated",
    thresholds: Thresholds = None,
    now: datetime | None = None,
) -> Report:
    """Build the report of ``[start, end)`` from ``source`` (Engine, Connection, Session, URL).

    The range: ``period`` (``"24h"``, ``"7d"``, ``"30d"`` or any interval-like width) ending
    at ``end`` (default: ``now``, the current time floored to the minute; ``"latest"``: the
    minute after the newest snapshot), or ``start`` and
    ``end``; with neither ``start`` nor ``period``, from the first snapshot. ``host``
    restricts the report to one host label (default: every host, each shown apart).
    ``interval`` is the chart bucket width (default or ``"auto"``: a few hundred points).
    ``thresholds`` overrides config ``report.thresholds`` (same form, or rules).

    A range without data gives a report whose ``empty`` is True and whose ``warnings``
    say so; it is not an error. Raises
    :class:`~metrics_toolkit.errors.InvalidArgument` for a range that ends before it
    starts and :class:`~metrics_toolkit.errors.InvalidInterval` for bad widths.
    """
    generated = as_utc(now) if now is not None else datetime.now(UTC)
    span = _period(period)
    auto = interval is None or (isinstance(interval, str) and interval.strip() == "auto")
    chart_width = None if auto else _interval(interval, "interval")
    with connect(source) as connection:
        lo, hi = _in_calendar(
            partial(_range, connection, start, end, span, generated, metric_type, host)
        )
        label = _label(period, hi - lo)
        config = metadata.read_config(connection, list(CONFIG_READ))
        rules = _rules(thresholds, config["report.thresholds"])
        report = Report(
            title=_title(host, label),
            start=lo,
            end=hi,
            period=label,
            generated_at=generated,
            source=mask_url(connection.engine.url),
            metric_type=metric_type,
            host_filter=host,
            hosts=[],
            interval=str(chart_width or choose_interval(lo, hi, point_budget=CHART_BUDGET)),
            detail_interval="",
            sample_interval="",
            policy=read_policy(connection, create=False),
            thresholds=rules,
        )
        _fill(connection, report, rules, config, chart_width)
    return report


def _fill(
    connection: Connection,
    report: Report,
    rules: list[ThresholdRule],
    config: dict[str, Any],
    chart_width: Interval | None,
) -> None:
    scope = metadata.Scope(report.metric_type, report.start, report.end, report.host_filter)
    present = [
        m.path
        for m in list_metrics(
            connection,
            report.start,
            report.end,
            metric_type=report.metric_type,
            host=report.host_filter,
            sample=100,
        )
    ]
    if not present:
        report.warnings.append(_no_data(report))
        return
    report.sections = spec.sections(present)
    wanted = spec.summary_metrics(present)
    limits = forecasts.targets(config["report.forecast_limits"], present)
    paths = list(
        dict.fromkeys([p for p, _ in wanted] + breaches.rule_metrics(rules, present) + [*limits])
    )
    detected = metadata.sample_intervals(connection, scope)
    fallback = _config_seconds(config["collector.interval"])
    sample_seconds = max(detected.values(), default=fallback)
    chart = chart_width or Interval.parse(report.interval)
    detail = detail_width(report.start, report.end, sample_seconds, chart)
    # The detail width follows the slowest host, so that no host shows a gap per bucket.
    fastest = min(detected.values(), default=sample_seconds)
    report.sample_interval = _seconds_name(sample_seconds)
    if fastest != sample_seconds:
        report.sample_interval = f"{_seconds_name(fastest)} to {report.sample_interval}"
    report.detail_interval = str(detail)
    loaded = load_frame(
        connection,
        report.start,
        report.end,
        metrics=paths,
        metric_type=report.metric_type,
        host=report.host_filter,
        interval=detail,
        stats=buckets.STATS,
        by_host=True,
    )
    stored = list(loaded.attrs.get("stored_intervals") or [])
    rolled = metadata.rolled_rows(connection, scope) if stored else []
    frame = buckets.with_widths(loaded, detail, rolled).sort_index()
    if not len(frame):
        report.warnings.append(_no_data(report))
        return
    hosts = sorted({str(h) for h in frame.index.get_level_values("host")})
    known = collection_intervals(connection, scope, rolled) if rolled else detected
    per_host = {h: known.get(h, sample_seconds) for h in hosts}
    covered = completeness(
        frame,
        start=report.start,
        end=report.end,
        hosts=hosts,
        sample_seconds=per_host,
        rolled=rolled,
        before=straddling_rows(connection, scope),
    )
    # Sparse hosts are listed apart, unless every host is (then there is nothing else).
    report.sparse = [c for c in covered if c.sparse] if not all(c.sparse for c in covered) else []
    report.completeness = [c for c in covered if c not in report.sparse]
    report.hosts = [c.host for c in report.completeness]
    skip = [c.host for c in report.sparse]
    if skip:  # the collection interval of the hosts shown, not of a few live snapshots
        shown = sorted({per_host[h] for h in report.hosts})
        report.sample_interval = " to ".join(
            _seconds_name(s) for s in (shown[0], shown[-1])[: len(shown)]
        )
    report.detail = frame
    report.chart = buckets.merge(_without(frame, skip), chart)
    # load_frame's own note on stored widths is replaced by the report's, below.
    report.notes.extend(
        str(n) for n in loaded.attrs.get("notes") or [] if not (stored and "rolled up" in str(n))
    )
    previous = _previous(connection, report, wanted, per_host)
    report.summary = summaries.summarize(frame, wanted, previous, skip=skip)
    report.comparison_note = comparisons.footnote(
        (r.host, r.previous_coverage) for r in report.summary if r.change is None
    )
    report.percentile_basis = summaries.percentile_basis(frame, report.detail_interval, stored)
    report.breaches, report.unjudged = episodes.detect(
        frame, breaches.checks(rules, present), end=report.end, sample_seconds=per_host
    )
    report.breach_basis = episodes.basis(rules, report.detail_interval)
    report.forecast_days = float(config["report.forecast_days"])
    report.forecasts = forecasts.build_forecasts(
        _without(frame, skip),
        limits,
        start=report.start,
        end=report.end,
        detail_interval=report.detail_interval,
        labels=dict(wanted),
    )
    samples = metadata.process_samples(
        connection, scope, instants=PROCESS_INSTANTS, per_instant=len(report.hosts)
    )
    report.processes = top_processes(samples)
    report.process_samples = len(samples)
    if stored:
        report.notes.append(
            "Part of the range is stored rolled up (" + ", ".join(stored) + "): see Data "
            "completeness. Mean, min and max stay exact there; charts show one point per "
            "stored bucket."
        )


def _without(frame: pd.DataFrame, hosts: Sequence[str]) -> pd.DataFrame:
    """``frame`` without the rows of ``hosts`` (sparse hosts are not charted)."""
    if not hosts or not len(frame):
        return frame
    return frame[~frame.index.get_level_values("host").isin(list(hosts))]


def _previous(
    connection: Connection,
    report: Report,
    wanted: Sequence[tuple[str, str]],
    sample_seconds: Mapping[str, int],
) -> dict[tuple[str, str], comparisons.Previous]:
    """Sample-weighted means per (metric, host) over the previous period of equal length,
    each with its samples and the previous period's coverage."""
    length = report.end - report.start
    lo, hi = report.start - length, report.start
    with warnings.catch_warnings():  # a metric new in this period is not a mistake here
        warnings.simplefilter("ignore", MissingDataWarning)
        frame = load_frame(
            connection,
            lo,
            hi,
            metrics=[p for p, _ in wanted],
            metric_type=report.metric_type,
            host=report.host_filter,
            interval=choose_interval(lo, hi, point_budget=PREVIOUS_BUDGET),
            stats=("sum", "count"),
            by_host=True,
        )
    seconds = length.total_seconds()
    expected = {host: seconds / every for host, every in sample_seconds.items()}
    return comparisons.previous_means(frame, expected)


def detail_width(start: datetime, end: datetime, sample_seconds: int, chart: Interval) -> Interval:
    """The detail width: the finest standard width that is at least ``sample_seconds``,
    gives at most :data:`DETAIL_BUDGET` buckets over ``[start, end)`` and divides ``chart``
    (``chart`` itself when none does)."""
    span = max((end - start).total_seconds(), 1.0)
    for width in AUTO_WIDTHS:
        if width.seconds < sample_seconds or math.ceil(span / width.seconds) > DETAIL_BUDGET:
            continue
        if width.divides(chart) and width <= chart:
            return width
    return chart


def _interval(value: Any, name: str) -> Interval:
    try:
        return Interval.parse(value)
    except InvalidInterval as error:
        raise InvalidInterval(f"Report {name}: {error}") from None


def _period(period: PeriodLike) -> timedelta | None:
    if period is None:
        return None
    return _interval(period, "period").timedelta


def _in_calendar(bounds: Callable[[], tuple[datetime, datetime]]) -> tuple[datetime, datetime]:
    """The range ``bounds()`` gives, refused in one line when it, or the previous period of
    equal length it is compared with, leaves the years 1..9999."""
    try:
        lo, hi = bounds()
    except OverflowError:
        raise InvalidArgument(_OUT_OF_CALENDAR) from None
    if hi - lo > lo - datetime.min.replace(tzinfo=UTC):  # no previous period to compare
        raise InvalidArgument(_OUT_OF_CALENDAR)
    return lo, hi


_OUT_OF_CALENDAR = (
    "The report range, with the previous period of equal length it is compared with, must "
    "lie between the years 1 and 9999; give a later --start, an earlier --end or a shorter "
    "--period."
)


def _range(
    connection: Connection,
    start: TimeLike,
    end: TimeLike,
    span: timedelta | None,
    now: datetime,
    metric_type: str,
    host: str | None,
) -> tuple[datetime, datetime]:
    lo = parse_time(start, "start")
    if isinstance(end, str) and end.strip().lower() == LATEST:
        found = time_range(connection, metric_type=metric_type, host=host)
        end = found[1].replace(second=0, microsecond=0) + timedelta(minutes=1) if found else None
    hi = parse_time(end, "end")
    if lo is not None and span is not None and hi is None:
        hi = lo + span
    if hi is None:
        hi = now.replace(second=0, microsecond=0)
    if lo is None:
        if span is not None:
            lo = hi - span
        else:
            found = time_range(connection, metric_type=metric_type, host=host, end=hi)
            lo = found[0].replace(second=0, microsecond=0) if found else hi - timedelta(days=1)
    if lo >= hi:
        msg = (
            f"The report range must end after it starts (start {lo:%Y-%m-%d %H:%M}, "
            f"end {hi:%Y-%m-%d %H:%M} UTC)."
        )
        raise InvalidArgument(msg)
    return lo, hi


def _label(period: PeriodLike, length: timedelta) -> str:
    if isinstance(period, str) and period.strip():
        return period.strip()
    seconds = int(length.total_seconds())
    for size, unit in ((86_400, "d"), (3600, "h"), (60, "min")):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _title(host: str | None, label: str) -> str:
    return f"Metrics report: {host if host is not None else 'all hosts'}, {label}"


def _rules(given: Thresholds, stored: Any) -> list[ThresholdRule]:
    if given is None:
        return parse_rules(stored)
    if isinstance(given, Mapping):
        return parse_rules(given)
    return list(given)


def _config_seconds(value: Any) -> int:
    try:
        return Interval.parse(value).seconds
    except InvalidInterval:
        return DEFAULT_SAMPLE_SECONDS


def _seconds_name(seconds: int) -> str:
    try:
        return str(Interval.parse(f"{seconds}s"))
    except InvalidInterval:
        return f"{seconds}s"


def _no_data(report: Report) -> str:
    who = f"host {report.host_filter!r}" if report.host_filter is not None else "any host"
    return (
        f"No {report.metric_type} data for {who} between {format_time(report.start)} and "
        f"{format_time(report.end)}."
    )


__all__ = ["CHART_BUDGET", "DETAIL_BUDGET", "build_report", "detail_width"]
