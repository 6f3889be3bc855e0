"""``archive run`` on N snapshots beside a hand-written set-based SQL rollup (issue 4).

The policy rolls up everything older than the newest day to ``1h`` with the archive
enabled (Parquet files written to a temporary directory). Baseline, measured in the same
run on a fresh copy of the same rows: one transaction of ``INSERT ... SELECT
date_bin('1 hour', ...), avg(leaf) ... GROUP BY`` (SQLite: integer division of epoch
seconds, ``json_extract``) followed by ``DELETE`` of the rows it replaced: no statistics
beyond the mean and the sample count (a ``_rollup`` marker, so the rows do not clash
with the raw rows' identity index), no archive, no verification.

Every measurement runs in its own child process on its own copy of the data set
(PostgreSQL: ``CREATE DATABASE ... TEMPLATE mt_bench_<n>``; SQLite: a file copy); the child
times the work itself (not the interpreter start) and prints its own peak RSS (VmHWM from
``/proc/self/status``; ``ru_maxrss`` of a child also counts pages inherited from a forked
parent). Peak memory is measured at ``--small-rows`` too: it must not grow with the table.

    python -m benchmarks.bench_archive --rows 1000000
    python -m benchmarks.bench_archive --reference   # + the general path, on --small-rows
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from benchmarks.harness import Report, run_child

REFERENCE_ENV = "METRICS_TOOLKIT_BENCH_REFERENCE_PATH"
SCRATCH_DB = "mt_bench_archive_scratch"


# --------------------------------------------------------------------------------------
# Jobs (run inside a child process)


def _vmhwm_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _leaves(url: str) -> list[str]:
    """The numeric leaf paths of the data set's documents (all rows share one shape)."""
    from sqlalchemy import select

    from metrics_toolkit.documents import flatten
    from metrics_toolkit.store.db import make_engine
    from metrics_toolkit.store.models import MetricsSnapshot

    engine = make_engine(url)
    with engine.connect() as connection:
        doc = connection.execute(select(MetricsSnapshot.metric_data).limit(1)).scalar_one()
    engine.dispose()
    return list(flatten(doc))


def _nested(leaves: list[str], value_of: Any, build: str) -> str:
    """A nested ``build(key, value, ...)`` SQL expression of the leaves' values."""
    tree: dict[str, Any] = {}
    for path in leaves:
        node = tree
        *parents, leaf = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = path

    def render(node: dict[str, Any]) -> str:
        items = [
            f"'{key}', {render(child) if isinstance(child, dict) else value_of(child)}"
            for key, child in node.items()
        ]
        return f"{build}({', '.join(items)})"

    return render(tree)


def _sql_rollup(url: str, cut: datetime) -> int:
    """The hand-written set-based rollup: INSERT ... SELECT ... GROUP BY, then DELETE."""
    from sqlalchemy import text

    from metrics_toolkit.store.db import make_engine

    leaves = _leaves(url)
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":

        def pg_leaf(path: str) -> str:
            return "avg((metric_data #>> '{" + path.replace(".", ",") + "}')::float8)"

        document = _nested(leaves, pg_leaf, "jsonb_build_object")
        document = document.replace(
            "jsonb_build_object(",
            "jsonb_build_object('host', host, '_rollup', "
            "jsonb_build_object('interval', '1h', 'samples', count(*)), ",
            1,
        )
        bucket = "date_bin('1 hour', timestamp, TIMESTAMPTZ '1970-01-01+00')"
        raw = "NOT (metric_data ? '_rollup')"
        host = "metric_data ->> 'host'"
        cut_value: Any = cut
    else:

        def lite_leaf(path: str) -> str:
            return f"avg(json_extract(metric_data, '$.{path}'))"

        document = _nested(leaves, lite_leaf, "json_object")
        document = document.replace(
            "json_object(",
            "json_object('host', host, '_rollup', "
            "json_object('interval', '1h', 'samples', count(*)), ",
            1,
        )
        seconds = "CAST(strftime('%s', timestamp) AS INTEGER)"
        bucket = f"datetime({seconds} / 3600 * 3600, 'unixepoch')"
        raw = "json_type(metric_data, '$._rollup') IS NULL"
        host = "json_extract(metric_data, '$.host')"
        cut_value = cut.replace(tzinfo=None).isoformat(sep=" ")
    with engine.begin() as connection:
        top = connection.execute(text("SELECT max(id) FROM metrics_snapshots")).scalar_one()
        inserted = connection.execute(
            text(
                "INSERT INTO metrics_snapshots (timestamp, metric_type, metric_data) "
                f"SELECT bucket, metric_type, {document} FROM ("
                f"  SELECT {bucket} AS bucket, metric_type, {host} AS host, metric_data "
                f"  FROM metrics_snapshots WHERE timestamp < :cut AND {raw}"
                ") AS raw GROUP BY bucket, metric_type, host"
            ),
            {"cut": cut_value},
        ).rowcount
        deleted = connection.execute(
            text(f"DELETE FROM metrics_snapshots WHERE timestamp < :cut AND id <= :top AND {raw}"),
            {"cut": cut_value, "top": top},
        ).rowcount
    engine.dispose()
    assert inserted > 0 and deleted > inserted, (inserted, deleted)
    return int(deleted)


