"""Rollup tiers and the series catalog (issue 18): fleet views, list_hosts, storage, ingest.

Datasets (made once with ``--make-dataset``, then reused; see :func:`make_dataset`):

    python -m benchmarks.bench_tiers --make-dataset --hosts 10 \\
        --url postgresql://postgres@127.0.0.1:5432/mt_bench_fleet10
    python -m benchmarks.bench_tiers --make-dataset --hosts 10 --url sqlite:////work/bench/fleet10.db
    python -m benchmarks.bench_tiers --make-dataset --hosts 40 \\
        --url postgresql://postgres@127.0.0.1:5432/mt_bench_fleet40

``HOSTS`` hosts x 30 days x 10 s of the generator's full documents, ending at :data:`END`,
with a policy that keeps raw data 60 days (nothing is rolled up). The generator makes
3,000-8,000 rows/s here (an hour for the 40-host set), so the 40-host set and the SQLite
copy are usually made from the refreshed 10-host set instead (:func:`replicate_dataset`,
minutes; hosts copied under the generator's names for 40 hosts, tiers and catalog too):

    python -m benchmarks.bench_tiers --make-dataset --hosts 40 --replicate URL10 --url URL40
    python -m benchmarks.bench_tiers --make-dataset --hosts 10 --replicate URL10 \
        --url sqlite:////work/bench/fleet10.db

Run (every figure beside its baseline, measured in the same run):

    python -m benchmarks.bench_tiers [--url URL10] [--compare URL40] [--refresh-budget S]

Figures, each query in a fresh child process (``--child``), as the explorer's first page:

- ``list_hosts`` (the series catalog when built) vs a full ``SELECT DISTINCT host`` scan;
- the explorer's main view (4 metrics, ``by_host=True``, mean/min/max/count) over 1 d at
  5 min, 7 d at 30 min and 30 d at 2 h ending at the dataset's end, ``tiers=True`` vs
  ``tiers=False``, and the largest difference between the two (must be <= 1e-9);
- storage: ``metrics_tiers`` (with its indexes) per width vs ``metrics_snapshots``;
- ingest: ``bench_ingest``'s figure (``write_snapshots``, which marks the tier log, vs bare
  binary ``COPY``) with ``--ingest-rows`` rows (PostgreSQL only);
- refresh: ``archive run`` at the dataset's end (as the issue's figures assume), then
  ``archive.tiers.refresh`` of whatever the tier log still holds (the backfill after
  loading), in rows/s. It stops after the day that passes ``--refresh-budget`` seconds
  (default 300; 0: no limit), what is done staying committed, and the rest is extrapolated;
  a later run goes on where it stopped (``--no-refresh`` skips it).

``--compare URL40`` runs the views and ``list_hosts`` on the 40-host set too and prints
each figure beside the 10-host one (target: views <= 2x, ``list_hosts`` unchanged).
A piece not built yet (``load_frame`` without ``tiers=``, no catalog, no ``metrics_tiers``)
prints as "n/a (not built)". Not part of CI. ``make bench`` runs it on
``METRICS_TOOLKIT_BENCH_TIERS_URL`` (default: ``mt_bench_fleet10`` on the local server),
making the dataset first when it is missing (about 10-15 min), with
``METRICS_TOOLKIT_BENCH_TIERS_COMPARE`` as ``--compare`` when set.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from benchmarks.harness import Report, run_child

#: The datasets end here (a fixed date, so every run reads the same rows).
END = datetime(2026, 12, 1, tzinfo=UTC)
DAYS = 30
STEP = "10s"
SEED = 42
POLICY_DAYS = 60  # raw data kept 60 days: nothing in the 30-day set is rolled up
RETENTION_DAYS = 90
METRICS = (
    "cpu.usage_percent",
    "memory.usage_percent",
    "disk.usage_percent",
    "network.bytes_recv_per_s",
)
STATS = ("mean", "min", "max", "count")
VIEWS = (("1d", "5min"), ("7d", "30min"), ("30d", "2h"))
NOT_BUILT = "not built"  # printed beside the value "n/a"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/mt_bench_fleet10"


# --- the dataset -----------------------------------------------------------------------------


def _recreate(url: str) -> None:
    target = make_url(url)
    if target.get_backend_name() == "sqlite":
        path = target.database or ""
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
        return
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def _prepared(url: str) -> Engine:
    """An engine on ``url``, migrated, with the datasets' policy."""
    from metrics_toolkit.store.db import make_engine, session_scope
    from metrics_toolkit.store.migrate import upgrade
    from metrics_toolkit.store.policies import update_policy

    engine = make_engine(url)
    upgrade(engine)
    with session_scope(engine) as session:
        update_policy(
            session=session,
            retention_days=RETENTION_DAYS,
            downsample_after_days=POLICY_DAYS,
            archive_enabled=False,
        )
    return engine


