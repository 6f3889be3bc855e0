"""Benchmark data sets: N generated snapshots in a PostgreSQL or SQLite database, made once.

Documents are the generator's, trimmed to about 25 numeric leaves (cpu without per-cpu
entries, memory, network totals) as the issues' figures assume. A database made for N rows
is reused by later runs (``--fresh`` rebuilds it).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy import exc as sa_exc

from benchmarks.metric_sets import TEN_METRICS
from metrics_toolkit.collect.generator import generate_history
from metrics_toolkit.store.db import make_engine, resolve_url
from metrics_toolkit.store.ingest import write_snapshots
from metrics_toolkit.store.migrate import upgrade
from metrics_toolkit.store.models import MetricsSnapshot

END = datetime(2026, 6, 1, tzinfo=UTC)
HOSTS = 2
STEP_SECONDS = 10
__all__ = ["TEN_METRICS", "compact", "postgres", "rows", "sqlite"]
PG_ADMIN = os.environ.get("METRICS_TOOLKIT_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


def compact(doc: dict[str, Any]) -> dict[str, Any]:
    """The generator's document cut down to about 25 numeric leaves."""
    cpu = {k: v for k, v in doc["cpu"].items() if k != "per_cpu"}
    network = {k: v for k, v in doc["network"].items() if k != "interfaces"}
    return {"host": doc["host"], "cpu": cpu, "memory": doc["memory"], "network": network}


def rows(n: int) -> Iterator[list[tuple[datetime, str, dict[str, Any]]]]:
    # + each host's collection gap (at most 30 minutes, see generator._gap_ticks): exactly n rows
    span = timedelta(seconds=STEP_SECONDS * (n // HOSTS + 1) + 1800)
    produced = 0
    for chunk in generate_history(
        start=END - span, end=END, interval=f"{STEP_SECONDS}s", hosts=HOSTS, seed=7, chunk_size=2000
    ):
        batch = [(ts, mt, compact(doc)) for ts, mt, doc in chunk][: n - produced]
        produced += len(batch)
        yield batch
        if produced >= n:
            return


RowSource = Callable[[int], Iterable[Any]]


def postgres(
    n: int, *, fresh: bool = False, name: str | None = None, source: RowSource | None = None
) -> str:
    """A PostgreSQL database holding exactly ``n`` benchmark rows; returns its URL.

    ``source(n)`` yields the rows (default: :func:`rows`, compact documents); ``name``
    defaults to ``mt_bench_<n>``.
    """
    name = name or f"mt_bench_{n}"
    url = f"{PG_ADMIN}/{name}"
    admin = create_engine(resolve_url(f"{PG_ADMIN}/postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
        ).scalar()
        if exists and not fresh and _count(url) == n:
            admin.dispose()
            return url
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    _fill(make_engine(url), n, source or rows)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(
                text("VACUUM ANALYZE metrics_snapshots")
            )
    finally:
        engine.dispose()  # a pooled connection would keep the database from being a template
    return url


def sqlite(n: int, directory: str = "benchmarks/results", *, fresh: bool = False) -> str:
    path = os.path.abspath(os.path.join(directory, f"bench_{n}.db"))
    url = f"sqlite:///{path}"
    if os.path.exists(path) and not fresh and _count(url) == n:
        return url
    os.makedirs(directory, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    _fill(make_engine(url), n, rows)
    return url


def _count(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.scalar(select(func.count()).select_from(MetricsSnapshot)) or 0)
    except sa_exc.SQLAlchemyError:  # no table yet, or unreadable: rebuild it
        return -1
    finally:
        engine.dispose()


def _fill(engine: Engine, n: int, source: RowSource) -> None:
    upgrade(engine)
    started = time.perf_counter()
    result = write_snapshots(engine, source(n), batch_size=20_000)
    print(f"Ingested {result.inserted:,} rows in {time.perf_counter() - started:.0f} s")
    engine.dispose()
