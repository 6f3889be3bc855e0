"""The report as a PDF: A4 portrait pages with page numbers, vector charts and tables.

Drawn with matplotlib's PDF backend (``PdfPages``), text and lines as vectors. Content
flows onto pages as *blocks* (a heading, a paragraph, a chart section, a slice of a
table); a table that does not fit continues on the next page with its header repeated.
Once every page is laid out, each gets its footer ("page i of n") and is written.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from metrics_toolkit.reporting import running_out
from metrics_toolkit.reporting.charts import plain
from metrics_toolkit.reporting.figures import Box, draw_section, section_height
from metrics_toolkit.reporting.model import Forecast, Report
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

PAGE_WIDTH, PAGE_HEIGHT = 8.27, 11.69  # A4 portrait, inches
MARGIN_X, MARGIN_TOP, MARGIN_BOTTOM = 0.6, 0.6, 0.75
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN_X
TEXT = "#1d2430"
MUTED = "#5b6576"
RULE = "#c9d0dc"
ROW_HEIGHT = 0.2
CHART_AXES_HEIGHT = 1.3
CHART_HEADING = 0.6  # "Charts" heading and note on the first chart page
SECTION_GAP = 0.2
# Characters per inch of 7.5 pt text, to wrap and clip cells (DejaVu Sans, generous).
_CHARS_PER_INCH = 16.5

Draw = Callable[[Figure, float], None]


@dataclass
class _Block:
    """Something to place on a page: its height (inches) and how to draw it at ``top``."""

    height: float
    draw: Draw
    keep_with_next: bool = False


def _y(top: float) -> float:
    """Figure fraction of a distance from the page's top edge."""
    return 1 - top / PAGE_HEIGHT


def _x(left: float) -> float:
    return left / PAGE_WIDTH


def _heading(text: str, size: float = 13.0) -> _Block:
    def draw(fig: Figure, top: float) -> None:
        fig.text(
            _x(MARGIN_X),
            _y(top + 0.08),
            plain(text),
            fontsize=size,
            fontweight="bold",
            color=TEXT,
            va="top",
        )
        if size >= 13:  # section headings are underlined, sub-headings are not
            fig.add_artist(_line(fig, top + size / 72 + 0.16, color=RULE, width=0.8))

    return _Block(size / 72 + 0.3, draw, keep_with_next=True)


def _line(fig: Figure, top: float, *, color: str, width: float) -> Line2D:
    return Line2D(
        [_x(MARGIN_X), _x(PAGE_WIDTH - MARGIN_X)],
        [_y(top), _y(top)],
        transform=fig.transFigure,
        color=color,
        linewidth=width,
    )


def _paragraph(text: str, *, size: float = 7.5, color: str = MUTED) -> _Block:
    width = int(CONTENT_WIDTH * _CHARS_PER_INCH * 7.5 / size)
    lines = textwrap.wrap(text, width) or [""]
    line_height = size / 72 * 1.45

    def draw(fig: Figure, top: float) -> None:
        for i, line in enumerate(lines):
            fig.text(
                _x(MARGIN_X),
                _y(top + i * line_height),
                plain(line),
                fontsize=size,
                color=color,
                va="top",
            )

    return _Block(len(lines) * line_height + 0.08, draw)


def _pairs(items: Sequence[tuple[str, str]]) -> _Block:
    label_width = 1.3
    width = int((CONTENT_WIDTH - label_width) * _CHARS_PER_INCH * 7.5 / 8.5)
    laid = [(k, textwrap.wrap(v, width) or [""]) for k, v in items]
    line_height = 0.17

    def draw(fig: Figure, top: float) -> None:
        row = 0
        for key, lines in laid:
            fig.text(
                _x(MARGIN_X),
                _y(top + row * line_height),
                plain(key),
                fontsize=8.5,
                color=MUTED,
                va="top",
            )
            for line in lines:
                fig.text(
                    _x(MARGIN_X + label_width),
                    _y(top + row * line_height),
                    plain(line),
                    fontsize=8.5,
                    color=TEXT,
                    va="top",
                )
                row += 1

    return _Block(sum(len(lines) for _, lines in laid) * line_height + 0.1, draw)


def _clip(text: str, inches: float) -> str:
    room = max(3, int(inches * _CHARS_PER_INCH))
    return text if len(text) <= room else text[: room - 1] + "…"