def _snapshot_count(url: str) -> int:
    """Snapshots at ``url``; -1 when there is no such database or table."""
    from sqlalchemy import exc as sa_exc

    from metrics_toolkit.store.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            sql = "SELECT count(*) FROM (SELECT 1 FROM metrics_snapshots LIMIT 1) AS one"
            return int(connection.execute(text(sql)).scalar_one())
    except sa_exc.SQLAlchemyError:
        return -1
    finally:
        engine.dispose()


def make_dataset(url: str, hosts: int, days: int = DAYS, *, resume: bool = False) -> dict[str, Any]:
    """Make ``url`` afresh: migrated schema, the policy, ``hosts`` x ``days`` x 10 s to END.

    ``resume``: keep what an interrupted run wrote (ingest skips rows already stored).
    """
    from metrics_toolkit.collect.generator import count_history, generate_history
    from metrics_toolkit.store.ingest import write_snapshots

    start = END - timedelta(days=days)
    total = count_history(start=start, end=END, interval=STEP, hosts=hosts)
    if not resume:
        _recreate(url)
    engine = _prepared(url)
    done = 0
    began = time.perf_counter()

    def on_batch(n: int) -> None:
        nonlocal done
        done += n
        if done % 200_000 < n:
            rate = done / (time.perf_counter() - began)
            eta = (total - done) / rate if rate else 0.0
            print(f"  {done:,}/{total:,} rows, {rate:,.0f} rows/s, ~{eta / 60:.0f} min left")

    rows = generate_history(
        start=start, end=END, interval=STEP, hosts=hosts, seed=SEED, chunk_size=2000
    )
    result = write_snapshots(engine, rows, on_batch=on_batch)
    ingest_s = time.perf_counter() - began
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(
                text("VACUUM ANALYZE metrics_snapshots")
            )
    else:
        with engine.connect() as connection:
            connection.execute(text("ANALYZE"))
    engine.dispose()
    made = {
        "url": url,
        "hosts": hosts,
        "rows": result.inserted,
        "expected": total,
        "ingest_seconds": round(ingest_s, 1),
        "total_seconds": round(time.perf_counter() - began, 1),
    }
    print(json.dumps(made))
    return made


