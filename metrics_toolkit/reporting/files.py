"""Report files on disk: dated paths, atomic writes, and ``index.html`` listing every report.

Layout under the output directory (config ``report.output_dir``, default ``reports``)::

    reports/index.html                       every report, newest first
    reports/all/7d-20260105T0600Z.html       all hosts, 7 days ending 2026-01-05 06:00 UTC
    reports/web-1/24h-20260105T0600Z.pdf     one host

A host label becomes a directory name only if it is made of letters, digits, ``.``, ``_``
and ``-``; anything else (a label with ``/`` or ``<script>``) is replaced and suffixed with
a short hash, so two labels never share a directory and no label escapes the output
directory. Files are written to a temporary name and renamed, so a reader (a web server,
the index) never sees half a report. Writing the same report again replaces it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from metrics_toolkit.errors import InvalidArgument, InvalidInterval, ReportNotWritten
from metrics_toolkit.intervals import Interval
from metrics_toolkit.reporting.model import Report
from metrics_toolkit.reporting.render_html import render_html
from metrics_toolkit.reporting.render_json import render_json
from metrics_toolkit.reporting.render_pdf import render_pdf
from metrics_toolkit.reporting.units import format_time

FORMATS = ("html", "pdf", "json")
ALL_HOSTS = "all"
INDEX = "index.html"
_SAFE = re.compile(r"[^A-Za-z0-9._-]")
_STEM = re.compile(r"^(?P<period>.+)-(?P<end>\d{8}T\d{4}Z)$")


def check_formats(formats: str | Sequence[str]) -> tuple[str, ...]:
    """``"html,pdf"`` or a sequence, validated; duplicates dropped, order kept."""
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    wanted = tuple(dict.fromkeys(f.strip().lower() for f in items if f.strip()))
    bad = [f for f in wanted if f not in FORMATS]
    if bad or not wanted:
        shown = bad[0] if bad else "(none)"
        raise InvalidArgument(f"Unknown report format {shown!r}: choose from {', '.join(FORMATS)}.")
    return wanted


def host_directory(host: str | None) -> str:
    """The directory name for a report of ``host`` (``all`` for every host)."""
    if host is None:
        return ALL_HOSTS
    safe = _SAFE.sub("_", host)[:60]
    if safe != host or host in (ALL_HOSTS, "", ".", "..") or host.startswith("."):
        digest = hashlib.sha1(host.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        safe = f"{safe.lstrip('.') or 'host'}-{digest}"
    return safe


def report_stem(report: Report) -> str:
    """The file name without extension: ``<period>-<end as YYYYmmddTHHMMZ>``."""
    period = _SAFE.sub("_", report.period) or "range"
    end = report.end.astimezone(UTC)
    return f"{period}-{end.year:04d}{end:%m%dT%H%MZ}"  # %Y does not pad years before 1000


def report_paths(
    report: Report, out_dir: str | Path, formats: Sequence[str] = FORMATS
) -> list[Path]:
    """Where :func:`write_report` puts each format of ``report``."""
    folder = Path(out_dir) / host_directory(report.host_filter)
    stem = report_stem(report)
    return [folder / f"{stem}.{fmt}" for fmt in check_formats(formats)]


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def render(report: Report, fmt: str) -> bytes:
    """One format of the report as bytes (HTML and JSON in UTF-8)."""
    if fmt == "html":
        return render_html(report).encode("utf-8")
    if fmt == "pdf":
        return render_pdf(report)
    if fmt == "json":
        text = json.dumps(render_json(report), indent=2, allow_nan=False, ensure_ascii=False)
        return (text + "\n").encode("utf-8")
    raise InvalidArgument(f"Unknown report format {fmt!r}: choose from {', '.join(FORMATS)}.")


def write_report(
    report: Report, out_dir: str | Path, formats: str | Sequence[str] = FORMATS
) -> list[Path]:
    """Write ``report`` in each of ``formats`` under ``out_dir``; refresh ``index.html``.

    Returns the report files written (not the index), in the order of ``formats``.
    """
    paths = report_paths(report, out_dir, check_formats(formats))
    try:
        for path in paths:
            _write_atomic(path, render(report, path.suffix[1:]))
        refresh_index(out_dir)
    except (OSError, ValueError) as error:  # ValueError: a NUL in the path
        reason = getattr(error, "strerror", None) or error
        msg = f"Cannot write the report under {str(out_dir)[:200]!r}: {reason}."
        raise ReportNotWritten(msg) from None
    return paths


@dataclass
class ReportEntry:
    """One report found on disk (its formats share a directory and a stem)."""

    directory: str
    stem: str
    formats: dict[str, Path] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def end(self) -> str:
        return str(self.meta.get("end") or "")


def list_reports(out_dir: str | Path) -> list[ReportEntry]:
    """Every report under ``out_dir`` (one directory level), newest end first."""
    root = Path(out_dir)
    entries: dict[tuple[str, str], ReportEntry] = {}
    if not root.is_dir():
        return []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(folder.iterdir()):
            fmt = path.suffix[1:]
            if fmt not in FORMATS or path.name.startswith(".") or not path.is_file():
                continue
            key = (folder.name, path.stem)
            entry = entries.setdefault(key, ReportEntry(folder.name, path.stem))
            entry.formats[fmt] = path
    for entry in entries.values():
        entry.meta = _meta(entry)
    return sorted(entries.values(), key=lambda e: (e.end, e.directory), reverse=True)


def _meta(entry: ReportEntry) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    match = _STEM.match(entry.stem)
    if match:
        end = datetime.strptime(match["end"], "%Y%m%dT%H%MZ").replace(tzinfo=UTC)
        meta.update(period=match["period"], end=end.isoformat())
        # Without the JSON: from the period.
        with contextlib.suppress(InvalidInterval, OverflowError):
            meta["start"] = (end - Interval.parse(match["period"]).timedelta).isoformat()
    if "json" in entry.formats:
        try:
            data = json.loads(entry.formats["json"].read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        if isinstance(data, dict):
            meta.update(
                {
                    k: data.get(k)
                    for k in (
                        "title",
                        "period",
                        "start",
                        "end",
                        "host",
                        "hosts",
                        "generated_at",
                        "empty",
                    )
                }
            )
            meta["breaches"] = len(data.get("breaches") or [])
    return meta


def _when(text: Any) -> str:
    try:
        return format_time(datetime.fromisoformat(str(text)))
    except ValueError:
        return "–"


def refresh_index(out_dir: str | Path) -> Path:
    """Rewrite ``out_dir/index.html`` listing every report found there (self-contained)."""
    root = Path(out_dir)
    rows = []
    for entry in list_reports(root):
        meta = entry.meta
        host = meta.get("host") if "host" in meta else None
        who = (
            "all hosts"
            if entry.directory == ALL_HOSTS and host is None
            else (host or entry.directory)
        )
        links = " ".join(
            f'<a href="{escape(f"{entry.directory}/{path.name}", quote=True)}">{fmt.upper()}</a>'
            for fmt, path in sorted(entry.formats.items(), key=lambda kv: FORMATS.index(kv[0]))
        )
        breaches = meta.get("breaches")
        status = "no data" if meta.get("empty") else ("–" if breaches is None else str(breaches))
        cells = [
            who,
            str(meta.get("period") or "–"),
            _when(meta.get("start")) if meta.get("start") else "–",
            _when(meta.get("end")),
            _when(meta.get("generated_at")) if meta.get("generated_at") else "–",
            status,
        ]
        rows.append(
            "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + f"<td>{links}</td></tr>"
        )
    table = (
        "<table><thead><tr><th>Hosts</th><th>Period</th><th>From</th><th>To</th>"
        "<th>Generated</th><th>Breaches</th><th>Files</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
        if rows
        else "<p>No reports yet. Write one with <code>metrics-toolkit report</code>.</p>"
    )
    html = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Metrics reports</title><style>"
        "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;"
        "color:#1d2430;max-width:1060px;margin:0 auto;padding:24px 28px;font-size:14px}"
        "table{border-collapse:collapse;width:100%}th,td{padding:5px 8px;text-align:left;"
        "border-bottom:1px solid #e3e7ee}th{background:#f3f5f9}a{color:#0b5cab;margin-right:8px}"
        "</style></head><body><h1>Metrics reports</h1>"
        f"<p>{len(rows)} report(s), newest first. Updated {escape(format_time(datetime.now(UTC)))}."
        f"</p>{table}</body></html>\n"
    )
    path = root / INDEX
    _write_atomic(path, html.encode("utf-8"))
    return path


__all__ = [
    "ALL_HOSTS",
    "FORMATS",
    "ReportEntry",
    "check_formats",
    "host_directory",
    "list_reports",
    "refresh_index",
    "render",
    "report_paths",
    "report_stem",
    "write_report",
]