@dataclass
class _Table:
    headers: list[str]
    rows: list[list[str]]
    widths: list[float]  # fractions of the content width
    numeric: frozenset[int]
    firsts: list[bool] | None = None

    def block(self, rows: range) -> _Block:
        count = len(rows) + 1
        lefts = [MARGIN_X + sum(self.widths[:i]) * CONTENT_WIDTH for i in range(len(self.widths))]
        spans = [w * CONTENT_WIDTH for w in self.widths]

        def cell(fig: Figure, i: int, top: float, text: str, bold: bool) -> None:
            pad = 0.05
            right = i in self.numeric
            x = lefts[i] + spans[i] - pad if right else lefts[i] + pad
            shown = text if right else _clip(text, spans[i] - 2 * pad)  # numbers are short
            fig.text(
                _x(x),
                _y(top + ROW_HEIGHT * 0.72),
                plain(shown),
                fontsize=7.5,
                color=TEXT,
                ha="right" if right else "left",
                va="baseline",
                fontweight="bold" if bold else "normal",
            )

        def draw(fig: Figure, top: float) -> None:
            fig.add_artist(
                Rectangle(
                    (_x(MARGIN_X), _y(top + ROW_HEIGHT)),
                    CONTENT_WIDTH / PAGE_WIDTH,
                    ROW_HEIGHT / PAGE_HEIGHT,
                    transform=fig.transFigure,
                    facecolor="#f3f5f9",
                    edgecolor="none",
                )
            )
            for i, text in enumerate(self.headers):
                cell(fig, i, top, text, True)
            for n, r in enumerate(rows, start=1):
                row_top = top + n * ROW_HEIGHT
                first = self.firsts is not None and self.firsts[r] and n > 1
                fig.add_artist(_line(fig, row_top, color=RULE if first else "#e3e7ee", width=0.5))
                for i, text in enumerate(self.rows[r]):
                    cell(fig, i, row_top, text, False)
            fig.add_artist(_line(fig, top + count * ROW_HEIGHT, color="#e3e7ee", width=0.5))

        return _Block(count * ROW_HEIGHT + 0.12, draw)