def _archive_run(url: str, now: datetime, archive_path: str) -> int:
    from metrics_toolkit.archive import runner as archive
    from metrics_toolkit.store.db import make_engine

    # The general (document-by-document) path on request, for before/after figures.
    columnar = not os.environ.get(REFERENCE_ENV)
    engine = make_engine(url)
    result = archive.run_archive(engine, now=now, archive_path=archive_path, columnar=columnar)
    engine.dispose()
    assert result.status == "completed"
    return result.total("rows_replaced")


def job(name: str, url: str, now: datetime, archive_path: str) -> dict[str, Any]:
    """One measurement, inside a child process: seconds, rows replaced, own peak RSS."""
    from metrics_toolkit.archive.plan import plan

    cut = plan(
        now=now,
        retention_days=36500,
        downsample_after_days=1,
        downsample_interval="1h",
        archive_enabled=True,
    ).downsample_before
    start = time.perf_counter()
    rows = _sql_rollup(url, cut) if name == "sql" else _archive_run(url, now, archive_path)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows": rows, "vmhwm_mib": _vmhwm_mib()}


# --------------------------------------------------------------------------------------
# Set-up (parent process)


@contextmanager
def scratch_copy(url: str) -> Iterator[str]:
    """A throw-away copy of the data set at ``url`` (template database or file copy)."""
    from sqlalchemy import create_engine, text

    from benchmarks.datasets import PG_ADMIN
    from metrics_toolkit.store.db import resolve_url

    if url.startswith("sqlite"):
        source = url.removeprefix("sqlite:///")
        with tempfile.TemporaryDirectory(prefix="bench_archive_") as directory:
            target = os.path.join(directory, "copy.db")
            shutil.copyfile(source, target)
            yield f"sqlite:///{target}"
        return
    template = url.rsplit("/", 1)[1]
    admin = create_engine(resolve_url(f"{PG_ADMIN}/postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{SCRATCH_DB}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{SCRATCH_DB}" TEMPLATE "{template}"'))
    try:
        yield f"{PG_ADMIN}/{SCRATCH_DB}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{SCRATCH_DB}" WITH (FORCE)'))
        admin.dispose()


def prepare(url: str) -> datetime:
    """Set the benchmark policy; returns ``now`` (the newest snapshot's time)."""
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from metrics_toolkit.store.db import make_engine
    from metrics_toolkit.store.models import MetricsSnapshot
    from metrics_toolkit.store.policies import update_policy

    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        update_policy(
            session=session,
            retention_days=36500,
            downsample_after_days=1,
            downsample_interval="1h",
            archive_enabled=True,
        )
        now: datetime | None = session.scalar(select(func.max(MetricsSnapshot.timestamp)))
    engine.dispose()
    assert now is not None
    return now + timedelta(seconds=1)


def measure(name: str, dataset_url: str, *, reference: bool = False) -> dict[str, Any]:
    """Run one job on a fresh copy of the data set, in a child process."""
    with (
        scratch_copy(dataset_url) as url,
        tempfile.TemporaryDirectory(prefix="bench_archive_parquet_") as archive_path,
    ):
        now = prepare(url)
        command = [sys.executable, "-m", "benchmarks.bench_archive", "--job", name]
        command += ["--url", url, "--now", now.isoformat(), "--archive-path", archive_path]
        child = run_child(command, env={REFERENCE_ENV: "1"} if reference else {})
        if child.returncode != 0:
            raise SystemExit(f"{name} on {dataset_url} failed")
        result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
        if name == "archive":
            result["archive_mib"] = (
                sum(
                    os.path.getsize(os.path.join(d, f))
                    for d, _, files in os.walk(archive_path)
                    for f in files
                )
                / 2**20
            )
        return result


def compare(report: Report, label: str, dataset_url: str, n: int, *, target: bool) -> float:
    """Add the time and memory rows of one data set; returns the archive run's peak MiB."""
    ours = measure("archive", dataset_url)
    base = measure("sql", dataset_url)
    assert ours["rows"] == base["rows"], (ours["rows"], base["rows"])
    report.add(
        f"{label} {n:,} rows: archive run to 1h",
        ours["seconds"],
        "s",
        baseline=("hand-written INSERT ... SELECT GROUP BY + DELETE", base["seconds"]),
        max_ratio=2.0 if target else None,
        note=f"{ours['rows']:,} rows rolled up, {ours['archive_mib']:.0f} MiB of Parquet",
    )
    report.add(
        f"{label} {n:,} rows: archive run peak memory",
        ours["vmhwm_mib"],
        "MiB",
        baseline=("hand-written SQL (client)", base["vmhwm_mib"]),
        max_value=500 if target else None,
    )
    return float(ours["vmhwm_mib"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--small-rows", type=int, default=100_000, help="the memory comparison's smaller set"
    )
    parser.add_argument("--fresh", action="store_true", help="rebuild the data sets")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument(
        "--reference",
        action="store_true",
        help="also time the general (document) path, on --small-rows",
    )
    parser.add_argument("--job", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    parser.add_argument("--archive-path", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.job:
        result = job(args.job, args.url, datetime.fromisoformat(args.now), args.archive_path)
        print(json.dumps(result))
        return 0

    from benchmarks import datasets

    n, small = args.rows, min(args.small_rows, args.rows)
    report = Report(
        f"archive run to 1h, archive enabled, {n:,} snapshots",
        note="each figure in its own child process on a fresh copy of the data; "
        "peak memory = the child's own VmHWM",
    )
    peak = compare(report, "PostgreSQL", datasets.postgres(n, fresh=args.fresh), n, target=True)
    if small < n:
        small_peak = compare(
            report, "PostgreSQL", datasets.postgres(small, fresh=args.fresh), small, target=False
        )
        report.add(
            f"PostgreSQL peak memory, {n:,} vs {small:,} rows",
            peak,
            "MiB",
            baseline=(f"archive run on {small:,} rows", small_peak),
            max_ratio=1.25,
        )
    if args.reference:
        # The general (document-by-document) path is slow: timed on the smaller set.
        ours = measure("archive", datasets.postgres(small))
        ref = measure("archive", datasets.postgres(small), reference=True)
        report.add(
            f"PostgreSQL {small:,} rows: archive run, columnar path",
            ours["seconds"],
            "s",
            baseline=("the general path (rollup.rollup_rows per document)", ref["seconds"]),
            note=f"general path peak {ref['vmhwm_mib']:.0f} MiB",
        )
    if not args.skip_sqlite:
        compare(report, "SQLite", datasets.sqlite(n, fresh=args.fresh), n, target=False)
    report.print()
    report.write_json(f"benchmarks/results/archive-{n}.json")
    return report.exit_code(strict=False)


if __name__ == "__main__":
    raise SystemExit(main())
