"""The report's numbers as JSON-ready data, for machines.

Every value is a JSON type: times are ISO 8601 strings in UTC (``...+00:00``), durations
seconds, metric values plain numbers in the metric's catalog ``unit`` (no formatting), and
a value that does not exist (``NaN``, no previous period) is ``null``. Frames are not
included; the JSON holds the summary, breaches, completeness, forecasts (``days_left`` and
``full_at`` null when flat or falling) and top processes.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from metrics_toolkit.reporting.model import Report
from metrics_toolkit.reporting.units import relative_change

#: Bumped when a field changes meaning or disappears.
SCHEMA_VERSION = 1


def _num(value: float | None) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def render_json(report: Report) -> dict[str, Any]:
    """The report as a dict of JSON types (``json.dumps(render_json(r))`` always works)."""
    policy = report.policy
    return {
        "schema_version": SCHEMA_VERSION,
        "title": report.title,
        "period": report.period,
        "start": _time(report.start),
        "end": _time(report.end),
        "generated_at": _time(report.generated_at),
        "source": report.source,
        "metric_type": report.metric_type,
        "host": report.host_filter,
        "hosts": list(report.hosts),
        "empty": report.empty,
        "interval": report.interval or None,
        "detail_interval": report.detail_interval or None,
        "sample_interval": report.sample_interval or None,
        "policy": None
        if policy is None
        else {
            "retention_days": policy.retention_days,
            "downsample_after_days": policy.downsample_after_days,
            "downsample_interval": policy.downsample_interval,
            "archive_enabled": policy.archive_enabled,
            "last_archive_run": _time(policy.last_archive_run),
        },
        "warnings": list(report.warnings),
        "notes": list(report.notes),
        "percentile_basis": report.percentile_basis,
        "summary": [
            {
                "metric": r.metric,
                "label": r.label,
                "host": r.host,
                "unit": r.unit,
                "samples": r.samples,
                "mean": _num(r.mean),
                "p50": _num(r.p50),
                "p95": _num(r.p95),
                "min": _num(r.min),
                "max": _num(r.max),
                "previous_mean": _num(r.previous_mean),
                "previous_samples": r.previous_samples,
                "previous_coverage": _num(r.previous_coverage),
                "change": _num(r.change),
                "change_ratio": None
                if r.change is None
                else _num(relative_change(r.mean, r.previous_mean)),
            }
            for r in report.summary
        ],
        "thresholds": [
            {"metric": t.pattern, "above": t.above, "for_seconds": t.for_seconds}
            for t in report.thresholds
        ],
        "comparison_note": report.comparison_note,
        "breach_basis": report.breach_basis,
        "unjudged": [
            {
                "host": u.host,
                "metric": u.metric,
                "rule": u.pattern,
                "above": u.threshold,
                "for_seconds": u.for_seconds,
                "samples": u.samples,
                "sample_seconds": u.sample_seconds,
            }
            for u in report.unjudged
        ],
        "breaches": [
            {
                "host": b.host,
                "metric": b.metric,
                "unit": b.unit,
                "threshold": b.threshold,
                "for_seconds": b.for_seconds,
                "start": _time(b.start),
                "end": _time(b.end),
                "seconds": b.seconds,
                "peak": _num(b.peak),
                "peak_at": _time(b.peak_at),
                "mean": _num(b.mean),
            }
            for b in report.breaches
        ],
        "completeness": [
            {
                "host": c.host,
                "sample_interval": c.sample_interval,
                "expected": c.expected,
                "received": c.received,
                "ratio": _num(c.ratio),
                "first": _time(c.first),
                "last": _time(c.last),
                "gap_seconds": c.gap_seconds,
                "gaps": [
                    {
                        "start": _time(g.start),
                        "end": _time(g.end),
                        "seconds": g.seconds,
                        "missing": round(g.missing),
                        "expected": round(g.expected),
                        "partial": g.partial,
                    }
                    for g in c.gaps
                ],
                "rolled_up": [
                    {
                        "interval": s.interval,
                        "start": _time(s.start),
                        "end": _time(s.end),
                        "rows": s.rows,
                        "samples": s.samples,
                    }
                    for s in c.rolled_up
                ],
            }
            for c in report.completeness
        ],
        "forecasts": [
            {
                "host": f.host,
                "metric": f.metric,
                "unit": f.unit,
                "limit": f.limit,
                "slope_per_day": _num(f.slope_per_day),
                "days_left": _num(f.days_left),
                "full_at": _time(f.full_at),
                "basis": f.basis,
            }
            for f in report.forecasts
        ],
        "sparse_hosts": [
            {
                "host": c.host,
                "sample_interval": c.sample_interval,
                "samples": c.received,
                "expected": c.expected,
                "ratio": _num(c.ratio),
            }
            for c in report.sparse
        ],
        "top_processes": {
            "samples": report.process_samples,
            "rows": [
                {
                    "host": p.host,
                    "ranking": p.ranking,
                    "name": p.name,
                    "unit": p.unit,
                    "mean": _num(p.mean),
                    "peak": _num(p.peak),
                    "seen": _num(p.seen),
                }
                for p in report.processes
            ],
        },
    }


__all__ = ["SCHEMA_VERSION", "render_json"]