class _Layout:
    """Blocks placed on pages top to bottom; tables split across pages."""

    def __init__(self, cursor: float = MARGIN_TOP) -> None:
        self.pages: list[list[tuple[float, _Block]]] = [[]]
        self.cursor = cursor  # where the first page starts (below charts already on it)
        self._pending: list[_Block] = []

    @property
    def room(self) -> float:
        return PAGE_HEIGHT - MARGIN_BOTTOM - self.cursor

    def new_page(self) -> None:
        if self.pages[-1]:
            self.pages.append([])
        self.cursor = MARGIN_TOP

    def add(self, block: _Block) -> None:
        if block.keep_with_next:
            self._pending.append(block)
            return
        group = [*self._pending, block]
        self._pending = []
        needed = sum(b.height for b in group)
        if needed > self.room and self.pages[-1]:
            self.new_page()
        for b in group:
            self.pages[-1].append((self.cursor, b))
            self.cursor += b.height

    def table(self, table: _Table) -> None:
        start = 0
        while start < len(table.rows) or start == 0:
            fits = int((self.room - sum(b.height for b in self._pending) - 0.12) // ROW_HEIGHT) - 1
            if fits < min(3, len(table.rows) - start) and self.pages[-1]:
                pending, self._pending = self._pending, []
                self.new_page()
                self._pending = pending
                continue
            stop = min(len(table.rows), start + max(fits, 1))
            self.add(table.block(range(start, stop)))
            start = stop
            if start >= len(table.rows):
                break


def _footer(fig: Figure, report: Report, page: int, pages: int) -> None:
    fig.text(
        _x(MARGIN_X), 0.35 / PAGE_HEIGHT, plain(_clip(report.title, 4.8)), fontsize=7, color=MUTED
    )
    fig.text(
        _x(PAGE_WIDTH - MARGIN_X),
        0.35 / PAGE_HEIGHT,
        f"page {page} of {pages}",
        fontsize=7,
        color=MUTED,
        ha="right",
    )


def _chart_height(report: Report, index: int) -> float:
    return section_height(report.sections[index], axes_height=CHART_AXES_HEIGHT, titled=True)


def _chart_pages(report: Report) -> tuple[list[list[int]], float]:
    """Chart sections (indexes) per page, greedily, the first page leaving room for a
    heading; and how far down the last page they reach (inches from the top)."""
    top = MARGIN_TOP + CHART_HEADING
    pages: list[list[int]] = [[]]
    for i in range(len(report.sections)):
        height = _chart_height(report, i) + SECTION_GAP
        if pages[-1] and top + height > PAGE_HEIGHT - MARGIN_BOTTOM:
            pages.append([])
            top = MARGIN_TOP
        pages[-1].append(i)
        top += height
    return [page for page in pages if page], top


def _draw_charts(fig: Figure, report: Report, indexes: list[int], first: bool) -> None:
    """Chart sections stacked on one page, inside the margins."""
    top = MARGIN_TOP
    if first:
        fig.text(
            _x(MARGIN_X),
            _y(top + 0.08),
            "Charts",
            fontsize=13,
            fontweight="bold",
            color=TEXT,
            va="top",
        )
        fig.add_artist(_line(fig, top + 13 / 72 + 0.16, color=RULE, width=0.8))
        fig.text(
            _x(MARGIN_X),
            _y(top + 0.42),
            plain(
                f"Bucket means per {report.interval}; the lighter band spans each bucket's minimum "
                "and maximum sample. Times in UTC."
            ),
            fontsize=7.5,
            color=MUTED,
            va="top",
        )
        top += CHART_HEADING
    for i in indexes:
        height = _chart_height(report, i)
        box = Box(MARGIN_X - 0.1, top, CONTENT_WIDTH + 0.1, height)
        draw_section(
            fig, report, report.sections[i], box, axes_height=CHART_AXES_HEIGHT, titled=True
        )
        top += height + SECTION_GAP


def _title(report: Report) -> _Block:
    def draw(fig: Figure, top: float) -> None:
        fig.text(
            _x(MARGIN_X),
            _y(top),
            plain(report.title),
            fontsize=17,
            fontweight="bold",
            color=TEXT,
            va="top",
        )

    return _Block(0.42, draw)


def _head_blocks(report: Report, layout: _Layout) -> None:
    layout.add(_title(report))
    layout.add(_pairs(header_items(report)))
    for warning in report.warnings:
        layout.add(_paragraph(f"Warning: {warning}", size=9, color="#9a5b00"))
    for note in report.notes:
        layout.add(_paragraph(note))
    if report.empty:
        layout.add(_paragraph("There is nothing else to report for this range.", size=9))
        return
    headers, rows, firsts = summary_rows(report)
    layout.add(_heading("Summary"))
    layout.table(
        _Table(
            headers,
            rows,
            [0.18, 0.13, 0.1, 0.1, 0.1, 0.1, 0.1, 0.19],
            frozenset(range(2, 8)),
            firsts,
        )
    )
    layout.add(_paragraph(report.percentile_basis))
    for note in summary_notes(report):
        layout.add(_paragraph(note))
    _running_out_blocks(report, layout)


def _running_out_blocks(report: Report, layout: _Layout) -> None:
    layout.add(_heading("Running out"))
    layout.add(_paragraph(running_out.note(report)))
    cells = running_out.rows(report)
    if not cells:
        layout.add(_paragraph(running_out.empty_text(report), size=8.5, color="#1b7f3b"))
        return
    widths = [0.14, 0.22, 0.11, 0.09, 0.11, 0.1, 0.23]
    layout.table(_Table(running_out.HEADERS, cells, widths, frozenset({2, 3, 4, 5})))
    for forecast in report.running_out():
        layout.add(_forecast_chart(report, forecast))
        layout.add(_paragraph(forecast.basis))


def _forecast_chart(report: Report, forecast: Forecast) -> _Block:
    def draw(fig: Figure, top: float) -> None:
        running_out.draw_forecast(
            fig, forecast, report, left=MARGIN_X - 0.1, top=top, width=CONTENT_WIDTH + 0.1
        )

    height = running_out.CHART_TITLE + running_out.CHART_HEIGHT + running_out.CHART_TICKS
    return _Block(height, draw, keep_with_next=True)


def _tail_blocks(report: Report, layout: _Layout) -> None:
    layout.add(_heading("Threshold breaches"))
    for text in rule_texts(report) or ["No thresholds set."]:
        layout.add(_paragraph(f"• {text}", size=8, color=TEXT))
    headers, rows = breach_rows(report)
    if rows:
        layout.table(
            _Table(headers, rows, [0.11, 0.22, 0.16, 0.16, 0.09, 0.15, 0.11], frozenset({4, 5, 6}))
        )
    else:
        layout.add(_paragraph("No breaches in this period.", size=8.5, color="#1b7f3b"))
    layout.add(_paragraph(report.breach_basis))
    layout.add(_heading("Data completeness"))
    headers, rows = completeness_rows(report)
    layout.table(
        _Table(
            headers, rows, [0.13, 0.1, 0.1, 0.1, 0.08, 0.13, 0.18, 0.18], frozenset({2, 3, 4, 5})
        )
    )
    layout.add(
        _paragraph(
            "Expected: the range divided by each host's collection interval. Gaps: stretches "
            f"without any sample, found on {report.detail_interval} buckets, and buckets "
            "holding fewer samples than expected (partial, at the stored resolution)."
        )
    )
    headers, rows, more = gap_rows(report, limit=GAP_LIMIT)
    if rows:
        layout.add(_heading("Gaps", 10.5))
        layout.table(_Table(headers, rows, [0.2, 0.24, 0.24, 0.14, 0.18], frozenset({3, 4})))
        if more:
            layout.add(_paragraph(f"… and {more} more (see the JSON report)."))
    headers, rows = rolled_rows(report)
    layout.add(_heading("Rolled-up stretches", 10.5))
    if rows:
        layout.table(_Table(headers, rows, [0.2, 0.12, 0.24, 0.24, 0.1, 0.1], frozenset({4, 5})))
    else:
        layout.add(_paragraph("The whole range is stored at full resolution."))
    layout.add(_heading("Top processes"))
    tables = process_tables(report)
    for _, title, headers, rows in tables:
        layout.add(_heading(title, 10.5))
        layout.table(_Table(headers, rows, [0.4, 0.2, 0.2, 0.2], frozenset({1, 2, 3})))
    layout.add(
        _paragraph(
            f"From {report.process_samples:,} snapshots sampled evenly over the period; mean "
            "counts a process as 0 where it was not listed."
            if tables
            else "No top-process lists were collected in this period."
        )
    )


def _plan(report: Report) -> list[Callable[[Figure], None]]:
    """A draw function per page, in order: header and summary, charts, then the tables
    (which start on the last chart page when there is room left on it)."""
    head = _Layout()
    _head_blocks(report, head)
    pages = [_text_page(page) for page in head.pages if page]
    if report.empty:
        return pages
    chart_pages, reached = _chart_pages(report)
    tail = _Layout(cursor=reached)
    _tail_blocks(report, tail)
    tail_pages = list(tail.pages)
    for n, indexes in enumerate(chart_pages):
        last = n == len(chart_pages) - 1
        shared = tail_pages.pop(0) if last and tail_pages and tail_pages[0] else []
        pages.append(_chart_page(report, indexes, first=n == 0, then=shared))
    pages += [_text_page(page) for page in tail_pages if page]
    return pages


def _chart_page(
    report: Report, indexes: list[int], *, first: bool, then: list[tuple[float, _Block]]
) -> Callable[[Figure], None]:
    def draw(fig: Figure) -> None:
        _draw_charts(fig, report, indexes, first)
        _text_page(then)(fig)

    return draw


def _text_page(page: list[tuple[float, _Block]]) -> Callable[[Figure], None]:
    def draw(fig: Figure) -> None:
        for top, block in page:
            block.draw(fig, top)

    return draw


def render_pdf(report: Report) -> bytes:
    """The report as PDF bytes (A4 portrait, numbered pages, vector charts)."""
    pages = _plan(report)
    buffer = io.BytesIO()
    metadata = {
        "Title": report.title,
        "Creator": "metrics-toolkit",
        "Subject": f"{format_time(report.start)} to {format_time(report.end)}",
        "CreationDate": report.generated_at,
        "ModDate": report.generated_at,
    }
    with PdfPages(buffer, metadata=metadata) as pdf:
        for number, page in enumerate(pages, start=1):
            figure = Figure(figsize=(PAGE_WIDTH, PAGE_HEIGHT), dpi=100)
            page(figure)
            _footer(figure, report, number, len(pages))
            pdf.savefig(figure)
    return buffer.getvalue()


def page_count(report: Report) -> int:
    """How many pages :func:`render_pdf` produces for ``report`` (laid out, not drawn)."""
    return len(_plan(report))


__all__ = ["page_count", "render_pdf"]
