"""Plot helpers for reports: each draws on an ``ax`` it is given and returns its artists.

Conventions (the same in HTML and PDF): one colour per host, from a colour-blind-safe
palette that stays distinct in greyscale print (Okabe-Ito), in sorted host order; the
line is the bucket mean at the bucket's midpoint; the lighter band is the bucket's min-max
range, drawn where buckets hold more than one sample (the interval is coarser than the
data); a missing bucket breaks the line (a gap); thresholds are dashed dark red lines and
breach episodes a light red shade. No function here creates or saves a figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from metrics_toolkit.reporting.buckets import SECONDS
from metrics_toolkit.reporting.model import Breach
from metrics_toolkit.reporting.units import format_value

#: Okabe-Ito, most distinct first; beyond it colours repeat with dashed lines.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
THRESHOLD_COLOR = "#9B1C1C"
BREACH_COLOR = "#E15759"
GRID_COLOR = "#DDDDDD"
_DAY = 86_400.0

Floats = npt.NDArray[np.float64]


def plain(text: str) -> str:
    """``text`` safe for matplotlib: a ``$`` would start mathtext (a host named ``$x$``)."""
    return text.replace("$", r"\$")


def host_styles(hosts: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Colour and line style per host, stable for a given host list (sorted)."""
    styles = {}
    for i, host in enumerate(sorted(hosts)):
        styles[host] = {
            "color": PALETTE[i % len(PALETTE)],
            "linestyle": ("-", "--", ":")[(i // len(PALETTE)) % 3],
        }
    return styles


def _x(seconds: Floats) -> Floats:
    """Epoch seconds as matplotlib date numbers (days since 1970-01-01, its default epoch)."""
    out: Floats = seconds / _DAY
    return out


def _broken(starts: Floats, widths: Floats, *columns: Floats) -> tuple[Floats, ...]:
    """Midpoints and columns with a NaN row inserted wherever a bucket is missing."""
    mids = starts + widths / 2
    if len(starts) < 2:
        return (mids, *columns)
    breaks = np.flatnonzero(starts[1:] > starts[:-1] + widths[:-1] + 0.5) + 1
    if not len(breaks):
        return (mids, *columns)
    at = starts[breaks - 1] + widths[breaks - 1]
    out_mids = np.insert(mids, breaks, at)
    rest = tuple(np.insert(col, breaks, np.nan) for col in columns)
    return (out_mids, *rest)


def plot_metric(
    ax: Axes,
    frame: pd.DataFrame,
    metric: str,
    *,
    styles: dict[str, dict[str, Any]],
    band: bool = True,
) -> list[Artist]:
    """One line per host (bucket means) with its min-max band, from a chart bucket frame.

    ``frame`` is indexed by ``(host, timestamp)`` with ``(metric, stat)`` columns ``mean``,
    ``min``, ``max``, ``count`` and the row width ``("_row", "seconds")``.
    """
    artists: list[Artist] = []
    if metric not in frame.columns.get_level_values(0):
        return artists
    hosts = frame.index.get_level_values("host")
    for host in sorted(set(hosts)):
        part = frame[np.asarray(hosts == host)]
        count = part[metric, "count"].to_numpy(dtype=np.float64)
        keep = count > 0
        if not keep.any():
            continue
        stamps = pd.DatetimeIndex(part.index.get_level_values("timestamp"))[keep]
        starts = stamps.as_unit("us").asi8 / 1e6
        widths = part[SECONDS].to_numpy(dtype=np.float64)[keep]
        mean = part[metric, "mean"].to_numpy(dtype=np.float64)[keep]
        low = part[metric, "min"].to_numpy(dtype=np.float64)[keep]
        high = part[metric, "max"].to_numpy(dtype=np.float64)[keep]
        mids, mean, low, high, counts = _broken(starts, widths, mean, low, high, count[keep])
        style = styles.get(host, {"color": PALETTE[0], "linestyle": "-"})
        x = _x(mids)
        if band and np.nanmax(counts) > 1:
            artists.append(
                ax.fill_between(x, low, high, color=style["color"], alpha=0.16, linewidth=0)
            )
        (line,) = ax.plot(
            x, mean, color=style["color"], linestyle=style["linestyle"], linewidth=1.3
        )
        if np.count_nonzero(~np.isnan(mean)) == 1:
            line.set_marker("o")
            line.set_markersize(3)
        artists.append(line)
    return artists


def plot_threshold(ax: Axes, value: float, unit: str) -> list[Artist]:
    """A dashed horizontal line at a breach threshold, labelled at its right end."""
    line = ax.axhline(value, color=THRESHOLD_COLOR, linestyle="--", linewidth=1.0)
    label = ax.annotate(
        plain(f"threshold {format_value(value, unit)}"),
        xy=(1.0, value),
        xycoords=("axes fraction", "data"),
        xytext=(-4, 3),
        textcoords="offset points",
        ha="right",
        va="bottom",
        fontsize=7,
        color=THRESHOLD_COLOR,
    )
    return [line, label]


def plot_breaches(ax: Axes, breaches: Sequence[Breach]) -> list[Artist]:
    """A light red shade over each breach episode's time span."""
    return [
        ax.axvspan(
            _x(np.array([b.start.timestamp()]))[0],
            _x(np.array([b.end.timestamp()]))[0],
            color=BREACH_COLOR,
            alpha=0.13,
            linewidth=0,
        )
        for b in breaches
    ]


def style_axes(ax: Axes, *, unit: str, title: str, start: datetime, end: datetime) -> None:
    """Title, human unit ticks, UTC date ticks, the report's range and a light grid."""
    ax.set_title(plain(title), loc="left", fontsize=9.5, fontweight="bold", pad=4)
    ax.set_xlim(start.timestamp() / _DAY, end.timestamp() / _DAY)
    locator = mdates.AutoDateLocator(tz="UTC", minticks=4, maxticks=9)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator, tz="UTC")  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(formatter)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: plain(_tick(v, unit))))
    ax.tick_params(labelsize=7.5, length=3, color="#888888")
    ax.xaxis.get_offset_text().set_fontsize(7.5)
    ax.grid(True, color=GRID_COLOR, linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color("#888888")
    if unit == "percent":
        top = ax.get_ylim()[1]
        ax.set_ylim(0, max(100.0, top))
    else:
        ax.set_ylim(bottom=0)


def _tick(value: float, unit: str) -> str:
    if unit == "percent":
        return f"{value:.0f} %"
    if unit == "load":
        return f"{value:.2g}"
    return format_value(value, unit)


def legend_handles(
    styles: dict[str, dict[str, Any]], *, band: bool, threshold: bool, breaches: bool
) -> tuple[list[Artist], list[str]]:
    """Legend entries: one per host, then the band, threshold and breach keys in use."""
    handles: list[Artist] = [
        Line2D([], [], color=s["color"], linestyle=s["linestyle"], linewidth=1.6)
        for s in styles.values()
    ]
    labels = [plain(host) for host in styles]
    if band:
        handles.append(Patch(facecolor="#777777", alpha=0.25, linewidth=0))
        labels.append("min-max per bucket")
    if threshold:
        handles.append(Line2D([], [], color=THRESHOLD_COLOR, linestyle="--", linewidth=1.0))
        labels.append("threshold")
    if breaches:
        handles.append(Patch(facecolor=BREACH_COLOR, alpha=0.25, linewidth=0))
        labels.append("breach")
    return handles, labels


__all__ = [
    "PALETTE",
    "host_styles",
    "legend_handles",
    "plain",
    "plot_breaches",
    "plot_metric",
    "plot_threshold",
    "style_axes",
]
