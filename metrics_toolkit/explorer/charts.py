"""Chart data and Vega-Lite specs for the explorer (no Streamlit: the app only renders them).

One chart shows one unit: per metric, or per area (the metrics of an area sharing a
unit). Values are divided into readable units (:func:`~metrics_toolkit.explorer.units.axis_scale`),
gaps in collection are shaded and break the lines, and the part of the range stored rolled
up is tinted so a reader knows those points are bucket means of a coarser width.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd

from metrics_toolkit import catalog
from metrics_toolkit.explorer.coverage import Gap, RolledUpPart
from metrics_toolkit.explorer.query import BAND, MAX, MEAN, P95
from metrics_toolkit.explorer.units import Scale, axis_scale
from metrics_toolkit.explorer.view import View
from metrics_toolkit.frames.contract import TIMESTAMP

ChartPer = Literal["metric", "area"]
CHART_HEIGHT = 220
GAP_COLOR = "#e45756"
ROLLUP_COLOR = "#4c78a8"
DATA_COLUMNS = ("timestamp", "bucket", "series", "value", "low", "high")


@dataclass(frozen=True)
class ChartGroup:
    """The metrics drawn in one chart, all in ``unit``."""

    title: str
    unit: str
    metrics: tuple[str, ...]


def chart_groups(metrics: Sequence[str], per: ChartPer = "metric") -> list[ChartGroup]:
    """One group per metric, or per (area, unit) keeping the order of ``metrics``."""
    if per == "metric":
        groups = []
        for path in metrics:
            spec = catalog.lookup(path)
            title = f"{path} — {spec.description}" if spec.description else path
            groups.append(ChartGroup(title, spec.unit, (path,)))
        return groups
    by_key: dict[tuple[str, str], list[str]] = {}
    for path in metrics:
        key = (path.split(".", 1)[0], catalog.unit_of(path))
        by_key.setdefault(key, []).append(path)
    return [
        ChartGroup(f"{area} ({unit})" if unit else area, unit, tuple(paths))
        for (area, unit), paths in by_key.items()
    ]


def _value_columns(
    view: View, metric: str, aggregate: str
) -> tuple[pd.Series, pd.Series | None, pd.Series | None]:
    cols = view.frame[metric]
    if "increase" in cols:  # a counter: what it counted per bucket
        return cols["increase"], None, None
    if aggregate == MAX:
        return cols["max"], None, None
    if aggregate == P95 and view.p95 is not None and metric in view.p95:
        return view.p95[metric].reindex(cols.index), None, None
    if aggregate == BAND:
        return cols["mean"], cols["min"], cols["max"]
    return cols["mean"], None, None


def _series_name(metric: str, host: Any, group: ChartGroup, by_host: bool) -> str:
    """The legend entry: the metric (without the area the title names), and/or the host."""
    area = metric.split(".", 1)[0]
    short = metric[len(area) + 1 :] if len(group.metrics) > 1 and "." in metric else metric
    if not by_host:
        return short
    return str(host) if len(group.metrics) == 1 else f"{host} · {short}"


def chart_data(view: View, group: ChartGroup, aggregate: str = MEAN) -> tuple[pd.DataFrame, Scale]:
    """Long-format rows (:data:`DATA_COLUMNS`) for one chart, and its scale.

    ``timestamp`` is the bucket start in milliseconds since the Unix epoch (UTC), ``bucket``
    the same as text for tooltips.

    ``aggregate`` is one of :data:`~metrics_toolkit.explorer.query.AGGREGATES`; ``p95``
    falls back to the mean when the view has no percentiles (``view.p95_reason``).
    ``low``/``high`` (the min-max band) are NaN unless ``aggregate`` asks for the band. A
    row with a NaN value is inserted at the start of every gap of a line, so it breaks there
    (a pooled line only where no host has data).
    """
    by_host = isinstance(view.frame.index, pd.MultiIndex)
    pieces = []
    for metric in group.metrics:
        if metric not in view.frame.columns.get_level_values("metric"):
            continue
        value, low, high = _value_columns(view, metric, aggregate)
        part = pd.DataFrame(
            {
                "value": value.to_numpy(dtype=np.float64),
                "low": np.nan if low is None else low.to_numpy(dtype=np.float64),
                "high": np.nan if high is None else high.to_numpy(dtype=np.float64),
            },
            index=view.frame.index,
        )
        if by_host:
            hosts = part.index.get_level_values("host")
            part["timestamp"] = part.index.get_level_values(TIMESTAMP)
            part["series"] = [_series_name(metric, h, group, True) for h in hosts]
            breaks = [(g.start, _series_name(metric, g.host, group, True)) for g in _breaking(view)]
        else:
            name = _series_name(metric, None, group, False)
            part["timestamp"] = part.index
            part["series"] = name
            present = part.index[part["value"].notna().to_numpy()]
            # A pooled line breaks only where no host has data (one host's gap is shaded).
            breaks = [
                (g.start, name)
                for g in _breaking(view)
                if not ((present >= g.start) & (present < g.end)).any()
            ]
        part = part.dropna(subset=["value"])
        if breaks:
            gap_rows = pd.DataFrame(
                {
                    "timestamp": [b[0] for b in breaks],
                    "series": [b[1] for b in breaks],
                    "value": np.nan,
                    "low": np.nan,
                    "high": np.nan,
                }
            )
            gap_rows["timestamp"] = pd.to_datetime(gap_rows["timestamp"], utc=True)
            part = pd.concat([part, gap_rows], ignore_index=True)
        pieces.append(part.reset_index(drop=True)[[c for c in DATA_COLUMNS if c != "bucket"]])
    if not pieces:
        return pd.DataFrame(columns=list(DATA_COLUMNS)), axis_scale(group.unit)
    data = pd.concat(pieces, ignore_index=True)
    # Milliseconds since the epoch: what Vega-Lite's temporal fields read without guessing
    # a unit or a time zone from the Arrow column.
    stamps = pd.DatetimeIndex(pd.to_datetime(data["timestamp"], utc=True)).as_unit("ms")
    data["timestamp"] = stamps.asi8
    data["bucket"] = stamps.strftime("%Y-%m-%d %H:%M:%S UTC")
    data = data.sort_values(["series", "timestamp"], kind="stable").reset_index(drop=True)
    data = data[list(DATA_COLUMNS)]
    scale = axis_scale(group.unit, list(data[["value", "high"]].abs().max(skipna=True).fillna(0)))
    for column in ("value", "low", "high"):
        data[column] = data[column] / scale.divisor
    return data, scale


def _breaking(view: View) -> list[Gap]:
    """The gaps that break a line: without any sample (a partial gap keeps its points), and
    after the range's start (a line starting late has nothing to break)."""
    return [g for g in view.gaps if not g.partial and g.start > view.query.start]