def replicate_dataset(
    source: str, url: str, copies: int, *, resume: bool = False
) -> dict[str, Any]:
    """Make ``url`` (PostgreSQL) afresh as ``copies`` x the hosts of ``source``, refreshed.

    A faster way to the 40-host set than the generator (which makes ~3,000-8,000 rows/s
    here, about an hour for 10.4M rows): every snapshot of ``source`` (the 10-host set,
    its tiers refreshed) is written ``copies`` times, copy ``k`` of host ``i`` named as the
    generator names host ``i + k * hosts`` (so the names are those of ``--hosts 40``), in
    time order with every host interleaved as ingest writes them. Its tier rows are
    copied the same way (a tier row is the rule applied to one host's snapshots, and a
    copy's snapshots are the original's under another name), and so is the series catalog;
    the tier log starts empty. The values repeat per copy; a view's cost depends on its
    rows, not their values. ``view_figures`` checks the copied tiers against the copied
    snapshots (the max relative difference) on every run.
    """
    from metrics_toolkit.collect.generator import host_names
    from metrics_toolkit.store.db import make_engine

    began = time.perf_counter()
    src = make_engine(source)
    with src.connect() as connection:
        hosts = [h for (h,) in connection.execute(text("SELECT host FROM metrics_series"))]
        dirty = connection.execute(text("SELECT count(*) FROM metrics_tier_dirty")).scalar_one()
    if dirty:
        raise SystemExit(f"{source}: refresh its tiers first ({dirty} tier log entries)")
    old = host_names(len(hosts))
    if sorted(old) != sorted(hosts):
        raise SystemExit(f"{source}: not a generated dataset (hosts {hosts})")
    new = host_names(len(hosts) * copies)
    if not resume:
        _recreate(url)
    engine = _prepared(url)
    # the copy's name: new[i + k * len(old)] for old[i] (array subscripts start at 1)
    name = "(%(new)s::text[])[array_position(%(old)s::text[], {host}) + k * %(n)s]"
    params = {"new": new, "old": old, "n": len(old)}
    copies_sql = f"CROSS JOIN generate_series(0, {copies - 1}) AS k"
    of_snapshot = name.format(host="s.metric_data ->> 'host'")
    tables = {
        "metrics_snapshots": (
            "timestamp, metric_type, metric_data",
            "SELECT s.timestamp, s.metric_type, jsonb_set(s.metric_data, '{host}', "
            f"to_jsonb({of_snapshot})) "
            f"FROM metrics_snapshots AS s {copies_sql} ORDER BY s.timestamp, k",
        ),
        "metrics_tiers": (
            "width_seconds, metric_type, host, timestamp, samples, metric_data",
            f"SELECT t.width_seconds, t.metric_type, {name.format(host='t.host')}, "
            "t.timestamp, t.samples, jsonb_set(t.metric_data, '{host}', "
            f"to_jsonb({name.format(host='t.host')})) "
            f"FROM metrics_tiers AS t {copies_sql}",  # as stored (sorting 20 kB rows spills)
        ),
        "metrics_tier_blocks": (
            "width_seconds, metric_type, path, day, host, counts, sums, mins, maxes",
            f"SELECT b.width_seconds, b.metric_type, b.path, b.day, {name.format(host='b.host')}, "
            "b.counts, b.sums, b.mins, b.maxes "
            f"FROM metrics_tier_blocks AS b {copies_sql}",
        ),
        "metrics_series": (
            "metric_type, host, first_seen, last_seen",
            f"SELECT c.metric_type, {name.format(host='c.host')}, c.first_seen, c.last_seen "
            f"FROM metrics_series AS c {copies_sql}",
        ),
    }
    rows: dict[str, int] = {}
    reader: Any = src.raw_connection().driver_connection
    if resume:  # a table that holds rows was copied by the interrupted run
        with engine.connect() as connection:
            for table in list(tables):
                if connection.execute(text(f"SELECT 1 FROM {table} LIMIT 1")).first():
                    del tables[table]
    copy = _copy_into_sqlite if engine.dialect.name == "sqlite" else _copy_into_postgres
    rows = copy(reader, engine, tables, params)
    reader.close()
    print(f"  copied in {time.perf_counter() - began:.0f} s")
    engine.dispose()
    src.dispose()
    seconds = round(time.perf_counter() - began, 1)
    made = {"url": url, "from": source, "hosts": len(new), **rows, "seconds": seconds}
    print(json.dumps(made))
    return made


def _copy_into_postgres(
    reader: Any, engine: Engine, tables: dict[str, tuple[str, str]], params: dict[str, Any]
) -> dict[str, int]:
    """Each of ``tables`` from ``reader``'s query into ``engine`` by binary COPY."""
    rows: dict[str, int] = {}
    writer: Any = engine.raw_connection().driver_connection
    for table, (columns, query) in tables.items():
        with reader.cursor() as rc, writer.cursor() as wc:
            source = f"COPY ({query}) TO STDOUT (FORMAT BINARY)"
            target = f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)"
            with rc.copy(source, params) as out, wc.copy(target) as into:
                for block in out:
                    into.write(block)
            rows[table] = wc.rowcount
        writer.commit()
        print(f"  {table}: {rows[table]:,} rows")
    writer.autocommit = True
    with writer.cursor() as wc:
        wc.execute("VACUUM ANALYZE")
    writer.close()
    return rows


def _copy_into_sqlite(
    reader: Any, engine: Engine, tables: dict[str, tuple[str, str]], params: dict[str, Any]
) -> dict[str, int]:
    """Each of ``tables`` from ``reader``'s query into a SQLite file, stored as the toolkit
    stores them: snapshots as ingest writes them (compact JSON text), tier rows and the
    catalog through their SQLAlchemy tables (as the refresh and the catalog write them)."""
    from sqlalchemy import insert

    from metrics_toolkit.store.ingest import _encode_json
    from metrics_toolkit.store.models import MetricsSeries, MetricsTier, TierBlock
    from metrics_toolkit.store.sqltypes import sqlite_timestamp

    models = {
        "metrics_tiers": MetricsTier,
        "metrics_tier_blocks": TierBlock,
        "metrics_series": MetricsSeries,
    }
    rows: dict[str, int] = {}
    with engine.begin() as connection:
        for table, (columns, query) in tables.items():
            names = [c.strip() for c in columns.split(",")]
            n = 0
            with reader.cursor(name=f"read_{table}") as rc:  # server side, in batches
                rc.itersize = 5000
                rc.execute(query, params)
                while batch := rc.fetchmany(5000):
                    if table == "metrics_snapshots":
                        connection.exec_driver_sql(
                            f"INSERT INTO {table} ({columns}) VALUES (?, ?, ?)",
                            [
                                (sqlite_timestamp(ts), mt, _encode_json(doc))
                                for ts, mt, doc in batch
                            ],
                        )
                    else:
                        connection.execute(
                            insert(models[table]), [dict(zip(names, r, strict=True)) for r in batch]
                        )
                    n += len(batch)
                    if n % 500_000 < len(batch):
                        print(f"  {table}: {n:,} rows")
            reader.commit()
            rows[table] = n
            print(f"  {table}: {n:,} rows")
    with engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
    return rows


