"""Bulk ingest (``write_snapshots``) against bare drivers and the ORM, with peak memory.

Figures, each beside a baseline measured in the same run on the same generated rows:

- PostgreSQL: ``write_snapshots`` vs a bare psycopg binary ``COPY`` (psycopg's own ``Jsonb``
  dumper) into the same table of a second, identical database (target >= 0.8x its rows/s);
  vs the seed's per-row ``session.add`` + ``commit`` and vs ORM ``add_all`` (measured on a
  sample, rows/s extrapolated); re-ingesting rows already stored (all skipped).
- SQLite: ``write_snapshots`` vs bare ``executemany`` of a plain ``INSERT`` (no target yet).
- Peak RSS of a child process that streams the generator into ``write_snapshots`` at
  ``--rows / 10`` and ``--rows`` (target < 300 MB, and flat: <= 1.25x).

Rows come from :mod:`metrics_toolkit.collect.generator`, chunk by chunk (never all in memory). For
each chunk, ours and the bare baseline write it in turn (alternating which goes first), and
only the write is timed, so generation and background load hit both alike.

Run: ``python -m benchmarks.bench_ingest [--rows 1000000] [--postgres URL] [--strict]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from rich.console import Console
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from benchmarks.harness import Report, run_child
from metrics_toolkit.collect.generator import generate_history
from metrics_toolkit.store.db import make_engine
from metrics_toolkit.store.ingest import SnapshotRow, write_snapshots
from metrics_toolkit.store.migrate import upgrade
from metrics_toolkit.store.models import MetricsSnapshot

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/mt_bench_ingest"
END = datetime(2026, 1, 1, tzinfo=UTC)
INTERVAL = "10s"
HOSTS = 4
CHUNK = 10_000
MB = 1024 * 1024


def chunks(rows: int, *, offset_days: float = 0.0) -> Iterator[list[SnapshotRow]]:
    """``rows`` generated rows (4 hosts at 10 s), in chunks, ending ``offset_days`` before END."""
    end = END - timedelta(days=offset_days)
    # Generous range; the generator's collection gaps make the exact count vary.
    start = end - timedelta(seconds=10 * (rows // HOSTS + 10_000))
    left = rows
    for chunk in generate_history(start=start, end=end, interval=INTERVAL, hosts=HOSTS):
        if left <= 0:
            return
        yield chunk[:left]
        left -= len(chunk[:left])


def recreate(url: str) -> Engine:
    """An empty, migrated PostgreSQL database at ``url``."""
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    engine = make_engine(url)
    upgrade(engine)
    return engine


def drop(url: str) -> None:
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    admin.dispose()


def with_suffix(url: str, suffix: str) -> str:
    target = make_url(url)
    named = target.set(database=f"{target.database}_{suffix}")
    return named.render_as_string(hide_password=False)


# --- bare baselines -----------------------------------------------------------------------


def bare_copy(connection: psycopg.Connection[Any], rows: list[SnapshotRow]) -> None:
    """The fastest plain psycopg way: binary COPY, psycopg's Jsonb dumper, one transaction."""
    with connection.cursor() as cursor:
        sql = "COPY metrics_snapshots (timestamp, metric_type, metric_data) FROM STDIN"
        with cursor.copy(f"{sql} (FORMAT BINARY)") as copy:
            copy.set_types(["timestamptz", "text", "jsonb"])
            for timestamp, metric_type, document in rows:
                copy.write_row((timestamp, metric_type, Jsonb(document)))
    connection.commit()


def bare_executemany(connection: sqlite3.Connection, rows: list[SnapshotRow]) -> None:
    """Plain sqlite3: json.dumps, the SQLAlchemy timestamp text, one executemany."""
    connection.executemany(
        "INSERT INTO metrics_snapshots (timestamp, metric_type, metric_data) VALUES (?, ?, ?)",
        [
            (ts.replace(tzinfo=None).isoformat(" ", "microseconds"), kind, json.dumps(doc))
            for ts, kind, doc in rows
        ],
    )
    connection.commit()


def orm_per_row(engine: Engine, rows: list[SnapshotRow]) -> None:
    """The seed's pattern: one session.add and one commit per snapshot."""
    with Session(engine) as session:
        for timestamp, metric_type, document in rows:
            session.add(
                MetricsSnapshot(timestamp=timestamp, metric_type=metric_type, metric_data=document)
            )
            session.commit()