def _iso(moment: datetime) -> str:
    # ISO strings with an offset: Vega-Lite reads them as the same instant in every browser
    # (a numeric domain in the spec is not honoured by Streamlit's renderer).
    return moment.astimezone(UTC).isoformat()


def _spans(items: Iterable[tuple[datetime, datetime, str]]) -> list[dict[str, Any]]:
    return [{"start": _iso(a), "end": _iso(b), "label": label} for a, b, label in items]


def chart_spec(
    *,
    y_title: str,
    start: datetime,
    end: datetime,
    gaps: Sequence[Gap] = (),
    rolled_up: Sequence[RolledUpPart] = (),
    band: bool = False,
    legend: bool = True,
    height: int = CHART_HEIGHT,
) -> dict[str, Any]:
    """A layered Vega-Lite spec for :func:`chart_data`'s rows (passed as the chart's data).

    Layers, bottom to top: rolled-up parts (tinted), gaps (shaded red), the min-max band,
    the lines. Time is shown in UTC (24-hour clock) over the whole requested
    ``[start, end)``; ``legend=False`` hides the series legend (for one-line charts).
    """
    x = {
        "field": "timestamp",
        "type": "temporal",
        "title": "time (UTC)",
        "scale": {"type": "utc", "domain": [_iso(start), _iso(end)]},
        # utcFormat: labels in UTC whatever the browser's time zone, on a 24-hour clock.
        "axis": {
            "labelOverlap": True,
            "labelExpr": f"utcFormat(datum.value, '{_time_format(end - start)}')",
        },
    }
    span_x = {"field": "start", "type": "temporal", "scale": {"type": "utc"}}
    layers: list[dict[str, Any]] = []
    if rolled_up:
        values = _spans(
            (max(p.start, start), min(p.end, end), f"stored rolled up to {p.interval}")
            for p in rolled_up
        )
        layers.append(_span_layer(values, span_x, ROLLUP_COLOR, 0.10))
    if gaps:
        values = _spans(
            (g.start, g.end, f"no data{f' from {g.host}' if g.host else ''}") for g in gaps
        )
        layers.append(_span_layer(values, span_x, GAP_COLOR, 0.22))
    color: dict[str, Any] = {"field": "series", "type": "nominal", "title": None}
    color["legend"] = {"orient": "bottom", "labelLimit": 400} if legend else None
    if band:
        layers.append(
            {
                "mark": {"type": "area", "opacity": 0.18},
                "encoding": {
                    "x": x,
                    "y": {"field": "low", "type": "quantitative"},
                    "y2": {"field": "high"},
                    "color": color,
                },
            }
        )
    tooltip = [
        {"field": "bucket", "type": "nominal", "title": "bucket"},
        {"field": "series", "type": "nominal"},
        {"field": "value", "type": "quantitative", "format": ".3~f"},
    ]
    layers.append(
        {
            "mark": {
                "type": "line",
                "invalid": "break-paths-show-path-domains",
                "strokeWidth": 1.5,
            },
            "encoding": {
                "x": x,
                "y": {"field": "value", "type": "quantitative", "title": y_title},
                "color": color,
                "tooltip": tooltip,
            },
        }
    )
    return {"height": height, "layer": layers}


def _time_format(span: timedelta) -> str:
    if span <= timedelta(hours=36):
        return "%H:%M"
    if span <= timedelta(days=10):
        return "%a %d, %H:%M"
    return "%d %b"


def _span_layer(
    values: list[dict[str, Any]], span_x: dict[str, Any], color: str, opacity: float
) -> dict[str, Any]:
    return {
        "data": {"values": values},
        "mark": {"type": "rect", "color": color, "opacity": opacity},
        "encoding": {
            "x": span_x,
            "x2": {"field": "end"},
            "tooltip": [{"field": "label", "type": "nominal", "title": "note"}],
        },
    }
