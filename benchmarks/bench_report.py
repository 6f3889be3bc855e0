"""The 30-day report (HTML + PDF + JSON) from N snapshots in PostgreSQL, beside its one load.

Figures, each beside a baseline measured in the same run:

- the whole report: ``build_report`` (every database read and section) plus
  ``write_report`` (HTML, PDF and JSON rendered and written, index refreshed), against the
  one ``load_frame`` call the report needs (same range, metrics, detail width and
  statistics) — target: at most 3x;
- the parts (informative): ``build_report`` alone, and each renderer.

Data: full generated documents (every collector's leaves, top-process lists at whole
minutes), 4 hosts at 10 s, the newest ``--rows`` of them, in a database
``mt_bench_report_<rows>`` that later runs reuse (``--fresh`` rebuilds it). 1,000,000 rows
are about 29 days, so the 30-day report covers all of them.

Run: ``python -m benchmarks.bench_report [--rows 1000000] [--repeat 3] [--strict]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from rich.console import Console

from benchmarks import datasets
from benchmarks.harness import Report, Stopwatch, measure_interleaved
from metrics_toolkit.collect.generator import SnapshotRow, count_history, generate_history
from metrics_toolkit.frames.load import load_frame
from metrics_toolkit.reporting import build_report, render_html, render_json, render_pdf
from metrics_toolkit.reporting.buckets import STATS, metrics_of
from metrics_toolkit.reporting.files import write_report
from metrics_toolkit.store.db import make_engine

END = datetime(2026, 6, 1, tzinfo=UTC)
HOSTS = 4
STEP_SECONDS = 10
PG_ADMIN = os.environ.get("METRICS_TOOLKIT_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


def rows(n: int) -> Iterator[list[SnapshotRow]]:
    """The newest ``n`` generated rows before END, in chunks (the oldest ones are dropped)."""
    span = timedelta(seconds=STEP_SECONDS * (n // HOSTS + 2000))
    start = END - span
    drop = max(0, count_history(start=start, end=END, interval=f"{STEP_SECONDS}s", hosts=HOSTS) - n)
    for chunk in generate_history(
        start=start, end=END, interval=f"{STEP_SECONDS}s", hosts=HOSTS, seed=5, chunk_size=5000
    ):
        if drop >= len(chunk):
            drop -= len(chunk)
            continue
        yield chunk[drop:]
        drop = 0


def database(n: int, *, fresh: bool) -> str:
    """A PostgreSQL database holding the newest ``n`` full-document rows; made once, then reused."""
    return datasets.postgres(n, fresh=fresh, name=f"mt_bench_report_{n}", source=rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fresh", action="store_true", help="rebuild the data set")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)

    url = database(args.rows, fresh=args.fresh)
    engine = make_engine(url)
    out = tempfile.mkdtemp(prefix="bench-report-")
    first = build_report(engine, period="30d", end=END)  # also warms the caches
    paths = metrics_of(first.detail)

    def one_load() -> object:
        return load_frame(
            engine,
            first.start,
            first.end,
            metrics=paths,
            interval=first.detail_interval,
            stats=STATS,
            by_host=True,
        )

    def whole_report() -> object:
        report = build_report(engine, period="30d", end=END)
        return write_report(report, out, formats=("html", "pdf", "json"))

    timings = measure_interleaved(
        {"load": one_load, "report": whole_report}, repeat=args.repeat, warmup=1
    )
    parts = {}
    with Stopwatch() as sw:
        report = build_report(engine, period="30d", end=END)
    parts["build"] = sw.wall
    for name, render in (("html", render_html), ("pdf", render_pdf), ("json", render_json)):
        with Stopwatch() as sw:
            render(report)
        parts[name] = sw.wall
    engine.dispose()

    load = timings["load"].median
    baseline = ("the one load_frame it needs", load)
    table = Report(
        f"30-day report from {args.rows:,} snapshots in PostgreSQL ({HOSTS} hosts, 10 s)",
        note=(
            f"median of {args.repeat} interleaved runs; {len(paths)} metrics x "
            f"{len(STATS)} stats at {first.detail_interval}, charts at {first.interval}, "
            f"{len(first.detail):,} detail buckets"
        ),
    )
    table.add(
        "report total: build + html + pdf + json written",
        timings["report"].median,
        "s",
        baseline=baseline,
        max_ratio=3.0,
    )
    table.add("  build_report (all reads and sections)", parts["build"], "s", baseline=baseline)
    for name in ("html", "pdf", "json"):
        table.add(f"  render_{name}", parts[name], "s", baseline=baseline)
    table.print(Console() if sys.stdout.isatty() else Console(width=140))
    table.write_json(f"benchmarks/results/report-{args.rows}.json")
    return table.exit_code(strict=args.strict)


if __name__ == "__main__":
    sys.exit(main())
