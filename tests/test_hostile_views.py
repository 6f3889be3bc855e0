"""Hostile snapshots through the report builder and the explorer's query path (issue 8).

The report's summary and the explorer's view of hostile data must hold exactly the numbers
of the clean subset (the oracle of :mod:`tests.test_hostile_support`), on SQLite and
PostgreSQL, and render every string from the data escaped: host names, process names and
metric paths (a mount named with markup) in the report HTML and the explorer page.
"""

from __future__ import annotations

import copy
import math
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import streamlit as st
from hypothesis import given, settings
from hypothesis import strategies as st_h
from sqlalchemy import Engine, text
from streamlit.testing.v1 import AppTest

from metrics_toolkit.collect.generator import generate_history
from metrics_toolkit.documents import join_path
from metrics_toolkit.explorer.query import ViewQuery
from metrics_toolkit.explorer.view import build_view
from metrics_toolkit.reporting import build_report, render_html, render_json
from metrics_toolkit.store.db import make_engine
from metrics_toolkit.store.ingest import write_snapshots
from tests.test_explorer_support import PASSWORD, USER, add_account
from tests.test_hostile_support import (
    HOSTILE,
    KEYS,
    PATHS,
    T0,
    Row,
    expected_values,
    hostile_histories,
    stored_rows,
)

PRE_EPOCH = datetime(1969, 12, 31, 23, 0, tzinfo=UTC)
MOUNT = "/mnt/<script>alert('m')</script> & ü"
#: Paths the report summarises (the mount expands disk.mounts.*.usage_percent).
REPORT_KEYS = (
    ("cpu", "usage_percent"),
    ("memory", "usage_percent"),
    ("disk", "mounts", MOUNT, "usage_percent"),
    ("disk", "mounts", "/data.old", "usage_percent"),
)
REPORT_PATHS = tuple(join_path(k) for k in REPORT_KEYS)
FEW = settings(HOSTILE, max_examples=10)
APP = Path(__file__).resolve().parent.parent / "streamlit_app.py"


