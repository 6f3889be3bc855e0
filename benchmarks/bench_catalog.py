"""``list_hosts`` from the series catalog vs the full scan it replaced, on PostgreSQL.

    python -m benchmarks.bench_catalog                  # 10 hosts x 30 days x 10 s: ~2.6M rows
    python -m benchmarks.bench_catalog --hosts 40       # 4x the hosts (~10M rows)
    python -m benchmarks.bench_catalog --url postgresql://postgres@127.0.0.1:5432/other

The data set is made once in the database of ``--url`` (default ``mt_cat_bench``; created
and filled when missing or of another size, ``--fresh`` rebuilds it) with the history
generator and the bulk ingest, documents trimmed to ~25 numeric leaves as in
``benchmarks.datasets`` (``--full-docs`` keeps the generator's whole documents, as the
issue's 3.7 GB table had; slower to make). Each query runs in a fresh child process (new
interpreter, new connection, cold caches): the figure is the wall time of the call once
connected (the time to connect, the same for both, is printed beside it; imports are not
timed); the median over ``--repeat`` children. The old
scan (``SELECT DISTINCT host ... FROM metrics_snapshots``) is measured in the same run on
the same ranges, and both answers must be equal.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy import exc as sa_exc

from benchmarks.datasets import compact
from benchmarks.harness import Report, run_child
from metrics_toolkit.collect.generator import generate_history
from metrics_toolkit.store.db import make_engine, resolve_url
from metrics_toolkit.store.ingest import write_snapshots
from metrics_toolkit.store.migrate import upgrade
from metrics_toolkit.store.models import MetricsSeries, MetricsSnapshot

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/mt_cat_bench"
END = datetime(2026, 6, 1, tzinfo=UTC)
TARGET_SECONDS = 0.05

#: name -> (start, end) offsets from the data's end, in days (None: open)
RANGES: dict[str, tuple[float | None, float | None]] = {
    "all time": (None, None),
    "last day": (1, 0),
    "last 7 days": (7, 0),
    "one hour, 10 days ago": (10, 10 - 1 / 24),
}


def _rows(hosts: int, days: int, step: int, full: bool) -> Iterator[list[Any]]:
    for chunk in generate_history(
        start=END - timedelta(days=days),
        end=END,
        interval=f"{step}s",
        hosts=hosts,
        seed=7,
        chunk_size=5000,
    ):
        yield chunk if full else [(ts, mt, compact(doc)) for ts, mt, doc in chunk]


def _signature(hosts: int, days: int, step: int, full: bool) -> str:
    return f"bench_catalog hosts={hosts} days={days} step={step} full={full}"


def ensure_dataset(url: str, hosts: int, days: int, step: int, full: bool, fresh: bool) -> None:
    """Make the data set in ``url`` unless it is already there (a comment on the table
    records its parameters)."""
    target = resolve_url(url)
    name = target.database
    assert name and name.replace("_", "").isalnum(), f"unsafe database name {name!r}"
    signature = _signature(hosts, days, step, full)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
        ).scalar()
    if exists and not fresh:
        engine = make_engine(url)
        try:
            with engine.connect() as connection:
                found = connection.execute(
                    text("SELECT obj_description('metrics_snapshots'::regclass)")
                ).scalar()
        except sa_exc.SQLAlchemyError:  # no table yet: rebuild
            found = None
        finally:
            engine.dispose()
        if found == signature:
            admin.dispose()
            return
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    engine = make_engine(url)
    upgrade(engine)
    started = time.perf_counter()
    result = write_snapshots(engine, _rows(hosts, days, step, full), batch_size=20_000)
    print(f"Ingested {result.inserted:,} rows in {time.perf_counter() - started:.0f} s")
    with engine.connect() as connection:
        auto = connection.execution_options(isolation_level="AUTOCOMMIT")
        auto.execute(text("VACUUM ANALYZE metrics_snapshots"))
        auto.execute(text("ANALYZE metrics_series"))
        auto.execute(text(f"COMMENT ON TABLE metrics_snapshots IS '{signature}'"))
    engine.dispose()


def _bounds(url: str) -> tuple[datetime, datetime, int, int]:
    engine = make_engine(url)
    with engine.connect() as connection:
        first, last = connection.execute(
            select(func.min(MetricsSnapshot.timestamp), func.max(MetricsSnapshot.timestamp))
        ).one()
        rows = connection.execute(
            text("SELECT reltuples::bigint FROM pg_class WHERE relname = 'metrics_snapshots'")
        ).scalar_one()
        series = connection.execute(select(func.count()).select_from(MetricsSeries)).scalar_one()
    engine.dispose()
    return first, last, int(rows), int(series)


def _range(last: datetime, name: str) -> tuple[datetime | None, datetime | None]:
    lo, hi = RANGES[name]
    end = last + timedelta(seconds=1)
    return (
        None if lo is None else end - timedelta(days=lo),
        None if hi is None else end - timedelta(days=hi),
    )


# --- the child --------------------------------------------------------------------------


def child(url: str, path: str, start: str | None, end: str | None) -> None:
    """Time one call in this fresh process. Prints ``{"connect": s, "seconds": s, "hosts":
    [..]}``: ``connect`` is the engine and its first connection (the server's backend
    start, the dialect's first queries), ``seconds`` the call once connected, with every
    cache of this process cold (statement compilation, the server's plan)."""
    from metrics_toolkit.frames.load import list_hosts  # imports are not timed

    lo = None if start is None else datetime.fromisoformat(start)
    hi = None if end is None else datetime.fromisoformat(end)
    started = time.perf_counter()
    engine = make_engine(url)
    with engine.connect():
        pass
    connected = time.perf_counter()
    if path == "catalog":
        hosts = list_hosts(engine, start=lo, end=hi)
    else:  # the scan list_hosts did before the catalog
        host = func.coalesce(MetricsSnapshot.metric_data["host"].as_string(), "")
        stmt = select(host).distinct().where(MetricsSnapshot.metric_type == "aggregated")
        if lo is not None:
            stmt = stmt.where(MetricsSnapshot.timestamp >= lo)
        if hi is not None:
            stmt = stmt.where(MetricsSnapshot.timestamp < hi)
        with engine.connect() as connection:
            hosts = sorted(str(h) for (h,) in connection.execute(stmt) if h)
    seconds = time.perf_counter() - connected
    print(json.dumps({"connect": connected - started, "seconds": seconds, "hosts": hosts}))


def _run(url: str, path: str, lo: datetime | None, hi: datetime | None) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.bench_catalog", "--child", path, "--url", url]
    if lo is not None:
        command += ["--start", lo.isoformat()]
    if hi is not None:
        command += ["--end", hi.isoformat()]
    done = run_child(command)
    if done.returncode != 0:
        raise SystemExit(f"child {path} failed with code {done.returncode}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL database of the data set")
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--step", type=int, default=10, help="seconds between snapshots")
    parser.add_argument("--full-docs", action="store_true", help="the generator's whole docs")
    parser.add_argument("--fresh", action="store_true", help="rebuild the data set")
    parser.add_argument("--repeat", type=int, default=5, help="children per figure (median)")
    parser.add_argument("--scan-repeat", type=int, default=2, help="children per scan figure")
    parser.add_argument("--child", choices=("catalog", "scan"), help=argparse.SUPPRESS)
    parser.add_argument("--start", help=argparse.SUPPRESS)
    parser.add_argument("--end", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.url, args.child, args.start, args.end)
        return 0
    ensure_dataset(args.url, args.hosts, args.days, args.step, args.full_docs, args.fresh)
    first, last, rows, series = _bounds(args.url)
    report = Report(
        title=f"list_hosts on PostgreSQL: {rows:,} rows, {args.hosts} hosts, {series} series",
        note=f"{first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M}; fresh process per call, "
        f"median of {args.repeat} (catalog) / {args.scan_repeat} (scan)",
    )
    for name in RANGES:
        lo, hi = _range(last, name)
        catalog = [_run(args.url, "catalog", lo, hi) for _ in range(args.repeat)]
        scan = [_run(args.url, "scan", lo, hi) for _ in range(args.scan_repeat)]
        answers = {json.dumps(r["hosts"]) for r in catalog + scan}
        if len(answers) != 1:
            raise SystemExit(f"{name}: catalog and scan disagree: {sorted(answers)}")
        scan_s = statistics.median(r["seconds"] for r in scan)
        catalog_s = statistics.median(r["seconds"] for r in catalog)
        connect_s = statistics.median(r["connect"] for r in catalog)
        report.add(f"scan, {name}", scan_s, "s")
        report.add(
            f"catalog, {name}",
            catalog_s,
            "s",
            baseline=(f"scan, {name}", scan_s),
            max_value=TARGET_SECONDS,
            note=f"{len(catalog[0]['hosts'])} hosts; + {connect_s:.3f} s to connect",
        )
    report.print()
    return report.exit_code(strict=False)


if __name__ == "__main__":
    raise SystemExit(main())