def orm_add_all(engine: Engine, rows: list[SnapshotRow]) -> None:
    with Session(engine) as session:
        session.add_all(
            MetricsSnapshot(timestamp=ts, metric_type=kind, metric_data=doc)
            for ts, kind, doc in rows
        )
        session.commit()


# --- measuring ------------------------------------------------------------------------------


def race(
    rows: int,
    ours: Callable[[list[SnapshotRow]], object],
    bare: Callable[[list[SnapshotRow]], object],
) -> tuple[float, float, int]:
    """Seconds spent by ours and by bare writing the same chunks, alternating who goes first."""
    spent = {"ours": 0.0, "bare": 0.0}
    written = 0
    for index, chunk in enumerate(chunks(rows)):
        order = [("ours", ours), ("bare", bare)]
        for name, fn in order if index % 2 == 0 else reversed(order):
            start = time.perf_counter()
            fn(chunk)
            spent[name] += time.perf_counter() - start
        written += len(chunk)
    return spent["ours"], spent["bare"], written


def rate_of(fn: Callable[[list[SnapshotRow]], object], rows: list[SnapshotRow]) -> float:
    start = time.perf_counter()
    fn(rows)
    return len(rows) / (time.perf_counter() - start)


def sample(rows: int, offset_days: float) -> list[SnapshotRow]:
    return [row for chunk in chunks(rows, offset_days=offset_days) for row in chunk]


def reingest(engine: Engine, rows: int, of: int) -> tuple[int, int, float]:
    """Write the first ``rows`` of the ``of`` rows again, in one call: (rows, skipped, rows/s).

    The time spent generating the rows is measured apart and left out.
    """
    generating = 0.0

    def first() -> Iterator[list[SnapshotRow]]:
        nonlocal generating
        left, source = rows, chunks(of)
        while left > 0:
            start = time.perf_counter()
            chunk = next(source, None)
            generating += time.perf_counter() - start
            if chunk is None:
                return
            yield chunk[:left]
            left -= len(chunk[:left])

    result = write_snapshots(engine, first())
    return result.rows, result.duplicates, result.rows / (result.seconds - generating)


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM: unlike ru_maxrss, not inherited across fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child_peak(mode: str, url: str, rows: int) -> tuple[float, float]:
    """(peak RSS in MB, rows/s) of a child that streams the generator (into the database)."""
    command = [sys.executable, "-m", "benchmarks.bench_ingest", "--child", mode, url, str(rows)]
    run = run_child(command)
    if run.returncode != 0:
        raise SystemExit(f"child {mode} of {rows} rows failed")
    result = json.loads(run.stdout)
    return float(result["peak_rss_mb"]), float(result["rows_per_second"])


def child_main(mode: str, url: str, rows: int) -> int:
    start = time.perf_counter()
    if mode == "generate":
        count = sum(len(chunk) for chunk in chunks(rows))
    else:
        engine = make_engine(url)
        count = write_snapshots(engine, chunks(rows)).rows
        engine.dispose()
    rate = count / (time.perf_counter() - start)
    print(json.dumps({"rows": count, "rows_per_second": rate, "peak_rss_mb": peak_rss_mb()}))
    return 0


# --- the report -------------------------------------------------------------------------------


