"""The HTML, PDF and JSON renderings: self-contained, valid, escaped, paginated.

One report is built (SQLite, one day of two hosts plus a host whose label and process
names are hostile markup) and rendered once; the tests inspect the outputs.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import shutil
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from pypdf import PdfReader

from metrics_toolkit.collect.generator import generate_history
from metrics_toolkit.reporting import (
    Report,
    build_report,
    list_reports,
    render_html,
    render_json,
    render_pdf,
    write_report,
)
from metrics_toolkit.reporting.render_pdf import page_count
from metrics_toolkit.store.db import make_engine
from metrics_toolkit.store.ingest import write_snapshots

END = datetime(2026, 2, 2, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script> & $x$'
HOSTILE_PROCESS = "<img src=x onerror=alert(1)>"
VOID = {"meta", "img", "br", "hr", "link", "input", "col", "area", "base", "source", "wbr"}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Report:
    path = tmp_path_factory.mktemp("render") / "metrics.db"
    shutil.copyfile(sqlite_template, path)
    rows = [
        row
        for chunk in generate_history(
            start=END - timedelta(days=1), end=END, interval="60s", hosts=2, seed=5
        )
        for row in chunk
    ]
    hostile = []
    for ts, kind, doc in rows[-40::2]:
        twin = copy.deepcopy(doc)
        twin["host"] = HOSTILE
        twin["processes"]["top_cpu"] = [{"name": HOSTILE_PROCESS, "pid": 1, "cpu_percent": 99.0}]
        hostile.append((ts, kind, twin))
    engine = make_engine(f"sqlite:///{path}")
    write_snapshots(engine, [*rows, *hostile])
    built = build_report(
        engine,
        period="24h",
        end=END,
        thresholds={"cpu.usage_percent": {"above": 30, "for": "5min"}},
    )
    engine.dispose()
    return built


@pytest.fixture(scope="module")
def html(report: Report) -> str:
    return render_html(report)


@pytest.fixture(scope="module")
def pdf(report: Report) -> bytes:
    return render_pdf(report)


class _Checker(HTMLParser):
    """Records tags, attributes and text; checks that non-void tags nest and close."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[str] = []
        self.urls: list[tuple[str, str, str]] = []
        self.text: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "srcset", "action", "data", "poster"):
                self.urls.append((tag, name, value or ""))
            if name.startswith("on"):
                self.errors.append(f"event handler attribute {name} on <{tag}>")
        if tag not in VOID:
            self.stack.append(tag)
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()
        self._in_style = False

    def handle_data(self, data: str) -> None:
        (self.styles if self._in_style else self.text).append(data)


def _parse(html: str) -> _Checker:
    checker = _Checker()
    checker.feed(html)
    checker.close()
    return checker


def test_html_is_valid_and_self_contained(html: str) -> None:
    assert html.startswith("<!DOCTYPE html>")
    checker = _parse(html)
    assert checker.errors == [] and checker.stack == []
    assert {"script", "link", "iframe", "object", "embed"}.isdisjoint(checker.tags)
    for tag, name, url in checker.urls:
        assert (tag == "img" and url.startswith("data:image/svg+xml;base64,")) or (
            tag == "a" and url.startswith("#")
        ), (tag, name, url[:80])
    style = "".join(checker.styles)
    assert "url(" not in style and "@import" not in style
    images = [url for tag, _, url in checker.urls if tag == "img"]
    assert len(images) >= 5  # CPU, load, memory, disk, disk I/O, network
    for url in images:
        svg = ElementTree.fromstring(base64.b64decode(url.split(",", 1)[1]))
        assert svg.tag == "{http://www.w3.org/2000/svg}svg"
        for element in svg.iter():
            assert not element.tag.endswith(("script", "foreignObject", "image"))
            for name, value in element.attrib.items():
                if name.endswith("href"):  # only links to the SVG's own definitions
                    assert value.startswith("#"), value


def test_every_string_from_the_data_is_escaped(html: str) -> None:
    assert "<script" not in html and HOSTILE_PROCESS not in html
    checker = _parse(html)
    text = "".join(checker.text)
    assert HOSTILE in text  # shown to the reader as text
    assert HOSTILE_PROCESS in text


def test_html_has_every_section(html: str, report: Report) -> None:
    text = "".join(_parse(html).text)
    for heading in (
        "Summary",
        "Charts",
        "Threshold breaches",
        "Data completeness",
        "Top processes",
    ):
        assert heading in text
    assert report.source in text and "p50 and p95" in text
    assert report.breaches and "CPU busy > 30.0 %" in text


def test_pdf_pages_are_a4_numbered_and_vector(pdf: bytes, report: Report) -> None:
    reader = PdfReader(io.BytesIO(pdf))
    pages = len(reader.pages)
    assert pages == page_count(report) and pages >= 4
    assert reader.metadata is not None and reader.metadata.title == report.title
    for number, page in enumerate(reader.pages, start=1):
        width, height = float(page.mediabox.width), float(page.mediabox.height)
        assert (round(width), round(height)) == (595, 842)
        text = page.extract_text()
        assert f"page {number} of {pages}" in text
        assert not page.images  # charts and tables are vector drawings
    full = " ".join(page.extract_text() for page in reader.pages)
    for heading in (
        "Summary",
        "Charts",
        "Threshold breaches",
        "Data completeness",
        "Top processes",
        "CPU busy",
    ):
        assert heading in full


def test_json_is_strict_json_with_the_numbers(report: Report) -> None:
    data = render_json(report)
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text)["hosts"] == sorted(["db-1", "web-1", HOSTILE])
    assert {row["host"] for row in data["summary"]} == set(data["hosts"])
    assert all(isinstance(row["mean"], float) for row in data["summary"])


def test_empty_report_renders_in_every_format(tmp_path: Path, sqlite_url: str) -> None:
    empty = build_report(sqlite_url, period="24h", end=END)
    assert empty.empty
    checker = _parse(render_html(empty))
    assert checker.errors == [] and "No aggregated data" in "".join(checker.text)
    assert len(PdfReader(io.BytesIO(render_pdf(empty))).pages) == 1
    assert render_json(empty)["summary"] == []


def test_write_report_writes_dated_files_and_the_index(tmp_path: Path, report: Report) -> None:
    paths = write_report(report, tmp_path, formats="html,json")
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "all/24h-20260202T0000Z.html",
        "all/24h-20260202T0000Z.json",
    ]
    index = (tmp_path / "index.html").read_text()
    checker = _parse(index)
    assert checker.errors == []
    assert [url for _, _, url in checker.urls] == [
        "all/24h-20260202T0000Z.html",
        "all/24h-20260202T0000Z.json",
    ]
    entries = list_reports(tmp_path)
    assert len(entries) == 1 and entries[0].meta["period"] == "24h"
    assert not list(tmp_path.rglob(".*.tmp"))


def test_a_hostile_host_report_stays_inside_the_output_directory(
    tmp_path: Path, report: Report
) -> None:
    alone: Any = copy.copy(report)
    alone.host_filter = HOSTILE
    paths = write_report(alone, tmp_path / "out", formats=["json"])
    assert paths[0].parent.parent == tmp_path / "out"
    index = (tmp_path / "out" / "index.html").read_text()
    assert "<script" not in index
    assert HOSTILE in "".join(_parse(index).text)