# --- what is built (the API grows while issue 18 is worked on) --------------------------------


def _has_tiers_kwarg() -> bool:
    from metrics_toolkit.frames.load import load_frame

    return "tiers" in inspect.signature(load_frame).parameters


def _has_catalog(engine: Engine) -> bool:
    import importlib.util

    from sqlalchemy import inspect as sa_inspect

    if importlib.util.find_spec("metrics_toolkit.store.series") is None:
        return False
    return "metrics_series" in sa_inspect(engine).get_table_names()


def _has_table(engine: Engine, name: str) -> bool:
    from sqlalchemy import inspect as sa_inspect

    return name in sa_inspect(engine).get_table_names()


# --- children: one query each, in a fresh process ---------------------------------------------


def _scan_hosts(engine: Engine) -> list[str]:
    """The old way, the baseline: every snapshot's host, one full scan."""
    host = (
        "metric_data ->> 'host'"
        if engine.dialect.name == "postgresql"
        else "json_extract(metric_data, '$.host')"
    )
    sql = f"SELECT DISTINCT {host} FROM metrics_snapshots WHERE metric_type = 'aggregated'"
    with engine.connect() as connection:
        return sorted(str(h) for (h,) in connection.execute(text(sql)) if h)


def child_main(kind: str, url: str, *rest: str) -> int:
    """Run one measured query and print ``{"seconds": ..., ...}`` as JSON."""
    from metrics_toolkit.frames.load import list_hosts, load_frame
    from metrics_toolkit.store.db import make_engine

    engine = make_engine(url)
    out: dict[str, Any] = {}
    if kind == "hosts-scan":
        started = time.perf_counter()
        hosts = _scan_hosts(engine)
        out["seconds"] = time.perf_counter() - started
        out["hosts"] = len(hosts)
    elif kind == "hosts-catalog":
        if not _has_catalog(engine):
            out["not_built"] = True
        else:
            started = time.perf_counter()
            hosts = list_hosts(engine)
            out["seconds"] = time.perf_counter() - started
            out["hosts"] = len(hosts)
    elif kind == "view":
        span, interval, mode, save = rest
        kwargs: dict[str, Any] = {}
        if _has_tiers_kwarg():
            kwargs["tiers"] = mode == "tiers"
        elif mode == "tiers":
            out["not_built"] = True
        if not out:
            days = int(span.rstrip("d"))
            started = time.perf_counter()
            frame = load_frame(
                engine,
                END - timedelta(days=days),
                END,
                metrics=list(METRICS),
                interval=interval,
                stats=STATS,
                by_host=True,
                **kwargs,
            )
            out["seconds"] = time.perf_counter() - started
            out["shape"] = list(frame.shape)
            out["attrs_tiers"] = frame.attrs.get("tiers")
            out["raw_rows"] = frame.attrs.get("raw_rows")
            if save != "-":
                frame.to_pickle(save)
    else:
        raise SystemExit(f"unknown child {kind!r}")
    engine.dispose()
    print(json.dumps(out))
    return 0


