"""Beyond one machine: daily rollups over a generated archive, and PostgreSQL at 10M rows.

    python -m benchmarks.bench_scale                       # 1 year, 3 hosts, 10 s: ~9.5M rows
    python -m benchmarks.bench_scale --days 30             # a smaller archive
    python -m benchmarks.bench_scale --pg-rows 10000000    # + PostgreSQL 10M vs 1M rows

Archive part: a hive-partitioned archive (raw rows, the toolkit's schema, zstd) is written
once under ``--dir`` (reused while its parameters match). Each contender runs alone in a
child process that reports its own wall time and peak memory (``VmHWM``; Dask's workers
report theirs), all computing daily means of five metrics over the whole archive:

- ``load_frame(archive, interval="1D")``, the pandas path (the baseline);
- ``load_dask_frame`` on a ``LocalCluster`` of 2 worker processes, 1 thread each;
- DuckDB running the README's SQL (raw rows, ``union_by_name``, ``time_bucket``).

The three results are compared (max relative difference of the means). Dask's memory is
measured over half the archive and over all of it: the peak of a worker must not grow
with the archive (the partitions it holds at a time are one day each).

PostgreSQL part (``--pg-rows N``, optional: generating 10M rows takes a long while, and a
database made once is reused): ``load_frame(interval="1h")`` over the newest 7 days at N
rows and at N/10 rows (same window, a table 10x larger), and the ``EXPLAIN`` of the
window's query showing the timestamp index at work.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks.harness import Report, run_child

METRICS = [
    "cpu.usage_percent",
    "cpu.load1",
    "memory.used_bytes",
    "network.bytes_recv_per_s",
    "disk.read_bytes_per_s",
]
FIRST_DAY = date(2025, 1, 1)
DUCKDB_SQL = """
SELECT time_bucket(INTERVAL 1 day, "timestamp", TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket,
       {columns}
FROM read_parquet('{root}/metric_type=*/date=*/*.parquet',
                  hive_partitioning = true, union_by_name = true)
WHERE metric_type = 'aggregated' AND rollup_interval IS NULL
  AND "timestamp" >= TIMESTAMPTZ '{start}' AND "timestamp" < TIMESTAMPTZ '{end}'
GROUP BY bucket ORDER BY bucket
"""


# --------------------------------------------------------------------------------------
# The archive


def _day_table(day: date, hosts: int, step: int, first_id: int, rng: Any) -> pa.Table:
    per_host = 86_400 // step
    start = np.datetime64(day.isoformat(), "us")
    stamps = start + np.arange(per_host, dtype=np.int64) * step * 1_000_000
    stamps = np.tile(stamps, hosts)
    names = np.repeat([f"host-{h}" for h in range(hosts)], per_host)
    n = len(stamps)
    values = {
        "cpu.usage_percent": np.round(rng.uniform(0, 100, n), 2),
        "cpu.load1": np.round(rng.gamma(2.0, 0.5, n), 2),
        "memory.used_bytes": rng.integers(10**9, 8 * 10**9, n).astype(np.float64),
        "network.bytes_recv_per_s": np.round(rng.exponential(2e5, n), 1),
        "disk.read_bytes_per_s": np.round(rng.exponential(5e5, n), 1),
    }
    host_array = pa.array(names)
    text = [pc.cast(pa.array(v), pa.string()) for v in values.values()]
    document = pc.binary_join_element_wise(
        '{"host":"', host_array, '","cpu":{"usage_percent":', text[0], ',"load1":', text[1],
        '},"memory":{"used_bytes":', text[2], '},"network":{"bytes_recv_per_s":', text[3],
        '},"disk":{"read_bytes_per_s":', text[4], "}}", "",
    )  # fmt: skip
    order = np.argsort(stamps, kind="stable")
    columns: dict[str, Any] = {
        "id": pa.array(np.arange(first_id, first_id + n, dtype=np.int64)),
        "timestamp": pa.array(stamps, pa.timestamp("us", tz="UTC")),
        "host": host_array,
        "rollup_interval": pa.nulls(n, pa.string()),
        "document": document,
        **{name: pa.array(v) for name, v in values.items()},
    }
    return pa.table(columns).take(pa.array(order))


def make_archive(root: Path, days: int, hosts: int, step: int) -> int:
    """Write (or reuse) the benchmark archive; returns its row count."""
    marker = root / "_params.json"
    params = {"days": days, "hosts": hosts, "step": step, "first": FIRST_DAY.isoformat()}
    if marker.exists() and json.loads(marker.read_text()) == params:
        return days * hosts * (86_400 // step)
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(7)
    next_id = 1
    for i in range(days):
        day = FIRST_DAY + timedelta(days=i)
        table = _day_table(day, hosts, step, next_id, rng)
        next_id += len(table)
        directory = root / "metric_type=aggregated" / f"date={day.isoformat()}"
        directory.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, directory / "part-bench.parquet", compression="zstd")
    marker.write_text(json.dumps(params))
    return next_id - 1


# --------------------------------------------------------------------------------------
# Jobs (each in its own child process)


def _vmhwm() -> int:
    """This process's peak resident memory in bytes (Linux ``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _means(frame: Any) -> list[list[float]]:
    return [[float(v) for v in row] for row in frame[METRICS].to_numpy()]


def job(name: str, root: str, start: str, end: str) -> dict[str, Any]:
    """One contender; returns its figures (and its daily means, for the comparison)."""
    began = time.perf_counter()
    workers: list[int] = []
    if name == "pandas":
        from metrics_toolkit.frames.load import load_frame

        frame = load_frame(root, start, end, metrics=METRICS, interval="1D")
        means = _means(frame)
    elif name == "dask":
        from dask.distributed import Client, LocalCluster

        from metrics_toolkit.frames.dask import load_dask_frame

        with (
            LocalCluster(
                n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            # A long-lived cluster has its imports done: neither they nor the cluster's
            # start-up are the query's cost.
            client.run(importlib.import_module, "metrics_toolkit.frames.dask")  # type: ignore[no-untyped-call]
            began = time.perf_counter()
            frame = load_dask_frame(root, start, end, metrics=METRICS, interval="1D", compute=True)
            means = _means(frame)
            workers = list(client.run(_vmhwm).values())  # type: ignore[no-untyped-call]
    elif name == "duckdb":
        import duckdb

        columns = ", ".join(f'avg("{m}") AS "{m}"' for m in METRICS)
        connection = duckdb.connect()
        connection.execute("SET TimeZone = 'UTC'")
        sql = DUCKDB_SQL.format(columns=columns, root=root, start=start, end=end)
        means = _means(connection.execute(sql).df())
    else:
        raise SystemExit(f"unknown job {name!r}")
    return {
        "seconds": time.perf_counter() - began,
        "vmhwm": _vmhwm(),
        "workers_vmhwm": workers,
        "means": means,
    }


def _run(name: str, root: Path, start: date, end: date) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.bench_scale", "--job", name, "--root", str(root)]
    command += ["--start", start.isoformat(), "--end", end.isoformat()]
    child = run_child(command)
    if child.returncode != 0:
        raise SystemExit(f"job {name} failed ({child.returncode})")
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


def _max_relative_difference(a: list[list[float]], b: list[list[float]]) -> float:
    x, y = np.array(a), np.array(b)
    if x.shape != y.shape:
        return float("inf")
    return float(np.max(np.abs(x - y) / np.maximum(np.abs(y), 1e-300)))


# --------------------------------------------------------------------------------------
# PostgreSQL


def postgres_part(report: Report, rows: int) -> None:
    from sqlalchemy import text

    from benchmarks import datasets
    from metrics_toolkit.frames.load import load_frame
    from metrics_toolkit.rollup.sql import Filters, pg_buckets_fast
    from metrics_toolkit.store.db import make_engine

    metrics = datasets.TEN_METRICS[:5]
    window = (datasets.END - timedelta(days=7), datasets.END)
    timings: dict[int, float] = {}
    for n in (rows // 10, rows):
        began = time.perf_counter()
        url = datasets.postgres(n)
        print(f"PostgreSQL with {n:,} rows ready in {time.perf_counter() - began:.0f} s")
        engine = make_engine(url)
        samples = []
        for _ in range(5):
            began = time.perf_counter()
            load_frame(engine, *window, metrics=metrics, interval="1h")
            samples.append(time.perf_counter() - began)
        timings[n] = float(np.median(samples[1:]))
        query = pg_buckets_fast(
            metrics, Filters("aggregated", *window, None), 3600, ["count", "sum"], False,
            skip_rollups=False,
        )  # fmt: skip
        with engine.connect() as connection:
            driver = connection.connection.driver_connection
            with driver.cursor() as cursor:  # type: ignore[union-attr]
                cursor.execute("EXPLAIN " + query.sql, query.params)
                plan = "\n".join(row[0] for row in cursor.fetchall())
            size = connection.execute(
                text("SELECT pg_total_relation_size('metrics_snapshots')")
            ).scalar_one()
        engine.dispose()
        uses_index = "Index" in plan and "timestamp" in plan
        print(f"EXPLAIN of the 7-day window at {n:,} rows:\n{plan}\n")
        # The small table may hold little more than the window: a scan is right there.
        report.add(
            f"PostgreSQL: plan of the 7-day window at {n:,} rows uses the timestamp index",
            1.0 if uses_index else 0.0, "yes", min_value=1.0 if n == rows else None,
        )  # fmt: skip
        report.add(f"PostgreSQL: table + indexes per row at {n:,} rows", size / n, "B")
    small, large = sorted(timings)
    report.add(
        f"PostgreSQL: load_frame 7 days, 1h, {large:,} rows",
        timings[large] * 1e3, "ms",
        baseline=(f"same window at {small:,} rows", timings[small] * 1e3),
        max_ratio=2.0,
    )  # fmt: skip


# --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365, help="days in the archive (365)")
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--step", type=int, default=10, help="seconds between samples (10)")
    parser.add_argument("--dir", default="benchmarks/results/scale_archive")
    parser.add_argument("--pg-rows", type=int, default=0, help="e.g. 10000000 (0: skip)")
    parser.add_argument("--skip-pandas", action="store_true", help="for archives past memory")
    parser.add_argument("--job", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--start", help=argparse.SUPPRESS)
    parser.add_argument("--end", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.job:
        print(json.dumps(job(args.job, args.root, args.start, args.end)))
        return 0

    root = Path(args.dir).resolve()
    began = time.perf_counter()
    rows = make_archive(root, args.days, args.hosts, args.step)
    size = sum(p.stat().st_size for p in root.rglob("*.parquet"))
    print(f"archive: {rows:,} rows, {size / 1e6:,.0f} MB ({time.perf_counter() - began:.0f} s)")
    start, end = FIRST_DAY, FIRST_DAY + timedelta(days=args.days)
    half = FIRST_DAY + timedelta(days=args.days // 2)
    report = Report(
        f"Daily rollup over a {args.days}-day, {args.hosts}-host archive ({rows:,} rows, "
        f"{size / rows:.1f} B/row zstd Parquet)",
        note="each contender alone in a child process; memory is VmHWM (peak RSS)",
    )
    results = {name: _run(name, root, start, end) for name in ("dask", "duckdb")}
    results["dask_half"] = _run("dask", root, start, half)
    if not args.skip_pandas:
        results["pandas"] = _run("pandas", root, start, end)
    base = results.get("pandas")
    for name in ("dask", "duckdb"):
        got = results[name]
        report.add(
            f"{name}: time", got["seconds"], "s",
            baseline=("pandas path (load_frame)", base["seconds"]) if base else None,
        )  # fmt: skip
        report.add(
            f"{name}: peak memory (driver process)", got["vmhwm"] / 2**20, "MiB",
            baseline=("pandas path", base["vmhwm"] / 2**20) if base else None,
        )  # fmt: skip
        if base:
            report.add(
                f"{name}: max relative difference of the daily means vs pandas",
                _max_relative_difference(got["means"], base["means"]), "", max_value=1e-9,
            )  # fmt: skip
    if base:
        report.add("pandas path: time", base["seconds"], "s")
        report.add("pandas path: peak memory", base["vmhwm"] / 2**20, "MiB")
    full, half_run = results["dask"], results["dask_half"]
    report.add(
        "dask: peak memory of a worker, whole archive", max(full["workers_vmhwm"]) / 2**20, "MiB",
        baseline=("half the archive", max(half_run["workers_vmhwm"]) / 2**20),
        max_ratio=1.25, max_value=1024,
    )  # fmt: skip
    if args.pg_rows:
        postgres_part(report, args.pg_rows)
    report.print()
    report.write_json(Path("benchmarks/results") / "bench_scale.json")
    return report.exit_code(strict=False)


if __name__ == "__main__":
    sys.exit(main())