def _empty(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM metrics_snapshots"))


def _range(rows: list[Row]) -> tuple[datetime, datetime]:
    stamps = [ts for ts, _, _ in rows]
    start = min(stamps).replace(second=0, microsecond=0)
    return start, max(stamps).replace(second=0, microsecond=0) + timedelta(minutes=1)


def _totals(
    rows: list[Row], keys: tuple[tuple[str, ...], ...], *, pooled: bool
) -> dict[tuple[str, str], list[float]]:
    """``{(path, host): clean values}`` over the whole range (host "" when pooled)."""
    out: dict[tuple[str, str], list[float]] = defaultdict(list)
    for (host, _), values in expected_values(rows, keys).items():
        for path, value in values.items():
            out[path, "" if pooled else host].append(value)
    return dict(out)


def _check(where: Any, samples: float, mean: float, low: float, high: float, values: list[float]):
    scale = math.fsum(abs(v) for v in values)
    assert samples == len(values), (where, samples, values)
    assert (low, high) == (min(values), max(values)), (where, low, high, values)
    expected = math.fsum(values) / len(values)
    assert math.isclose(mean, expected, rel_tol=1e-9, abs_tol=1e-9 * scale / len(values) + 1e-12)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []
        self.handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.handlers.extend(name for name, _ in attrs if name.startswith("on"))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parsed(html: str) -> _Text:
    parser = _Text()
    parser.feed(html)
    parser.close()
    return parser


# --------------------------------------------------------------------------------------
# The report builder


@FEW
@given(rows=hostile_histories(keys=REPORT_KEYS, bases=(T0, PRE_EPOCH), max_rows=14, awkward=False))
def test_report_summary_is_the_clean_subset(engine: Engine, rows: list[Row]) -> None:
    _empty(engine)
    kept = stored_rows(rows)
    write_snapshots(engine, rows)
    start, end = _range(kept)
    report = build_report(engine, start=start, end=end, thresholds={})
    expected = _totals(kept, REPORT_KEYS, pooled=False)
    # a sparse host (a few samples beside hosts that report all along) is listed apart,
    # not summarised: listed, so not lost
    sparse = {c.host for c in report.sparse}
    assert sparse <= {host for _, host in expected}
    expected = {key: v for key, v in expected.items() if key[1] not in sparse}
    got = {(row.metric, row.host): row for row in report.summary}
    assert got.keys() == expected.keys()
    for key, values in expected.items():
        row = got[key]
        _check(key, row.samples, row.mean, row.min, row.max, values)
    html = render_html(report)
    assert "<script" not in html.lower()
    parsed = _parsed(html)
    assert "script" not in parsed.tags and not parsed.handlers
    shown = "".join(parsed.text)
    if any(path == REPORT_PATHS[2] for path, _ in expected):
        assert MOUNT in shown  # the mount is named, as text
    render_json(report)  # strict JSON: raises on NaN or inf


# --------------------------------------------------------------------------------------
# The explorer's query path


@FEW
@given(
    rows=hostile_histories(bases=(T0, PRE_EPOCH), max_rows=14),
    interval=st_h.sampled_from(["auto", "1min", "1h"]),
    one_host=st_h.booleans(),
)
def test_explorer_view_is_the_clean_subset(
    engine: Engine, rows: list[Row], interval: str, one_host: bool
) -> None:
    _empty(engine)
    kept = stored_rows(rows)
    write_snapshots(engine, rows)
    start, end = _range(kept)
    named = sorted({d["host"] for _, _, d in kept if isinstance(d.get("host"), str) and d["host"]})
    hosts: tuple[str, ...] = (named[0],) if one_host and named else ()
    if hosts:
        kept = [r for r in kept if r[2].get("host") == hosts[0]]
    view = build_view(engine, ViewQuery(start, end, PATHS, hosts, interval))
    expected = {path: v for (path, _), v in _totals(kept, KEYS, pooled=True).items()}
    if not expected:
        assert view.empty
        return
    summary = view.summary
    for path in PATHS:
        if path not in expected:
            assert path not in summary.index or summary.loc[path, "samples"] == 0
            continue
        record = summary.loc[path]
        values = expected[path]
        _check(path, record["samples"], record["mean"], record["min"], record["max"], values)
        if view.p95_total is not None:  # from raw samples: numpy's inverted-CDF quantile
            assert math.isclose(
                record["p95"],
                float(np.quantile(values, 0.95, method="inverted_cdf")),
                rel_tol=1e-9,
                abs_tol=1e-9 * max(abs(v) for v in values),
            ), (path, record["p95"], values)


# --------------------------------------------------------------------------------------
# Escaping: a host, a process and a metric path (a mount) named with markup


HOST = '<script>alert("h")</script> **bold** [x](javascript:alert(1))'
PROCESS = "<img src=x onerror=alert(1)>"
END = datetime(2026, 2, 2, tzinfo=UTC)


def _hostile_copies(rows: list[Row]) -> list[Row]:
    out = []
    for ts, kind, doc in rows:
        twin = copy.deepcopy(doc)
        twin["host"] = HOST
        twin["processes"]["top_cpu"] = [{"name": PROCESS, "pid": 1, "cpu_percent": 99.0}]
        twin["disk"]["mounts"] = {MOUNT: {"usage_percent": 42.0}}
        out.append((ts, kind, twin))
    return out


@pytest.fixture
def planted(db_url: str) -> str:
    rows = [
        row
        for chunk in generate_history(
            start=END - timedelta(hours=6), end=END, interval="60s", hosts=1, seed=3
        )
        for row in chunk
    ]
    engine = make_engine(db_url)
    try:
        write_snapshots(engine, [*rows, *_hostile_copies(rows[-60::3])])
    finally:
        engine.dispose()
    return db_url


def test_report_html_escapes_host_process_and_metric_path(planted: str) -> None:
    report = build_report(planted, period="6h", end=END, thresholds={})
    mount_path = join_path(("disk", "mounts", MOUNT, "usage_percent"))
    rows = [r for r in report.summary if r.metric == mount_path]
    assert [(r.host, r.samples, r.mean) for r in rows] == [(HOST, 20, 42.0)]
    html = render_html(report)
    lowered = html.lower()
    assert "<script" not in lowered and "<img src=x" not in lowered
    assert "javascript:" not in re.sub(r">[^<]*<", "><", lowered)  # never in a tag
    parsed = _parsed(html)
    assert "script" not in parsed.tags and not parsed.handlers
    shown = "".join(parsed.text)
    for planted_text in (HOST, PROCESS, MOUNT):
        assert planted_text in shown, planted_text


@pytest.fixture
def _fresh_caches() -> Any:
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.mark.usefixtures("_fresh_caches")
def test_explorer_escapes_a_metric_path_and_a_host(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    path = join_path(("disk", "mounts", MOUNT, "usage_percent"))
    rows: list[Row] = [
        (
            now - timedelta(minutes=5 * (i + 1)),  # before the last complete bucket's end
            "aggregated",
            {"host": HOST, "disk": {"mounts": {MOUNT: {"usage_percent": 40.0 + i}}}},
        )
        for i in range(12)
    ]
    engine = make_engine(sqlite_url)
    write_snapshots(engine, rows)
    add_account(engine)
    engine.dispose()
    monkeypatch.setenv("METRICS_TOOLKIT_DATABASE_URL", sqlite_url)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    next(f for f in at.text_input if f.label == "Username").set_value(USER)
    next(f for f in at.text_input if f.label == "Password").set_value(PASSWORD)
    next(b for b in at.button if b.label == "Log in").click()
    at.run()
    at.multiselect(key="areas").set_value(["disk"]).run()
    at.multiselect(key="metrics").set_value([path]).run()
    assert not at.exception, at.exception
    markdown = [str(e.value) for kind in ("markdown", "caption") for e in at.get(kind)]
    unescaped = re.compile(r"(?<!\\)[<>\[\]]")  # markup or a link not backslash-escaped
    assert not [m for m in markdown if unescaped.search(m)], markdown
    assert not [m for m in markdown if MOUNT in m or HOST in m], markdown
    assert any("\\<script\\>" in m for m in markdown)  # the chart title, shown as text
    for element in at.get("markdown"):
        assert not element.proto.allow_html or "script" not in element.value
    summary = [t.value for t in at.dataframe if "samples" in t.value.columns]
    assert summary and list(summary[0]["metric"]) == [path]
    assert summary[0]["samples"].tolist() == ["12"]