def _child(kind: str, url: str, *rest: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.bench_tiers", "--child", kind, url, *rest]
    run = run_child(command)
    if run.returncode != 0:
        raise SystemExit(f"child {' '.join(command[3:])} failed ({run.returncode})")
    return dict(json.loads(run.stdout.strip().splitlines()[-1]))


def _median_of(kind: str, url: str, *rest: str, repeat: int) -> dict[str, Any] | None:
    """The child run ``repeat`` times; its median seconds (None when not built)."""
    runs = [_child(kind, url, *rest) for _ in range(repeat)]
    if any(run.get("not_built") for run in runs):
        return None
    first = runs[0]
    first["seconds"] = sorted(run["seconds"] for run in runs)[len(runs) // 2]
    first["all_seconds"] = [round(run["seconds"], 4) for run in runs]
    return first


# --- figures ----------------------------------------------------------------------------------


def _not_built(report: Report, name: str, unit: str = "s") -> None:
    report.add(name, math.nan, unit, note=NOT_BUILT)


def max_difference(tiers_path: str, raw_path: str) -> float:
    """Largest relative difference between two frames (inf when their shapes or NaNs differ)."""
    import numpy as np
    import pandas as pd

    a, b = pd.read_pickle(tiers_path), pd.read_pickle(raw_path)
    if a.shape != b.shape or set(a.columns) != set(b.columns):
        return math.inf
    a, b = a.sort_index()[list(b.columns)], b.sort_index()
    if not a.index.equals(b.index):
        return math.inf
    x = a.to_numpy(dtype=float)
    y = b.to_numpy(dtype=float)
    if not np.array_equal(np.isnan(x), np.isnan(y)):
        return math.inf
    seen = ~np.isnan(y)
    if not seen.any():
        return 0.0
    return float(np.max(np.abs(x[seen] - y[seen]) / np.maximum(1.0, np.abs(y[seen]))))


def host_figures(url: str, repeat: int) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(catalog run or None, full-scan run), interleaved."""
    catalog_runs: list[dict[str, Any]] = []
    scan_runs: list[dict[str, Any]] = []
    for _ in range(repeat):
        catalog_runs.append(_child("hosts-catalog", url))
        scan_runs.append(_child("hosts-scan", url))

    def median(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
        if any(run.get("not_built") for run in runs):
            return None
        out = dict(runs[0])
        out["seconds"] = sorted(run["seconds"] for run in runs)[len(runs) // 2]
        return out

    scan = median(scan_runs)
    assert scan is not None
    return median(catalog_runs), scan


def view_figures(url: str, repeat: int, scratch: str) -> dict[str, dict[str, Any]]:
    """Per view: {"tiers": run or None, "raw": run, "diff": float or None}, interleaved."""
    figures: dict[str, dict[str, Any]] = {}
    for span, interval in VIEWS:
        key = f"{span} at {interval}"
        runs: dict[str, list[dict[str, Any]]] = {"tiers": [], "raw": []}
        for n in range(repeat):
            order = ("tiers", "raw") if n % 2 == 0 else ("raw", "tiers")
            for mode in order:
                save = os.path.join(scratch, f"{span}-{mode}.pkl") if n == 0 else "-"
                runs[mode].append(_child("view", url, span, interval, mode, save))
        entry: dict[str, Any] = {}
        for mode, done in runs.items():
            if any(run.get("not_built") for run in done):
                entry[mode] = None
                continue
            run = dict(done[0])
            run["seconds"] = sorted(r["seconds"] for r in done)[len(done) // 2]
            run["all_seconds"] = [round(r["seconds"], 3) for r in done]
            entry[mode] = run
        entry["diff"] = (
            max_difference(
                os.path.join(scratch, f"{span}-tiers.pkl"), os.path.join(scratch, f"{span}-raw.pkl")
            )
            if entry["tiers"] is not None
            else None
        )
        figures[key] = entry
        print(f"  view {key}: {json.dumps(entry, default=str)}", file=sys.stderr)
    return figures


def storage(engine: Engine) -> dict[str, Any]:
    """Bytes of metrics_snapshots, metrics_tiers and metrics_tier_blocks (with indexes),
    tiers split per width."""
    out: dict[str, Any] = {"snapshots": 0, "tiers": None, "blocks": 0, "widths": {}}
    share = "sum(pg_column_size(t.*))"
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":

            def size(table: str) -> int:
                return int(
                    connection.execute(
                        text("SELECT pg_total_relation_size(CAST(:t AS regclass))"), {"t": table}
                    ).scalar_one()
                )

            out["snapshots"] = size("metrics_snapshots")
            if _has_table(engine, "metrics_tiers"):
                out["tiers"] = size("metrics_tiers")
            if _has_table(engine, "metrics_tier_blocks"):
                out["blocks"] = size("metrics_tier_blocks")
        else:
            pages: dict[str, int] = dict(
                connection.execute(
                    text(
                        "SELECT m.tbl_name, sum(d.pgsize) FROM dbstat d "
                        "JOIN sqlite_master m ON m.name = d.name GROUP BY m.tbl_name"
                    )
                ).all()
            )
            out["snapshots"] = int(pages.get("metrics_snapshots", 0))
            if "metrics_tiers" in pages:
                out["tiers"] = int(pages["metrics_tiers"])
            if "metrics_tier_blocks" in pages:
                out["blocks"] = int(pages["metrics_tier_blocks"])
                share = "sum(length(metric_data) + 40)"
        if out["tiers"] is not None:
            parts = connection.execute(
                text(
                    f"SELECT width_seconds, count(*), {share}, sum(samples) FROM metrics_tiers t "
                    "GROUP BY width_seconds ORDER BY width_seconds"
                )
            ).all()
            weight = sum(int(p[2] or 0) for p in parts) or 1
            for width, count, part, samples in parts:
                out["widths"][int(width)] = {
                    "rows": int(count),
                    "bytes": out["tiers"] * int(part or 0) / weight,
                    "samples": int(samples or 0),
                }
            out["snapshot_rows"] = int(
                connection.execute(text("SELECT count(*) FROM metrics_snapshots")).scalar_one()
            )
    return out


def _storage_scale(sizes: dict[str, Any]) -> tuple[float, str]:
    """(factor to all rows, note): tiers partial (refresh unfinished) are extrapolated."""
    if not sizes["widths"]:
        return 1.0, "empty: refresh not run"
    covered = min(part["samples"] for part in sizes["widths"].values())
    if covered >= sizes["snapshot_rows"] or covered <= 0:
        return 1.0, ""
    factor = sizes["snapshot_rows"] / covered
    return factor, (
        f"extrapolated: the tiers cover {covered:,} of {sizes['snapshot_rows']:,} rows, "
        f"{_mb(sizes['tiers']):,.0f} MB"
    )


def ingest_figures(url: str, rows: int) -> tuple[float, float, int]:
    """bench_ingest's race: write_snapshots (marks the tier log) vs bare binary COPY."""
    from benchmarks import bench_ingest
    from metrics_toolkit.store.ingest import write_snapshots

    base = make_url(url).set(database="mt_bench_tiers_ingest").render_as_string(False)
    ours_url, bare_url = (bench_ingest.with_suffix(base, s) for s in ("ours", "bare"))
    ours, bare = bench_ingest.recreate(ours_url), bench_ingest.recreate(bare_url)
    raw = bare.raw_connection()
    try:
        connection: Any = raw.driver_connection
        ours_s, bare_s, written = bench_ingest.race(
            rows,
            lambda chunk: write_snapshots(ours, chunk),
            lambda chunk: bench_ingest.bare_copy(connection, chunk),
        )
        with ours.connect() as c:
            entries = int(c.execute(text("SELECT count(*) FROM metrics_tier_dirty")).scalar_one())
    finally:
        raw.close()
        ours.dispose()
        bare.dispose()
        bench_ingest.drop(ours_url)
        bench_ingest.drop(bare_url)
    return written / ours_s, written / bare_s, entries


def refresh_figures(url: str, budget: float | None) -> dict[str, Any]:
    """``archive run`` at END, then the tier backfill (``archive.tiers.refresh``), timed.

    With ``budget`` seconds, the refresh stops after the day that passes it (what is done
    stays committed; a later run goes on) and the rate is taken over the days done.
    """
    from metrics_toolkit.archive.runner import run_archive
    from metrics_toolkit.archive.tiers import refresh
    from metrics_toolkit.store.db import make_engine

    engine = make_engine(url)
    out: dict[str, Any] = {}
    started = time.perf_counter()
    run_archive(engine, now=END, tiers=False)  # the policy steps; the refresh is timed below
    out["archive_run_seconds"] = time.perf_counter() - started
    with engine.connect() as connection:
        out["snapshots"] = int(
            connection.execute(text("SELECT count(*) FROM metrics_snapshots")).scalar_one()
        )
        pending = connection.execute(
            text("SELECT count(*), count(DISTINCT day) FROM metrics_tier_dirty")
        ).one()
    out["log_entries"], out["log_days"] = int(pending[0]), int(pending[1])

    class _OverBudget(Exception):
        pass

    days_done = 0
    began = time.perf_counter()

    def progress(done: int, total: int) -> None:
        nonlocal days_done
        days_done = done
        elapsed = time.perf_counter() - began
        print(f"  refresh: {done}/{total} days, {elapsed:.0f} s", file=sys.stderr)
        if budget is not None and elapsed > budget and done < total:
            raise _OverBudget

    try:
        refresh(engine, progress=progress)
        out["complete"] = True
    except _OverBudget:
        out["complete"] = False
    out["refresh_seconds"] = time.perf_counter() - began
    out["days_done"] = days_done
    with engine.connect() as connection:
        out["tier_rows"] = int(
            connection.execute(text("SELECT count(*) FROM metrics_tiers")).scalar_one()
        )
    days = max(1, out["log_days"])
    # the rows those days hold: the dataset spreads its rows evenly over its days
    out["rows_done"] = out["snapshots"] * min(days_done, days) / days
    engine.dispose()
    return out


def _mb(n: float) -> float:
    return n / 1024 / 1024


def _views_report(
    report: Report, views: dict[str, dict[str, Any]], *, limit: float, label: str = ""
) -> None:
    for key, entry in views.items():
        raw, tiers = entry["raw"], entry["tiers"]
        name = f"{label}view {key}, tiers=True"
        if tiers is None:
            report.add(
                name,
                math.nan,
                "s",
                baseline=("tiers=False (raw rows)", raw["seconds"]),
                max_value=limit,
                note=NOT_BUILT,
            )
            continue
        report.add(
            name,
            tiers["seconds"],
            "s",
            baseline=("tiers=False (raw rows)", raw["seconds"]),
            max_value=limit,
            note=f"tiers {tiers.get('attrs_tiers')}, raw rows {tiers.get('raw_rows')}",
        )
        report.add(f"{label}  max relative difference", entry["diff"], "", max_value=1e-9)


def _hosts_report(
    report: Report, catalog: dict[str, Any] | None, scan: dict[str, Any], label: str = ""
) -> None:
    baseline = ("SELECT DISTINCT host (full scan)", scan["seconds"])
    if catalog is None:
        report.add(f"{label}list_hosts", math.nan, "s", baseline=baseline, note=NOT_BUILT)
    else:
        report.add(
            f"{label}list_hosts (catalog)",
            catalog["seconds"],
            "s",
            baseline=baseline,
            max_value=0.05,
            note=f"{catalog['hosts']} hosts; scan found {scan['hosts']}",
        )


def run(args: argparse.Namespace) -> Report:
    import tempfile

    from metrics_toolkit.store.db import make_engine
    from metrics_toolkit.store.migrate import upgrade

    engine = make_engine(args.url)
    sqlite = engine.dialect.name == "sqlite"
    limit = 1.0 if sqlite else 0.5
    report = Report(
        f"Rollup tiers and series catalog, {make_url(args.url).database}",
        note=(
            f"{', '.join(METRICS)}; by_host, {'/'.join(STATS)}; each query in a fresh "
            f"process, median of {args.repeat} interleaved runs; {os.cpu_count()} CPUs shared, "
            "load average at the start {:.2f}".format(os.getloadavg()[0])
        ),
    )
    started = time.perf_counter()
    upgrade(engine)  # a newer migration (the catalog's, the tiers' backfill) runs here
    report.add("db upgrade on the dataset", time.perf_counter() - started, "s", note="once")
    engine.dispose()

    if not args.no_refresh:
        made = refresh_figures(args.url, args.refresh_budget or None)
        print(f"  refresh: {json.dumps(made)}", file=sys.stderr)
        report.add(
            "archive run at the dataset's end", made["archive_run_seconds"], "s", note="60 d raw"
        )
        rate = made["rows_done"] / made["refresh_seconds"] if made["refresh_seconds"] else 0.0
        whole = made["snapshots"] / rate if rate else math.inf
        if made["log_entries"] == 0:
            report.add(
                "tiers refresh (backfill after loading)",
                math.nan,
                "rows/s",
                note="tier log empty: tiers already current",
            )
        else:
            report.add(
                "tiers refresh (backfill after loading)",
                rate,
                "rows/s",
                note=(
                    f"{made['days_done']}/{made['log_days']} days in "
                    f"{made['refresh_seconds']:.0f} s"
                    f"{'' if made['complete'] else ' (stopped at the budget)'}; "
                    f"all {made['snapshots']:,} rows: ~{whole / 60:.0f} min"
                ),
            )

    catalog, scan = host_figures(args.url, args.repeat)
    _hosts_report(report, catalog, scan)
    with tempfile.TemporaryDirectory(prefix="bench-tiers-") as scratch:
        views = view_figures(args.url, args.repeat, scratch)
    _views_report(report, views, limit=limit)

    engine = make_engine(args.url)
    sizes = storage(engine)
    engine.dispose()
    if sizes["tiers"] is None:
        _not_built(report, "metrics_tiers size", "MB")
    else:
        factor, note = _storage_scale(sizes)
        report.add(
            "tier storage: metrics_tiers + metrics_tier_blocks (+ indexes)",
            _mb((sizes["tiers"] + sizes["blocks"]) * factor),
            "MB",
            baseline=("metrics_snapshots (+ indexes)", _mb(sizes["snapshots"])),
            max_ratio=0.25,
            note=note,
        )
        report.add(
            "  metrics_tier_blocks",
            _mb(sizes["blocks"] * factor),
            "MB",
            baseline=("metrics_snapshots", _mb(sizes["snapshots"])),
        )
        for width, part in sizes["widths"].items():
            report.add(
                f"  width {width} s",
                _mb(part["bytes"] * factor),
                "MB",
                baseline=("metrics_snapshots", _mb(sizes["snapshots"])),
                note=f"{round(part['rows'] * factor):,} rows; bytes split by row size",
            )

    if args.ingest_rows and not sqlite:
        ours, copy, entries = ingest_figures(args.url, args.ingest_rows)
        report.add(
            f"ingest, write_snapshots with the tier log, {args.ingest_rows:,} rows",
            ours,
            "rows/s",
            baseline=("bare binary COPY", copy),
            min_ratio=0.8,
            note=f"{entries} tier log entries",
        )

    if args.compare:
        catalog40, scan40 = host_figures(args.compare, args.repeat)
        here = str(make_url(args.url).database)
        label = f"{make_url(args.compare).database}: "
        if catalog is None or catalog40 is None:
            report.add(
                f"{label}list_hosts", math.nan, "s", baseline=(here, math.nan), note=NOT_BUILT
            )
        else:
            report.add(
                f"{label}list_hosts (catalog)",
                catalog40["seconds"],
                "s",
                baseline=(here, catalog["seconds"]),
                max_value=0.05,
            )
        report.add(
            f"{label}SELECT DISTINCT host (full scan)",
            scan40["seconds"],
            "s",
            baseline=(here, scan["seconds"]),
        )
        with tempfile.TemporaryDirectory(prefix="bench-tiers-") as scratch:
            views40 = view_figures(args.compare, args.repeat, scratch)
        for key, entry in views40.items():
            for mode, shown in (("tiers", "tiers=True"), ("raw", "tiers=False")):
                mine, there = views[key][mode], entry[mode]
                name = f"{label}view {key}, {shown}"
                if mine is None or there is None:
                    report.add(name, math.nan, "s", note=NOT_BUILT)
                    continue
                report.add(
                    name,
                    there["seconds"],
                    "s",
                    baseline=(here, mine["seconds"]),
                    max_ratio=2.0 if mode == "tiers" else None,
                )
            if entry["diff"] is not None:
                report.add(f"{label}  max relative difference", entry["diff"], "", max_value=1e-9)
    return report


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child_main(argv[1], argv[2], *argv[3:])
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--url",
        default=os.environ.get("METRICS_TOOLKIT_BENCH_TIERS_URL", DEFAULT_URL),
        help="the dataset's database URL",
    )
    parser.add_argument("--make-dataset", action="store_true", help="(re)make the dataset")
    parser.add_argument(
        "--resume", action="store_true", help="--make-dataset: go on with an interrupted one"
    )
    parser.add_argument("--hosts", type=int, default=10, help="hosts of --make-dataset")
    parser.add_argument(
        "--replicate",
        metavar="URL10",
        help="--make-dataset: --hosts as copies of URL10's refreshed set (PostgreSQL)",
    )
    parser.add_argument("--days", type=int, default=DAYS, help="days of --make-dataset")
    parser.add_argument(
        "--compare",
        default=os.environ.get("METRICS_TOOLKIT_BENCH_TIERS_COMPARE"),
        help="the 40-host dataset's URL: its figures as ratios",
    )
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per query")
    parser.add_argument("--no-refresh", action="store_true", help="skip archive run + refresh")
    parser.add_argument(
        "--refresh-budget", type=float, default=300.0, help="stop the refresh after N s (0: none)"
    )
    parser.add_argument(
        "--ingest-rows", type=int, default=200_000, help="rows of the ingest race (0: skip)"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.make_dataset and args.replicate:
        copies, rest = divmod(args.hosts, 10)
        if rest or copies < 1:
            parser.error("--replicate makes a multiple of the 10-host set (--hosts 40)")
        replicate_dataset(args.replicate, args.url, copies, resume=args.resume)
        return 0
    if args.make_dataset:
        make_dataset(args.url, args.hosts, args.days, resume=args.resume)
        return 0
    if _snapshot_count(args.url) <= 0:
        print(f"No dataset at {args.url}: making it ({args.hosts} hosts x {args.days} d)")
        make_dataset(args.url, args.hosts, args.days)
    report = run(args)
    report.print(Console(width=max(200, shutil.get_terminal_size().columns)))
    if args.json:
        report.write_json(args.json)
    return report.exit_code(strict=args.strict)


if __name__ == "__main__":
    raise SystemExit(main())
