"""CPU share of the collection daemon at a 10 s interval (target < 0.5% of one core).

The daemon (``metrics-toolkit collect``) runs as a real child process at ``--interval 1s``
for ``--seconds`` against a SQLite file (and PostgreSQL with ``--postgres``). After a
warm-up, its CPU time (user + system, from psutil) and the snapshots it stored are sampled
twice; CPU per tick divided by 10 s is the share at a 10 s interval (the work per tick is
the same: one collection, one spool append and ack, one database write; between ticks it
sleeps). The baseline, measured in this process in the same run, is one bare
``Collector.collect()`` of the same collectors: the ratio is the price of durability (spool
fsyncs) and of the database write.

Run: ``python -m benchmarks.bench_daemon [--seconds 60] [--postgres URL] [--strict]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from rich.console import Console
from sqlalchemy import create_engine, func, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from benchmarks.harness import Report
from metrics_toolkit.collect.collectors import AVAILABLE, Collector
from metrics_toolkit.store.db import make_engine
from metrics_toolkit.store.models import MetricsSnapshot

INTERVAL_S = 10.0
WARMUP_TICKS = 5


def stored(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(select(func.count(MetricsSnapshot.id))).scalar() or 0)
    except sa_exc.SQLAlchemyError:  # no schema yet
        return 0
    finally:
        engine.dispose()


def wait_for_ticks(url: str, count: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while (n := stored(url)) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"the daemon stored only {n} snapshots in {timeout:.0f} s")
        time.sleep(0.2)
    return n


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def daemon_cpu_per_tick(url: str, seconds: float, directory: Path) -> tuple[float, int, float]:
    """(CPU seconds per tick, ticks measured, RSS MB at the end) of a daemon at 1 s."""
    command = [sys.executable, "-m", "metrics_toolkit", "--database-url", url, "collect"]
    command += ["--interval", "1s", "--spool", str(directory / "spool.db"), "--host", "bench"]
    child = subprocess.Popen(command, cwd=directory, stdout=subprocess.DEVNULL)
    process = psutil.Process(child.pid)
    try:
        first = wait_for_ticks(url, WARMUP_TICKS, timeout=60)
        cpu_first = cpu_seconds(process)
        time.sleep(seconds)
        # Sample right after a tick has been stored, as the first sample was.
        last = wait_for_ticks(url, stored(url) + 1, timeout=30)
        cpu_last = cpu_seconds(process)
        rss = process.memory_info().rss / 1024 / 1024
    finally:
        child.terminate()
        child.wait(timeout=30)
    ticks = last - first
    return (cpu_last - cpu_first) / ticks, ticks, rss


def collect_cpu(repeat: int = 30) -> float:
    """Median CPU seconds of one bare Collector.collect() (primed), in this process."""
    collector = Collector(AVAILABLE, host="bench")
    collector.collect()
    samples = []
    for _ in range(repeat):
        time.sleep(0.2)  # let some time pass, as between ticks
        start = time.process_time()
        collector.collect()
        samples.append(time.process_time() - start)
    samples.sort()
    return samples[len(samples) // 2]


def recreate(url: str, *, create: bool = True) -> None:
    """Drop the PostgreSQL database of ``url`` and (unless ``create=False``) create it empty."""
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        if create:
            connection.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60, help="measured run time per database")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("METRICS_TOOLKIT_BENCH_POSTGRES_DAEMON"),
        help="also measure against this PostgreSQL database (dropped and re-created)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    baseline = collect_cpu()
    report = Report(
        "Collection daemon: CPU share at a 10 s interval",
        note=(
            f"daemon at --interval 1s for {args.seconds:g} s after {WARMUP_TICKS} warm-up ticks; "
            f"CPU per tick / {INTERVAL_S:g} s; {len(psutil.pids())} processes on the machine"
        ),
    )
    with tempfile.TemporaryDirectory(prefix="bench-daemon-") as name:
        directory = Path(name)
        targets = [("SQLite", f"sqlite:///{directory / 'metrics.db'}")]
        if args.postgres:
            recreate(args.postgres)
            targets.append(("PostgreSQL", args.postgres))
        for label, url in targets:
            run_dir = directory / label
            run_dir.mkdir()
            per_tick, ticks, rss = daemon_cpu_per_tick(url, args.seconds, run_dir)
            report.add(
                f"daemon into {label}, CPU share at 10 s",
                per_tick / INTERVAL_S * 100,
                "% of a core",
                baseline=("bare Collector.collect()", baseline / INTERVAL_S * 100),
                max_value=0.5,
                note=f"{per_tick * 1e3:.1f} ms CPU per tick over {ticks} ticks; RSS {rss:.0f} MB",
            )
        if args.postgres:
            recreate(args.postgres, create=False)
    report.print(Console(width=max(200, shutil.get_terminal_size().columns)))
    if args.json:
        report.write_json(args.json)
    return report.exit_code(strict=args.strict)


if __name__ == "__main__":
    raise SystemExit(main())
