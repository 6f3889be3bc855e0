"""Processes: counts by state, threads, and the top processes by CPU and by memory.

``top_cpu`` and ``top_memory`` are lists of labels (``name``, ``pid`` and figures), not
metrics: nothing inside a list is a numeric leaf. A process's ``cpu_percent`` is its CPU
time (user + system) per second of wall time, times 100, so a busy multi-threaded process
can exceed 100 (psutil's ``Process.cpu_percent`` convention). Like psutil's, it needs two
samples: a process seen for the first time is not ranked (psutil would say 0.0), so the
first tick has no ``top_cpu`` at all. Processes that vanish mid-read are skipped; those
whose details are denied to us still count by state.
"""

from __future__ import annotations

import heapq
import logging
import time
from typing import Any, ClassVar, NamedTuple

import psutil

from metrics_toolkit.catalog import PROCESS_STATES, MetricSpec, specs_under
from metrics_toolkit.collect.collectors.base import DIGITS, Section
from metrics_toolkit.collect.collectors.rates import RateTracker

log = logging.getLogger(__name__)

TOP = 5

# psutil STATUS_* values -> our state names; anything else counts as "other".
_STATES = {
    psutil.STATUS_RUNNING: "running",
    psutil.STATUS_SLEEPING: "sleeping",
    psutil.STATUS_DISK_SLEEP: "disk_sleep",
    psutil.STATUS_STOPPED: "stopped",
    psutil.STATUS_ZOMBIE: "zombie",
    psutil.STATUS_IDLE: "idle",
}


class _Seen(NamedTuple):
    name: str
    pid: int
    key: tuple[int, float]  # (pid, create time): a reused pid is another process
    rss: int


class ProcessesCollector:
    """The ``processes`` section."""

    FIELDS: ClassVar[tuple[MetricSpec, ...]] = specs_under("processes")

    def __init__(self) -> None:
        self._cpu = RateTracker[tuple[int, float]]()
        self._total_memory = psutil.virtual_memory().total

    def collect(self) -> dict[str, Section]:
        counts = dict.fromkeys(PROCESS_STATES, 0)
        threads = 0
        seen: list[_Seen] = []
        cpu_seconds: dict[tuple[int, float], float] = {}
        for proc in psutil.process_iter():
            with proc.oneshot():  # one read of /proc/<pid>/stat for all of the below
                try:
                    status = proc.status()
                except psutil.NoSuchProcess:  # gone since listed (ZombieProcess is a subclass)
                    continue
                except psutil.AccessDenied:
                    status = ""
                counts[_STATES.get(status, "other")] += 1
                details = _details(proc)
            if details is None:
                continue
            info, n_threads, seconds = details
            threads += n_threads
            seen.append(info)
            cpu_seconds[info.key] = seconds
        now = time.monotonic()
        cpu = self._cpu.update(cpu_seconds, now)

        section: Section = {"total_count": sum(counts.values())}
        section.update({f"{state}_count": n for state, n in counts.items()})
        section["threads_count"] = threads
        primed = [p for p in seen if p.key in cpu]
        if primed:
            section["top_cpu"] = [
                {"name": p.name, "pid": p.pid, "cpu_percent": round(cpu[p.key] * 100, DIGITS)}
                for p in heapq.nsmallest(TOP, primed, key=lambda p: (-cpu[p.key], p.pid))
            ]
        if seen and self._total_memory:
            section["top_memory"] = [
                {
                    "name": p.name,
                    "pid": p.pid,
                    "memory_percent": round(p.rss / self._total_memory * 100, DIGITS),
                    "rss_bytes": p.rss,
                }
                for p in heapq.nsmallest(TOP, seen, key=lambda p: (-p.rss, p.pid))
            ]
        return {"processes": section}


def _details(proc: Any) -> tuple[_Seen, int, float] | None:
    """Name, threads and CPU seconds of one process; ``None`` when they cannot be read."""
    try:
        name = proc.name()
        n_threads = proc.num_threads()
        times = proc.cpu_times()
        rss = proc.memory_info().rss
        key = (proc.pid, proc.create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied) as error:  # incl. ZombieProcess
        log.debug("no details for pid %s: %s", proc.pid, error)
        return None
    return _Seen(name, proc.pid, key, rss), n_threads, times.user + times.system
