"""Shareable explorer links: the view in the page's query string, and back.

The app writes the sidebar's state to the URL on every run (:func:`to_params`) and, once per
browser session after login, sets the sidebar from the URL (:func:`from_params`), so a
copied link (or a reload) shows the same view. For example::

    ?range=7d&host=db-1&host=web-1&metric=cpu.usage_percent&interval=1h&aggregate=max
    ?range=custom&from=2026-11-01&to=2026-11-07&lines=pooled&page=admin

Values that are not valid (an unknown range, a bad date or interval) are ignored: the
sidebar keeps its default for them. The login itself never travels in the URL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from metrics_toolkit.errors import InvalidInterval
from metrics_toolkit.explorer.query import (
    AGGREGATES,
    AUTO,
    CUSTOM,
    DEFAULT_RANGE,
    RANGE_CHOICES,
    ViewQuery,
    default_metrics,
    normalize_interval,
    resolve_range,
)
from metrics_toolkit.frames.contract import MetricInfo

PER_HOST = "per host"
POOLED = "pooled"
#: How hosts are drawn: one line each (the default), or all in one line.
LINES = (PER_HOST, POOLED)
PER = ("metric", "area")
PAGES = ("explorer", "admin")
#: What the sidebar shows when neither the link nor the user chose otherwise.
DEFAULTS: dict[str, str] = {
    "range": DEFAULT_RANGE,
    "interval": AUTO,
    "aggregate": AGGREGATES[0],
    "lines": PER_HOST,
    "per": PER[0],
}

# Widget keys of the sidebar, and the query parameter of each single-valued one.
_SINGLE = {
    "range": "range",
    "interval": "interval",
    "aggregate": "aggregate",
    "lines": "lines",
    "per": "per",
}
_LISTS = {"hosts": "host", "metrics": "metric"}
_CHOICES: dict[str, Sequence[str]] = {
    "range": RANGE_CHOICES,
    "aggregate": AGGREGATES,
    "lines": LINES,
    "per": PER,
}


def to_params(state: Mapping[str, Any], page: str) -> dict[str, str | list[str]]:
    """The query string for the sidebar ``state`` (widget key -> value) and the ``page``.

    Defaults are left out to keep links short.
    """
    params: dict[str, str | list[str]] = {}
    for key, name in _SINGLE.items():
        value = state.get(key)
        if isinstance(value, str) and value and value != DEFAULTS[key]:
            params[name] = value
    days = state.get("days")
    if state.get("range") == CUSTOM and isinstance(days, tuple) and len(days) == 2:
        params["from"], params["to"] = (day.isoformat() for day in days)
    for key, name in _LISTS.items():
        values = [str(v) for v in state.get(key) or ()]
        if values:
            params[name] = values
    if page.lower() != PAGES[0]:
        params["page"] = page.lower()
    return params


def from_params(get_all: Callable[[str], list[str]]) -> dict[str, Any]:
    """Sidebar state (widget key -> value) from a query string, valid values only.

    ``get_all(name)`` gives every value of a parameter (``st.query_params.get_all``). The
    result may hold ``"page"`` (``"explorer"`` or ``"admin"``) and ``"days"`` (two dates).
    """
    state: dict[str, Any] = {}
    for key, name in _SINGLE.items():
        values = get_all(name)
        if not values:
            continue
        value = values[-1]
        if key == "interval":
            try:
                state[key] = normalize_interval(value)
            except InvalidInterval:
                continue
        elif value in _CHOICES[key]:
            state[key] = value
    days = [_day(get_all(name)) for name in ("from", "to")]
    if days[0] is not None and days[1] is not None:
        state["days"] = (min(days[0], days[1]), max(days[0], days[1]))
    for key, name in _LISTS.items():
        values = list(dict.fromkeys(v for v in get_all(name) if v))
        if values:
            state[key] = values
    pages = get_all("page")
    if pages and pages[-1].lower() in PAGES:
        state["page"] = pages[-1].lower()
    return state


def linked_view(
    state: Mapping[str, Any],
    last_day: date,
    infos: Sequence[MetricInfo],
    *,
    now: datetime | None = None,
) -> ViewQuery | None:
    """The view the explorer opens after login for a link's ``state`` (:func:`from_params`;
    empty: no link), as the sidebar's first run makes it: the link's values, else the
    defaults. ``last_day`` is the newest snapshot's day (a custom range without days
    shows the week ending there), ``infos`` the metrics the sidebar lists (those of the one
    host the link names, else of all hosts); None when there is no metric to show.
    """
    choice = str(state.get("range", DEFAULTS["range"]))
    days = state.get("days")
    custom = None
    if choice == CUSTOM:
        custom = days if days is not None else (last_day - timedelta(days=6), last_day)
    start, end = resolve_range(choice, custom=custom, now=now)
    present = {info.path for info in infos}
    metrics = [m for m in state.get("metrics", ()) if m in present] or default_metrics(infos)
    if not metrics:
        return None
    return ViewQuery(
        start,
        end,
        tuple(metrics),
        tuple(state.get("hosts", ())),
        str(state.get("interval", DEFAULTS["interval"])),
        pooled=state.get("lines", DEFAULTS["lines"]) == POOLED,
    )


def _day(values: list[str]) -> date | None:
    try:
        return date.fromisoformat(values[-1]) if values else None
    except ValueError:
        return None
