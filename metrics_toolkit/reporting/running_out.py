"""The "Running out" section: its table cells and its small trend charts (HTML and PDF).

One row and one chart per forecast reaching its limit within ``Report.forecast_days``,
most urgent first (:meth:`Report.running_out`). A chart shows the bucket means the
forecast was made from, the fitted trend over the stretch it judged (solid), the trend
extended to the limit (dashed) and the limit; its time axis runs from the report's start
to the moment the limit is reached.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from metrics_toolkit.reporting.charts import PALETTE, THRESHOLD_COLOR, plain, style_axes
from metrics_toolkit.reporting.model import Forecast, Report
from metrics_toolkit.reporting.units import format_time, format_value

TREND_COLOR = "#D55E00"
#: Inches: a chart's plot area height, the room for its title above and ticks below.
CHART_HEIGHT, CHART_TITLE, CHART_TICKS = 1.05, 0.3, 0.42
_DAY = 86_400.0

HEADERS = ["Host", "Metric", "Trend now", "Limit", "Per day", "Days left", "Reached (UTC)"]


def note(report: Report) -> str:
    """The sentence under the section heading."""
    return (
        f"Gauges whose trend reaches its limit within {report.forecast_days:g} days of the "
        "end of the period, most urgent first. The trend is a Theil-Sen fit (the median of "
        "the slopes between every pair of bucket means, so a spike does not decide it); "
        "series that drop back (log rotation, clean-ups) are judged on the trend of their "
        "peaks. Flat or falling gauges have no forecast (null in the JSON report)."
    )


def rows(report: Report) -> list[list[str]]:
    """One row of cells per forecast of :meth:`Report.running_out`."""
    out = []
    for f in report.running_out():
        out.append(
            [
                f.host,
                f.label,
                format_value(f.level, f.unit),
                format_value(f.limit, f.unit),
                _per_day(f),
                f"{f.days_left:.1f}" if f.days_left is not None else "–",
                format_time(f.full_at, zone=False),
            ]
        )
    return out


def _per_day(forecast: Forecast) -> str:
    slope = forecast.slope_per_day or 0.0
    if forecast.unit == "percent":  # a rate of a percentage is in percentage points
        return f"{slope:+.2f} pp"
    return "+" + format_value(slope, forecast.unit)


def empty_text(report: Report) -> str:
    """What the section says when nothing runs out."""
    judged = len(report.forecasts)
    return (
        f"Nothing is forecast to reach its limit within {report.forecast_days:g} days "
        f"({judged} gauge(s) judged; see the JSON report for every forecast)."
    )


def title(forecast: Forecast) -> str:
    """A chart's title: who, what, and when it is full."""
    when = format_time(forecast.full_at) if forecast.full_at else "–"
    days = f"{forecast.days_left:.1f}" if forecast.days_left is not None else "–"
    return f"{forecast.host}: {forecast.label}, {days} days left (limit reached {when})"


def plot_forecast(ax: Axes, forecast: Forecast, report: Report) -> None:
    """Bucket means, the fitted trend (solid), its extension to the limit (dashed)."""
    times = np.asarray(forecast.times, dtype=np.float64)
    ax.plot(times / _DAY, np.asarray(forecast.values), color=PALETTE[0], linewidth=1.1, zorder=3)
    finish = report.end.timestamp()
    reach = forecast.full_at.timestamp() if forecast.full_at is not None else finish
    if forecast.slope_per_day is not None and forecast.level is not None:
        since = forecast.since.timestamp() if forecast.since is not None else times[0]
        stamps = np.array([since, finish, max(reach, finish)])
        trend = forecast.level + forecast.slope_per_day * (stamps - finish) / _DAY
        ax.plot(stamps[:2] / _DAY, trend[:2], color=TREND_COLOR, linewidth=1.4)
        ax.plot(stamps[1:] / _DAY, trend[1:], color=TREND_COLOR, linewidth=1.4, linestyle="--")
        ax.plot([stamps[2] / _DAY], [forecast.limit], marker="o", markersize=4, color=TREND_COLOR)
    ax.axhline(forecast.limit, color=THRESHOLD_COLOR, linestyle=":", linewidth=1.0)
    ax.axvline(finish / _DAY, color="#888888", linewidth=0.8)
    ax.annotate(
        plain(f"limit {format_value(forecast.limit, forecast.unit)}"),
        xy=(0.0, forecast.limit),
        xycoords=("axes fraction", "data"),
        xytext=(3, -3),
        textcoords="offset points",
        va="top",
        fontsize=7,
        color=THRESHOLD_COLOR,
    )
    end = max(report.end, forecast.full_at) if forecast.full_at is not None else report.end
    style_axes(ax, unit=forecast.unit, title=title(forecast), start=report.start, end=end)
    if forecast.unit != "percent":
        top = max(forecast.limit * 1.08, max(forecast.values, default=0.0) * 1.05)
        ax.set_ylim(0, top)


def forecast_figure(forecast: Forecast, report: Report, *, width: float = 10.0) -> Figure:
    """One forecast's chart as a figure of its own (for the HTML report)."""
    height = CHART_TITLE + CHART_HEIGHT + CHART_TICKS
    figure = Figure(figsize=(width, height), dpi=100)
    draw_forecast(figure, forecast, report, left=0.0, top=0.0, width=width)
    return figure


def draw_forecast(
    figure: Figure, forecast: Forecast, report: Report, *, left: float, top: float, width: float
) -> None:
    """Draw one forecast's chart on ``figure`` with its top-left at (``left``, ``top``) inches."""
    fig_w, fig_h = (float(size) for size in figure.get_size_inches())
    margin_left, margin_right = 0.78, 0.3
    rect = (
        (left + margin_left) / fig_w,
        1 - (top + CHART_TITLE + CHART_HEIGHT) / fig_h,
        (width - margin_left - margin_right) / fig_w,
        CHART_HEIGHT / fig_h,
    )
    plot_forecast(figure.add_axes(rect), forecast, report)


__all__ = [
    "CHART_HEIGHT",
    "CHART_TICKS",
    "CHART_TITLE",
    "HEADERS",
    "draw_forecast",
    "empty_text",
    "forecast_figure",
    "note",
    "plot_forecast",
    "rows",
    "title",
]
