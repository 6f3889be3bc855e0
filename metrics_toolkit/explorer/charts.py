"""Chart data and Vega-Lite specs for the explorer (no Streamlit: the app only renders them).

One chart shows one unit: per metric, or per area (the metrics of an area sharing a
unit). Values are divided into readable units (:func:`~metrics_toolkit.explorer.units.axis_scale`),
gaps in collection are shaded and break the lines, and the part of the range stored rolled
up is tinted so a reader knows those points are bucket means of a coarser width.

Titles are the human labels the reports use ("Memory used"), the path and the catalog's
description go to a details line; each series (a host, by default) takes its colour from
the reports' palette (:data:`~metrics_toolkit.reporting.charts.PALETTE`) in sorted order,
so a host has the same colour in both; tooltips show the bucket's date and time, the host,
and its mean, min and max formatted with their unit.
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
from metrics_toolkit.explorer.units import Scale, axis_scale, format_value, format_values
from metrics_toolkit.explorer.view import View
from metrics_toolkit.frames.contract import TIMESTAMP
from metrics_toolkit.intervals import Interval
from metrics_toolkit.reporting.charts import PALETTE
from metrics_toolkit.reporting.spec import summary_metrics

ChartPer = Literal["metric", "area"]
CHART_HEIGHT = 220
GAP_COLOR = "#e45756"
ROLLUP_COLOR = "#4c78a8"
#: Numbers in the tooltip, formatted with the unit as the summary table shows them.
TOOLTIP_COLUMNS = ("host", "shown", "mean", "min", "max")
DATA_COLUMNS = ("timestamp", "bucket", "series", "value", "low", "high", *TOOLTIP_COLUMNS)
#: Tooltip titles of what a line shows per bucket, by aggregate.
SHOWN_TITLES = {MEAN: "mean", BAND: "mean", MAX: "max", P95: "p95"}


@dataclass(frozen=True)
class ChartGroup:
    """The metrics drawn in one chart, all in ``unit``; ``details`` names their paths."""

    title: str
    unit: str
    metrics: tuple[str, ...]
    details: str = ""


def metric_title(path: str) -> str:
    """A metric's human label: the reports' ("Memory used"), else the catalog's description.

    >>> metric_title("memory.usage_percent")
    'Memory used'
    """
    labelled = summary_metrics([path])
    return labelled[0][1] if labelled else catalog.lookup(path).description or path


def metric_details(path: str) -> str:
    """The path and the catalog's description of a metric, for a chart's details line."""
    description = catalog.lookup(path).description
    return f"{path}: {description}" if description else path


def chart_groups(metrics: Sequence[str], per: ChartPer = "metric") -> list[ChartGroup]:
    """One group per metric, or per (area, unit) keeping the order of ``metrics``."""
    if per == "metric":
        return [
            ChartGroup(metric_title(path), catalog.unit_of(path), (path,), metric_details(path))
            for path in metrics
        ]
    by_key: dict[tuple[str, str], list[str]] = {}
    for path in metrics:
        key = (path.split(".", 1)[0], catalog.unit_of(path))
        by_key.setdefault(key, []).append(path)
    return [
        ChartGroup(
            f"{area} ({unit})" if unit else area,
            unit,
            tuple(paths),
            "; ".join(metric_details(path) for path in paths),
        )
        for (area, unit), paths in by_key.items()
    ]


def series_colors(count: int) -> list[str]:
    """The reports' palette for ``count`` series (repeating beyond its length)."""
    return [PALETTE[i % len(PALETTE)] for i in range(count)]


def _tooltip_text(view: View, metric: str, unit: str, shown: pd.Series) -> dict[str, list[str]]:
    """The formatted numbers of a metric's buckets: the value drawn, and mean, min, max."""
    cols = view.frame[metric]

    def text(series: pd.Series | None, as_unit: str = unit) -> list[str]:
        if series is None:
            return [format_value(None, as_unit)] * len(cols)
        return format_values(series.to_numpy(dtype=np.float64).tolist(), as_unit)

    if "increase" in cols:  # a counter: its increase per bucket, and the peak rate
        rate_unit = "1/s" if unit == "count" else f"{unit}/s"
        return {"shown": text(shown), "mean": text(None), "min": text(None),
                "max": text(cols["max_rate"], rate_unit)}  # fmt: skip
    stats = {stat: text(cols[stat]) for stat in ("mean", "min", "max")}
    # The line shows one of them unless it is the p95: format each number once.
    same = next((stat for stat in stats if shown is cols[stat] or shown.equals(cols[stat])), None)
    return {"shown": stats[same] if same else text(shown), **stats}


