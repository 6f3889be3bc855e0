"""The explorer's Report button: HTML and PDF from ``metrics_toolkit.reporting`` when present.

Reporting is a separate feature package; this module imports it lazily so the explorer
runs (and says that reports are unavailable) without it.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from metrics_toolkit.frames.sources import Source

REPORTING = "metrics_toolkit.reporting"
NEEDED = ("build_report", "render_html", "render_pdf")


@dataclass(frozen=True)
class ReportFiles:
    """A rendered report: HTML text, PDF bytes (None when PDF rendering is unavailable)."""

    name: str
    html: str
    pdf: bytes | None


def reporting_available() -> bool:
    """True when the reporting package is installed and offers what the explorer calls."""
    if importlib.util.find_spec(REPORTING) is None:
        return False
    try:
        module = importlib.import_module(REPORTING)
    except ImportError:
        return False
    return all(callable(getattr(module, name, None)) for name in NEEDED)


def report_name(start: datetime, end: datetime, host: str | None) -> str:
    """A file name stem such as ``report-all-20260101T0000-20260108T0000``."""
    stamp = "%Y%m%dT%H%M"
    label = "".join(c if c.isalnum() or c in "-_." else "_" for c in (host or "all"))
    return f"report-{label}-{start:{stamp}}-{end:{stamp}}"


def build_report_files(
    source: Source,
    *,
    start: datetime,
    end: datetime,
    host: str | None = None,
    interval: str | None = None,
) -> ReportFiles:
    """Build the report of ``[start, end)`` (one host or all) and render HTML and PDF."""
    reporting: Any = importlib.import_module(REPORTING)
    report = reporting.build_report(source, start=start, end=end, host=host, interval=interval)
    html = reporting.render_html(report)
    pdf = reporting.render_pdf(report)
    return ReportFiles(report_name(start, end, host), str(html), bytes(pdf) if pdf else None)
