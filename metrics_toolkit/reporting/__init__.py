"""Reports: build the numbers and frames once, render them as HTML, PDF and JSON.

>>> report = build_report(engine, period="7d")            # doctest: +SKIP
>>> html = render_html(report)                             # doctest: +SKIP
>>> paths = write_report(report, "reports", formats=("html", "pdf", "json"))  # doctest: +SKIP

``build_report`` reads the database (one ``load_frame`` for every section, plus a small
one for the previous period and cheap metadata reads); the renderers only read the
:class:`Report` it returns. ``write_report`` writes dated files and refreshes the
output directory's ``index.html``.
"""

from __future__ import annotations

from metrics_toolkit.reporting.build import build_report
from metrics_toolkit.reporting.files import FORMATS, list_reports, refresh_index, write_report
from metrics_toolkit.reporting.model import Report
from metrics_toolkit.reporting.render_html import render_html
from metrics_toolkit.reporting.render_json import render_json
from metrics_toolkit.reporting.render_pdf import render_pdf

__all__ = [
    "FORMATS",
    "Report",
    "build_report",
    "list_reports",
    "refresh_index",
    "render_html",
    "render_json",
    "render_pdf",
    "write_report",
]
