"""The report as one self-contained HTML file.

Charts are SVG embedded as ``data:`` URIs in ``<img>`` tags (an image cannot run scripts,
and each SVG keeps its own ids); the style sheet is inline; there are no scripts, web
fonts, external images or links besides in-page anchors. Every string that comes from
the data or the database (host names, metric paths, process names, the source URL) goes
through :func:`html.escape`. The file prints on A4 (``@page``), one section after another.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from html import escape

from metrics_toolkit.reporting import running_out
from metrics_toolkit.reporting.figures import section_figure, svg_bytes
from metrics_toolkit.reporting.model import Report
from metrics_toolkit.reporting.text import (
    GAP_LIMIT,
    breach_rows,
    completeness_rows,
    gap_rows,
    header_items,
    process_tables,
    rolled_rows,
    rule_texts,
    summary_notes,
    summary_rows,
)
from metrics_toolkit.reporting.units import format_time

_STYLE = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  color: #1d2430; margin: 0 auto; max-width: 1060px; padding: 24px 28px 48px; line-height: 1.4;
  font-size: 14px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 2px solid #d9dee7; }
h3 { font-size: 15px; margin: 20px 0 6px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 12px 0; }
dl.meta dt { color: #5b6576; } dl.meta dd { margin: 0; overflow-wrap: anywhere; }
nav { margin: 12px 0 0; font-size: 13px; } nav a { margin-right: 14px; color: #0b5cab; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 10px; font-size: 13px; }
th, td { padding: 4px 8px; border-bottom: 1px solid #e3e7ee; text-align: left;
  vertical-align: top; }
th { background: #f3f5f9; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.first td { border-top: 1px solid #c9d0dc; }
.note { color: #5b6576; font-size: 12.5px; margin: 4px 0 10px; }
.warning { background: #fff4e5; border-left: 4px solid #e59400; padding: 8px 12px; margin: 12px 0; }
.ok { color: #1b7f3b; }
.bad { color: #b3261e; font-weight: 600; }
figure { margin: 8px 0 18px; } figure img { width: 100%; height: auto; display: block; }
.hosts { overflow-wrap: anywhere; }
.columns { display: grid; grid-template-columns: 1fr 1fr; gap: 0 24px; }
footer { margin-top: 36px; color: #7a8394; font-size: 12px; }
@media print {
  @page { size: A4; margin: 14mm 12mm; }
  body { max-width: none; padding: 0; font-size: 11px; }
  nav { display: none; }
  h2 { break-after: avoid; } figure, tr { break-inside: avoid; }
}
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    numeric: Sequence[int] = (),
    first_flags: Sequence[bool] | None = None,
) -> str:
    head = "".join(
        f'<th class="num">{_e(h)}</th>' if i in numeric else f"<th>{_e(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = []
    for n, row in enumerate(rows):
        cells = "".join(
            f'<td class="num">{_e(c)}</td>' if i in numeric else f"<td>{_e(c)}</td>"
            for i, c in enumerate(row)
        )
        flag = ' class="first"' if first_flags is not None and first_flags[n] and n else ""
        body.append(f"<tr{flag}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _header(report: Report) -> str:
    items = "".join(
        f'<dt>{_e(k)}</dt><dd class="hosts">{_e(v)}</dd>' for k, v in header_items(report)
    )
    return f'<header><h1>{_e(report.title)}</h1><dl class="meta">{items}</dl></header>'


def _nav(report: Report) -> str:
    links = [
        ("summary", "Summary"),
        ("running-out", "Running out"),
        ("charts", "Charts"),
        ("breaches", "Threshold breaches"),
        ("completeness", "Data completeness"),
        ("processes", "Top processes"),
    ]
    return "<nav>" + "".join(f'<a href="#{k}">{_e(v)}</a>' for k, v in links) + "</nav>"


def _messages(report: Report) -> str:
    parts = [f'<p class="warning">{_e(w)}</p>' for w in report.warnings]
    parts += [f'<p class="note">{_e(n)}</p>' for n in report.notes]
    return "".join(parts)


def _summary(report: Report) -> str:
    headers, rows, firsts = summary_rows(report)
    table = _table(headers, rows, numeric=range(2, len(headers)), first_flags=firsts)
    return (
        '<section id="summary"><h2>Summary</h2>'
        + table
        + f'<p class="note">{_e(report.percentile_basis)} Change: the mean against the '
        f"previous {_e(report.period)} (percentage points for percentages).</p>"
        + "".join(f'<p class="note">{_e(n)}</p>' for n in summary_notes(report))
        + "</section>"
    )


def _running_out(report: Report) -> str:
    parts = ['<section id="running-out"><h2>Running out</h2>']
    parts.append(f'<p class="note">{_e(running_out.note(report))}</p>')
    cells = running_out.rows(report)
    if not cells:
        parts.append(f'<p class="ok">{_e(running_out.empty_text(report))}</p>')
    else:
        parts.append(_table(running_out.HEADERS, cells, numeric=(2, 3, 4, 5)))
    for forecast in report.running_out():
        data = base64.b64encode(svg_bytes(running_out.forecast_figure(forecast, report)))
        parts.append(
            f'<figure><img alt="{_e(running_out.title(forecast))}" '
            f'src="data:image/svg+xml;base64,{data.decode("ascii")}">'
            f'<figcaption class="note">{_e(forecast.basis)}</figcaption></figure>'
        )
    parts.append("</section>")
    return "".join(parts)


def _charts(report: Report) -> str:
    parts = ['<section id="charts"><h2>Charts</h2>']
    parts.append(
        f'<p class="note">Bucket means per {_e(report.interval)}; the lighter band spans each '
        "bucket's minimum and maximum sample. Times in UTC.</p>"
    )
    for section in report.sections:
        figure = section_figure(report, section)
        data = base64.b64encode(svg_bytes(figure)).decode("ascii")
        alt = f"{section.title}: " + ", ".join(p.title for p in section.panels)
        parts.append(
            f'<figure id="chart-{_e(section.key)}"><h3>{_e(section.title)}</h3>'
            f'<img alt="{_e(alt)}" src="data:image/svg+xml;base64,{data}"></figure>'
        )
    parts.append("</section>")
    return "".join(parts)


def _breaches(report: Report) -> str:
    rules = "".join(f"<li>{_e(text)}</li>" for text in rule_texts(report))
    parts = ['<section id="breaches"><h2>Threshold breaches</h2>']
    parts.append(f"<ul>{rules}</ul>" if rules else '<p class="note">No thresholds set.</p>')
    headers, rows = breach_rows(report)
    if rows:
        parts.append(_table(headers, rows, numeric=(4, 5, 6)))
    else:
        parts.append('<p class="ok">No breaches in this period.</p>')
    parts.append(f'<p class="note">{_e(report.breach_basis)}</p></section>')
    return "".join(parts)


def _completeness(report: Report) -> str:
    headers, rows = completeness_rows(report)
    parts = ['<section id="completeness"><h2>Data completeness</h2>']
    parts.append(_table(headers, rows, numeric=(2, 3, 4, 5)))
    parts.append(
        f'<p class="note">Expected: the range divided by each host\'s collection interval. '
        f"Gaps: stretches without any sample, found on {_e(report.detail_interval)} "
        "buckets, and buckets holding fewer samples than expected (partial, at the stored "
        "resolution, with the samples missing).</p>"
    )
    headers, rows, more = gap_rows(report, limit=GAP_LIMIT)
    if rows:
        parts.append("<h3>Gaps</h3>" + _table(headers, rows, numeric=(3, 4)))
        if more:
            parts.append(f'<p class="note">… and {more} more (see the JSON report).</p>')
    headers, rows = rolled_rows(report)
    if rows:
        parts.append("<h3>Rolled-up stretches</h3>" + _table(headers, rows, numeric=(4, 5)))
    else:
        parts.append('<p class="note">The whole range is stored at full resolution.</p>')
    parts.append("</section>")
    return "".join(parts)


def _processes(report: Report) -> str:
    parts = ['<section id="processes"><h2>Top processes</h2>']
    tables = process_tables(report)
    if not tables:
        parts.append('<p class="note">No top-process lists were collected in this period.</p>')
    by_host: dict[str, list[str]] = {}
    for host, title, headers, rows in tables:
        by_host.setdefault(host, []).append(
            f"<div><h3>{_e(title)}</h3>{_table(headers, rows, numeric=(1, 2, 3))}</div>"
        )
    for blocks in by_host.values():
        parts.append(f'<div class="columns">{"".join(blocks)}</div>')
    if tables:
        parts.append(
            f'<p class="note">From {report.process_samples:,} snapshots sampled evenly over the '
            "period. Mean counts a process as 0 where it was not in the top list; processes "
            "with the same name add up.</p>"
        )
    parts.append("</section>")
    return "".join(parts)


def render_html(report: Report) -> str:
    """The whole report as one self-contained, escaped HTML document (a string)."""
    body = [_header(report)]
    if report.empty:
        body.append(_messages(report))
        body.append('<p class="note">There is nothing else to report for this range.</p>')
    else:
        body += [
            _nav(report),
            _messages(report),
            _summary(report),
            _running_out(report),
            _charts(report),
            _breaches(report),
            _completeness(report),
            _processes(report),
        ]
    body.append(
        f"<footer>Generated by metrics-toolkit at {_e(format_time(report.generated_at))}.</footer>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(report.title)}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


__all__ = ["render_html"]
