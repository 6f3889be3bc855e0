"""Lay out a report's chart sections on matplotlib figures and save them.

The one place of the reporting package that creates figures. Figures are built with
``matplotlib.figure.Figure`` directly (never pyplot), so no global figure registry holds
them, nothing depends on the selected backend, and a report can be drawn in a worker
thread (the scheduler does); a figure is freed when its last reference goes.

Sections are placed by fixed geometry in inches (no layout engine): every chart's plot
area starts at the same distance from the left edge, so the time axes of all charts line
up on a page, and drawing stays fast (a layout engine measures every text several times).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from metrics_toolkit.reporting.charts import (
    host_styles,
    legend_handles,
    plain,
    plot_breaches,
    plot_metric,
    plot_threshold,
    style_axes,
)
from metrics_toolkit.reporting.model import ChartSection, Report
from metrics_toolkit.reporting.spec import match

# Geometry, inches.
AXES_HEIGHT = 1.45
TITLE_ROW = 0.32  # the section title (PDF)
LEGEND_ROW = 0.3
PANEL_TITLE = 0.26
PANEL_GAP = 0.14
X_LABELS = 0.42  # tick labels and the date offset under the last panel
LEFT = 0.78  # y tick labels
RIGHT = 0.3  # room for the last date label


@dataclass(frozen=True)
class Box:
    """A rectangle on a figure, in inches from the figure's top-left corner."""

    left: float
    top: float
    width: float
    height: float


def section_height(
    section: ChartSection, *, axes_height: float = AXES_HEIGHT, titled: bool = False
) -> float:
    """The height in inches :func:`draw_section` needs for ``section``."""
    panels = len(section.panels)
    # A titled section has its legend on the title row.
    return (
        (TITLE_ROW if titled else LEGEND_ROW)
        + panels * (PANEL_TITLE + axes_height)
        + (panels - 1) * PANEL_GAP
        + X_LABELS
    )


def draw_section(
    figure: Figure,
    report: Report,
    section: ChartSection,
    box: Box,
    *,
    axes_height: float = AXES_HEIGHT,
    titled: bool = False,
) -> None:
    """Draw ``section`` inside ``box``: optional title, legend, panels sharing a time axis."""
    fig_w, fig_h = (float(size) for size in figure.get_size_inches())

    def fx(inches: float) -> float:
        return inches / fig_w

    def fy(inches_from_top: float) -> float:
        return 1 - inches_from_top / fig_h

    top = box.top
    legend_top = top
    if titled:
        figure.text(
            fx(box.left),
            fy(top + 0.04),
            plain(section.title),
            fontsize=11,
            fontweight="bold",
            color="#1d2430",
            va="top",
        )
        legend_top += 0.04
    top += TITLE_ROW if titled else LEGEND_ROW
    styles = host_styles(report.hosts)
    frame = report.chart
    band = any(
        panel.metric in frame.columns.get_level_values(0)
        and bool(np.nanmax(frame[panel.metric, "count"].to_numpy(dtype=np.float64), initial=0) > 1)
        for panel in section.panels
    )
    any_threshold = any_breach = False
    first_axes = None
    width = box.width - LEFT - RIGHT
    for n, panel in enumerate(section.panels):
        top += PANEL_TITLE
        rect = (fx(box.left + LEFT), fy(top + axes_height), fx(width), axes_height / fig_h)
        ax = figure.add_axes(rect, sharex=first_axes)
        first_axes = first_axes or ax
        top += axes_height + (PANEL_GAP if n < len(section.panels) - 1 else 0.0)
        plot_metric(ax, frame, panel.metric, styles=styles, band=band)
        for rule in report.thresholds:
            if match(rule.pattern, panel.metric) is not None:
                plot_threshold(ax, rule.above, panel.unit)
                any_threshold = True
        episodes = [b for b in report.breaches if b.metric == panel.metric]
        if episodes:
            plot_breaches(ax, episodes)
            any_breach = True
        style_axes(ax, unit=panel.unit, title=panel.title, start=report.start, end=report.end)
        if n < len(section.panels) - 1:
            ax.tick_params(labelbottom=False)
    handles, labels = legend_handles(
        styles, band=band, threshold=any_threshold, breaches=any_breach
    )
    figure.legend(
        handles,
        labels,
        loc="upper right",
        bbox_to_anchor=(fx(box.left + box.width - RIGHT), fy(legend_top)),
        ncols=min(len(labels), 6),
        fontsize=7.5,
        frameon=False,
        handlelength=1.8,
        borderaxespad=0.0,
        borderpad=0.2,
    )


def section_figure(report: Report, section: ChartSection, *, width: float = 10.0) -> Figure:
    """A figure holding one chart section (for the HTML report)."""
    height = section_height(section)
    figure = Figure(figsize=(width, height), dpi=100)
    draw_section(figure, report, section, Box(0.0, 0.0, width, height))
    return figure


def svg_bytes(figure: Figure) -> bytes:
    """The figure as SVG (text drawn as paths: no fonts needed to show it)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


__all__ = ["Box", "draw_section", "section_figure", "section_height", "svg_bytes"]
