"""Cost of one ``Collector.collect()`` against the bare psutil calls it makes (target <= 1.5x).

The baseline reads the same things from psutil and does nothing with them: the same CPU,
memory, disk, network and sensor calls, and the same per-process reads inside ``oneshot()``.
Both run in one process, interleaved call by call, after a warm-up (which also primes the
rates), and the medians are compared, collector by collector and in total. The CPU share at
a 10 s interval is an estimate from the median CPU time of one collection (the daemon adds
its database writes to this).

Run: ``python -m benchmarks.bench_collect [--repeat 100] [--strict] [--json PATH]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import psutil

from benchmarks.harness import Report, measure_interleaved
from metrics_toolkit.collect.collectors import AVAILABLE, Collector, resolve_names

INTERVAL_S = 10.0


def _cpu() -> None:
    psutil.cpu_times()
    psutil.cpu_times(percpu=True)
    psutil.cpu_stats()
    psutil.cpu_count()
    psutil.getloadavg()


def _memory() -> None:
    psutil.virtual_memory()
    psutil.swap_memory()


def _disk() -> None:
    for part in psutil.disk_partitions(all=False):
        psutil.disk_usage(part.mountpoint)


def _diskio() -> None:
    psutil.disk_io_counters(perdisk=True)


def _network() -> None:
    psutil.net_io_counters(pernic=True)


def _processes() -> None:
    for proc in psutil.process_iter():
        with proc.oneshot():
            try:
                proc.status()
                proc.name()
                proc.num_threads()
                proc.cpu_times()
                proc.memory_info()
                proc.create_time()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass


def _sensors() -> None:
    psutil.sensors_temperatures()
    psutil.sensors_fans()
    psutil.sensors_battery()


def _system() -> None:
    psutil.boot_time()


BARE: dict[str, Callable[[], None]] = {
    "cpu": _cpu,
    "memory": _memory,
    "disk": _disk,
    "diskio": _diskio,
    "network": _network,
    "processes": _processes,
    "sensors": _sensors,
    "system": _system,
}


def _all_bare(names: tuple[str, ...]) -> Callable[[], None]:
    calls = [BARE[name] for name in names]

    def run() -> None:
        for call in calls:
            call()

    return run


def _cpu_seconds(fn: Callable[[], object], repeat: int) -> float:
    """Median CPU time (this process) of one call."""
    samples = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        samples.append(time.process_time() - start)
    samples.sort()
    return samples[len(samples) // 2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=100, help="timed calls per contender")
    parser.add_argument("--warmup", type=int, default=10, help="untimed calls first")
    parser.add_argument("--collectors", default=",".join(AVAILABLE), help="comma-separated")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    names = resolve_names(args.collectors)

    report = Report(
        "Collection cost: Collector.collect() vs the bare psutil calls",
        note=(
            f"median of {args.repeat} interleaved calls after {args.warmup} warm-up calls; "
            f"{len(psutil.pids())} processes, {psutil.cpu_count()} CPUs"
        ),
    )
    for name in names:
        ours = Collector([name])
        timings = measure_interleaved(
            {"ours": ours.collect, "bare": BARE[name]}, repeat=args.repeat, warmup=args.warmup
        )
        report.add(
            f"  {name}.collect()",
            timings["ours"].median * 1e3,
            "ms",
            baseline=("bare psutil", timings["bare"].median * 1e3),
        )

    collector = Collector(names)
    bare = _all_bare(names)
    timings = measure_interleaved(
        {"ours": collector.collect, "bare": bare}, repeat=args.repeat, warmup=args.warmup
    )
    report.add(
        "Collector.collect(), all",
        timings["ours"].median * 1e3,
        "ms",
        baseline=("bare psutil calls", timings["bare"].median * 1e3),
        max_ratio=1.5,
        note=f"p90 {timings['ours'].p90 * 1e3:.2f} ms vs {timings['bare'].p90 * 1e3:.2f} ms",
    )
    ours_cpu = _cpu_seconds(collector.collect, args.repeat)
    bare_cpu = _cpu_seconds(bare, args.repeat)
    report.add(
        f"CPU share of one core at a {INTERVAL_S:g} s interval",
        ours_cpu / INTERVAL_S * 100,
        "%",
        baseline=("bare psutil calls", bare_cpu / INTERVAL_S * 100),
        max_value=0.5,
        note="estimate, collection only",
    )
    report.print()
    if args.json:
        report.write_json(args.json)
    return report.exit_code(strict=args.strict)


if __name__ == "__main__":
    raise SystemExit(main())
