"""The report's tables and sentences as plain text cells, shared by the HTML and PDF renderers.

Cells are unescaped strings with human units (:mod:`metrics_toolkit.reporting.units`);
each renderer escapes or lays them out its own way, so both show the same words.
"""

from __future__ import annotations

from datetime import datetime

from metrics_toolkit import catalog
from metrics_toolkit.reporting.model import Report
from metrics_toolkit.reporting.units import (
    MISSING,
    format_change,
    format_count,
    format_duration,
    format_ratio,
    format_time,
    format_value,
)

#: Gaps listed in HTML and PDF at most (the JSON has every one).
GAP_LIMIT = 40

Rows = list[list[str]]


def _cell_time(moment: datetime | None) -> str:
    return format_time(moment, zone=False)


def _range(report: Report) -> str:
    return f"{format_time(report.start)} to {format_time(report.end)} ({report.period})"


def policy_text(report: Report) -> str:
    """The archive policy in one sentence."""
    p = report.policy
    if p is None:
        return "none stored (the defaults apply when the archive policy first runs)"
    last = format_time(p.last_archive_run) if p.last_archive_run else "never"
    return (
        f"raw for {p.downsample_after_days} days, then rolled up to {p.downsample_interval}; "
        f"deleted after {p.retention_days} days; archive {'on' if p.archive_enabled else 'off'}; "
        f"last run {last}"
    )


def header_items(report: Report) -> list[tuple[str, str]]:
    """``(label, value)`` pairs for the report's header."""
    hosts = ", ".join(report.hosts) if report.hosts else "none with data"
    if report.host_filter is not None and not report.hosts:
        hosts = f"{report.host_filter} (no data)"
    items = [
        ("Period", _range(report)),
        ("Hosts", hosts),
        ("Data source", report.source),
        ("Generated", format_time(report.generated_at, seconds=True)),
        ("Archive policy", policy_text(report)),
    ]
    if not report.empty:
        items.append(
            (
                "Resolution",
                f"charts {report.interval}, detail {report.detail_interval}, "
                f"collected every {report.sample_interval}",
            )
        )
    if report.metric_type != "aggregated":
        items.append(("Metric type", report.metric_type))
    return items


def summary_rows(report: Report) -> tuple[list[str], Rows, list[bool]]:
    """Headers, rows and "first row of a metric" flags of the summary table."""
    headers = ["Metric", "Host", "Mean", "p50", "p95", "Min", "Max", f"vs previous {report.period}"]
    rows: Rows = []
    firsts: list[bool] = []
    last_metric = None
    for row in report.summary:
        first = row.metric != last_metric
        last_metric = row.metric
        u = row.unit
        rows.append(
            [
                row.label if first else "",
                row.host,
                format_value(row.mean, u),
                format_value(row.p50, u),
                format_value(row.p95, u),
                format_value(row.min, u),
                format_value(row.max, u),
                MISSING if row.change is None else format_change(row.mean, row.previous_mean, u),
            ]
        )
        firsts.append(first)
    return headers, rows, firsts


def summary_notes(report: Report) -> list[str]:
    """What the summary stands on besides the table: changes not shown, sparse hosts left
    out, duration rules that could not be judged."""
    notes = [report.comparison_note] if report.comparison_note else []
    if report.sparse:
        listed = ", ".join(
            f"{c.host} ({format_count(c.received)} sample{'s' if c.received != 1 else ''}, "
            f"{format_ratio(c.ratio)} of {format_count(c.expected)} expected)"
            for c in report.sparse
        )
        notes.append(
            f"Sparse hosts, not summarised or charted (under 1 % of their expected samples): "
            f"{listed}."
        )
    for u in report.unjudged:
        notes.append(
            f"{u.pattern} above {format_value(u.threshold, catalog.unit_of(u.metric))} for "
            f"{format_duration(u.for_seconds)} could not be judged on {u.host}: its "
            f"{format_count(u.samples)} sample(s) every {format_duration(u.sample_seconds)} "
            "span less than that."
        )
    return notes


def _labels(report: Report) -> dict[str, str]:
    return {row.metric: row.label for row in report.summary}