def postgres_figures(report: Report, base: str, rows: int, orm_sample: int) -> None:
    ours_url, bare_url, orm_url = (with_suffix(base, s) for s in ("ours", "bare", "orm"))
    ours_engine, bare_engine, orm_engine = recreate(ours_url), recreate(bare_url), recreate(orm_url)
    raw = bare_engine.raw_connection()
    connection: psycopg.Connection[Any] = raw.driver_connection  # type: ignore[assignment]
    try:
        ours_s, bare_s, written = race(
            rows,
            lambda chunk: write_snapshots(ours_engine, chunk),
            lambda chunk: bare_copy(connection, chunk),
        )
    finally:
        raw.close()
    ours_rate, copy_rate = written / ours_s, written / bare_s
    report.add(
        f"PostgreSQL write_snapshots, {written:,} rows",
        ours_rate,
        "rows/s",
        baseline=("bare binary COPY", copy_rate),
        min_ratio=0.8,
    )
    again, skipped, again_rate = reingest(ours_engine, min(rows, 100_000), rows)
    report.add(
        f"  again, {again:,} rows already stored",
        again_rate,
        "rows/s",
        baseline=("first write", ours_rate),
        note=f"{skipped:,} skipped",
    )
    per_row = rate_of(lambda r: orm_per_row(orm_engine, r), sample(orm_sample, 400))
    add_all = rate_of(lambda r: orm_add_all(orm_engine, r), sample(orm_sample * 10, 200))
    report.add(
        "  speed-up over the seed's session.add + commit",
        ours_rate / per_row,
        "x",
        note=f"{per_row:,.0f} rows/s on {orm_sample:,} rows",
    )
    report.add(
        "  speed-up over ORM add_all",
        ours_rate / add_all,
        "x",
        note=f"{add_all:,.0f} rows/s on {orm_sample * 10:,} rows",
    )
    for engine in (ours_engine, bare_engine, orm_engine):
        engine.dispose()
    for url in (ours_url, bare_url, orm_url):
        drop(url)


def sqlite_figures(report: Report, rows: int, directory: Path) -> None:
    urls = {name: f"sqlite:///{directory / f'{name}.db'}" for name in ("ours", "bare")}
    engines = {name: make_engine(url) for name, url in urls.items()}
    for engine in engines.values():
        upgrade(engine)
    bare = sqlite3.connect(directory / "bare.db")
    bare.execute("PRAGMA journal_mode=WAL")
    bare.execute("PRAGMA synchronous=NORMAL")  # what make_engine sets for the toolkit
    ours_s, bare_s, written = race(
        rows,
        lambda chunk: write_snapshots(engines["ours"], chunk),
        lambda chunk: bare_executemany(bare, chunk),
    )
    bare.close()
    report.add(
        f"SQLite write_snapshots, {written:,} rows",
        written / ours_s,
        "rows/s",
        baseline=("bare executemany", written / bare_s),
        note="no target yet",
    )
    for engine in engines.values():
        engine.dispose()


def memory_figures(report: Report, base: str, rows: int) -> None:
    url = with_suffix(base, "memory")
    small = max(rows // 10, CHUNK)
    peaks: dict[int, float] = {}
    rates: dict[int, float] = {}
    for count in (small, rows):
        recreate(url).dispose()
        peaks[count], rates[count] = child_peak("ingest", url, count)
    drop(url)
    alone, _ = child_peak("generate", url, rows)
    report.add(
        f"Peak RSS, generate + ingest {rows:,} rows",
        peaks[rows],
        "MB",
        baseline=(f"the same at {small:,} rows", peaks[small]),
        max_ratio=1.25,
        max_value=300,
        note=f"end to end {rates[rows]:,.0f} rows/s",
    )
    report.add(
        "  of which the ingest",
        peaks[rows] - alone,
        "MB",
        baseline=("the generator alone", alone),
        note="peak RSS difference",
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child_main(argv[1], argv[2], int(argv[3]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="snapshots per contender")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("METRICS_TOOLKIT_BENCH_POSTGRES", DEFAULT_POSTGRES),
        help="base URL; databases <name>_ours, _bare, _orm, _memory are created and dropped",
    )
    parser.add_argument("--orm-sample", type=int, default=2_000, help="rows for per-row ORM")
    parser.add_argument("--skip", default="", help="comma-separated: postgres,sqlite,memory")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    report = Report(
        "Bulk ingest: write_snapshots vs bare drivers and the ORM",
        note=(
            f"generated documents ({HOSTS} hosts, {INTERVAL}), chunks of {CHUNK:,}, ours and "
            f"the baseline alternating per chunk; {os.cpu_count()} CPUs shared with the server"
        ),
    )
    if "postgres" not in skip:
        postgres_figures(report, args.postgres, args.rows, args.orm_sample)
    if "sqlite" not in skip:
        with tempfile.TemporaryDirectory(prefix="bench-ingest-") as directory:
            sqlite_figures(report, args.rows, Path(directory))
    if "memory" not in skip:
        memory_figures(report, args.postgres, args.rows)
    report.print(Console(width=max(200, shutil.get_terminal_size().columns)))
    if args.json:
        report.write_json(args.json)
    return report.exit_code(strict=args.strict)


if __name__ == "__main__":
    raise SystemExit(main())