def shown_title(view: View, group: ChartGroup, aggregate: str) -> str:
    """What a chart's lines show per bucket, as the tooltip names it."""
    if all(catalog.kind_of(m) == "counter" for m in group.metrics):
        return "increase"
    if aggregate == P95 and view.p95 is None:
        return "mean"
    return SHOWN_TITLES.get(aggregate, aggregate)


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
    its date and time of day as text (with the bucket width), and the
    :data:`TOOLTIP_COLUMNS` the host and the bucket's numbers as text with their unit.

    ``aggregate`` is one of :data:`~metrics_toolkit.explorer.query.AGGREGATES`; ``p95``
    falls back to the mean when the view has no percentiles (``view.p95_reason``).
    ``low``/``high`` (the min-max band) are NaN unless ``aggregate`` asks for the band. A
    row with a NaN value is inserted at the start of every gap of a line, so it breaks there
    (a pooled line only where no host has data).
    """
    by_host = isinstance(view.frame.index, pd.MultiIndex)
    everyone = ", ".join(view.query.hosts) or "all hosts"
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
                **_tooltip_text(view, metric, group.unit, value),
            },
            index=view.frame.index,
        )
        if by_host:
            hosts = part.index.get_level_values("host")
            part["host"] = [str(h) for h in hosts]
            part["timestamp"] = part.index.get_level_values(TIMESTAMP)
            names = {h: _series_name(metric, h, group, True) for h in hosts.unique()}
            part["series"] = [names[h] for h in hosts]
            breaks = [(g.start, _series_name(metric, g.host, group, True)) for g in _breaking(view)]
        else:
            name = _series_name(metric, None, group, False)
            part["host"] = everyone
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
                    **dict.fromkeys(TOOLTIP_COLUMNS, ""),
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
    width = Interval.parse(view.interval) if view.interval else None
    seconds = "" if width is not None and width.seconds % 60 == 0 else ":%S"
    # Each bucket's text once (the hosts share them): strftime costs microseconds a row.
    codes, buckets = pd.factorize(stamps)
    labels = buckets.strftime(f"%a %Y-%m-%d %H:%M{seconds} UTC") + (
        f" ({width} bucket)" if width is not None else ""
    )
    data["bucket"] = labels.take(codes)
    data = data.sort_values(["series", "timestamp"], kind="stable").reset_index(drop=True)
    data = data[list(DATA_COLUMNS)]
    scale = axis_scale(group.unit, list(data[["value", "high"]].abs().max(skipna=True).fillna(0)))
    for column in ("value", "low", "high"):
        data[column] = data[column] / scale.divisor
    return data, scale


@dataclass(frozen=True)
class Chart:
    """One chart of a view, ready to draw: its group, its rows and its Vega-Lite spec."""

    group: ChartGroup
    data: pd.DataFrame
    spec: dict[str, Any]


def view_charts(view: View, aggregate: str = MEAN, per: ChartPer = "metric") -> list[Chart]:
    """The charts of ``view``: one per :func:`chart_groups` group, each line showing
    ``aggregate`` (see :func:`chart_data`)."""
    charts = []
    for group in chart_groups(view.query.metrics, per):
        data, scale = chart_data(view, group, aggregate)
        series = [str(s) for s in data["series"].unique()]
        spec = chart_spec(
            y_title=scale.label or "value",
            start=view.query.start,
            end=view.query.end,
            gaps=view.gaps,
            rolled_up=view.rolled_up,
            band=aggregate == BAND,
            legend=len(series) > 1,
            series=series,
            shown=shown_title(view, group, aggregate),
            several_metrics=len(group.metrics) > 1,
        )
        charts.append(Chart(group, data, spec))
    return charts


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
    series: Sequence[str] = (),
    shown: str = "mean",
    several_metrics: bool = False,
    height: int = CHART_HEIGHT,
) -> dict[str, Any]:
    """A layered Vega-Lite spec for :func:`chart_data`'s rows (passed as the chart's data).

    Layers, bottom to top: rolled-up parts (tinted), gaps (shaded red), the min-max band,
    the lines. Time is shown in UTC (24-hour clock) over the whole requested
    ``[start, end)``; ``legend=False`` hides the series legend (for one-line charts).
    ``series`` (the names in the data) get the reports' colours in sorted order; ``shown``
    (see :func:`shown_title`) titles the drawn value in the tooltip, which also names the line when
    a chart holds ``several_metrics``.
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
    names = sorted(set(series))
    if names:
        color["scale"] = {"domain": names, "range": series_colors(len(names))}
    # Solid stroke swatches: with the band on, the legend would otherwise show the band's
    # faint fill (a near-white swatch) instead of the line's colour.
    color["legend"] = (
        {
            "orient": "bottom",
            "labelLimit": 400,
            "symbolType": "stroke",
            "symbolStrokeWidth": 3,
            "symbolOpacity": 1,
        }
        if legend
        else None
    )
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
        {"field": "bucket", "type": "nominal", "title": "time"},
        {"field": "host", "type": "nominal", "title": "host"},
        *([{"field": "series", "type": "nominal", "title": "line"}] if several_metrics else []),
        {"field": "shown", "type": "nominal", "title": shown},
        *(
            {"field": stat, "type": "nominal", "title": stat}
            for stat in ("mean", "min", "max")
            if stat != shown
        ),
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