def rule_texts(report: Report) -> list[str]:
    """One sentence per threshold rule."""
    out = []
    for rule in report.thresholds:
        unit = "percent" if rule.pattern.endswith("_percent") else ""
        limit = format_value(rule.above, unit) if unit else f"{rule.above:g}"
        hold = (
            f"for at least {format_duration(rule.for_seconds)} (bucket means)"
            if rule.for_seconds
            else "(any sample)"
        )
        out.append(f"{rule.pattern} above {limit} {hold}")
    return out


def breach_rows(report: Report) -> tuple[list[str], Rows]:
    """Headers and rows of the breach episodes table."""
    labels = _labels(report)
    headers = ["Host", "Metric", "Start (UTC)", "End (UTC)", "Duration", "Peak", "Mean"]
    rows = [
        [
            b.host,
            f"{labels.get(b.metric, b.metric)} > {format_value(b.threshold, b.unit)}",
            _cell_time(b.start),
            _cell_time(b.end),
            format_duration(b.seconds),
            f"{format_value(b.peak, b.unit)} at {b.peak_at:%H:%M}",
            format_value(b.mean, b.unit),
        ]
        for b in report.breaches
    ]
    return headers, rows


def completeness_rows(report: Report) -> tuple[list[str], Rows]:
    """Headers and rows of the per-host completeness table."""
    headers = [
        "Host",
        "Every",
        "Expected",
        "Received",
        "Ratio",
        "Gaps",
        "Data from (UTC)",
        "Data to",
    ]
    rows = [
        [
            c.host,
            c.sample_interval,
            format_count(c.expected),
            format_count(c.received),
            format_ratio(c.ratio),
            f"{len(c.gaps)} ({format_duration(c.gap_seconds)})" if c.gaps else "none",
            _cell_time(c.first),
            _cell_time(c.last),
        ]
        for c in report.completeness
    ]
    return headers, rows


def gap_rows(report: Report, *, limit: int = GAP_LIMIT) -> tuple[list[str], Rows, int]:
    """Headers, the first ``limit`` gaps (longest first) and how many were left out."""
    every = [(c.host, g) for c in report.completeness for g in c.gaps]
    every.sort(key=lambda item: (-item[1].seconds, item[1].start))
    shown = sorted(every[:limit], key=lambda item: (item[0], item[1].start))
    rows = [
        [
            host,
            _cell_time(g.start),
            _cell_time(g.end),
            format_duration(g.seconds),
            f"{format_count(round(g.missing))} of {format_count(round(g.expected))}"
            if g.partial
            else "all",
        ]
        for host, g in shown
    ]
    headers = ["Host", "Start (UTC)", "End (UTC)", "Length", "Samples missing"]
    return headers, rows, max(0, len(every) - limit)


def rolled_rows(report: Report) -> tuple[list[str], Rows]:
    """Headers and rows of the rolled-up stretches table."""
    rows = [
        [
            c.host,
            span.interval,
            _cell_time(span.start),
            _cell_time(span.end),
            format_count(span.rows),
            format_count(span.samples),
        ]
        for c in report.completeness
        for span in c.rolled_up
    ]
    return ["Host", "Rolled up to", "From (UTC)", "To (UTC)", "Rows", "Samples"], rows


def process_tables(report: Report) -> list[tuple[str, str, list[str], Rows]]:
    """``(host, title, headers, rows)`` per host and ranking (CPU, then memory)."""
    out = []
    for host in report.hosts:
        for ranking, title, figure in (("cpu", "by CPU", "CPU"), ("memory", "by memory", "RSS")):
            rows = [
                [
                    p.name,
                    format_value(p.mean, p.unit),
                    format_value(p.peak, p.unit),
                    format_ratio(p.seen),
                ]
                for p in report.processes
                if p.host == host and p.ranking == ranking
            ]
            if rows:
                headers = ["Process", f"Mean {figure}", "Peak", "Listed in"]
                out.append((host, f"{host}: {title}", headers, rows))
    return out


__all__ = [
    "GAP_LIMIT",
    "MISSING",
    "breach_rows",
    "completeness_rows",
    "gap_rows",
    "header_items",
    "policy_text",
    "process_tables",
    "rolled_rows",
    "rule_texts",
    "summary_notes",
    "summary_rows",
]
