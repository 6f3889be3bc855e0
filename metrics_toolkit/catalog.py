"""The metric catalog: what each numeric leaf of a snapshot document is.

A leaf's dotted path (``cpu.usage_percent``) is its name everywhere. Its *kind* fixes how it
is aggregated and shown:

- ``gauge``: a level (percent, bytes used, load average);
- ``rate``: per second, computed by the collector from counter deltas;
- ``counter``: a raw cumulative value (rare; rolls up to a reset-aware increase).

Paths may contain ``*`` segments for names that depend on the machine (a disk, an
interface, a mount point, a CPU index). Unknown numeric leaves count as gauges, with the unit
guessed from the leaf name's suffix (``_percent``, ``_bytes``, ``_bytes_per_s``, ``_per_s``...).
Strings are labels (such as ``host``), never metrics; lists (``processes.top_cpu``) are labels
too, so nothing inside a list is a metric.

The table below is the one declaration of every leaf the collectors and the history generator
produce: each collector module exposes its part as ``FIELDS`` (see :func:`specs_under`), and a
test checks that every numeric leaf of a real and of a generated document is declared here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from metrics_toolkit.documents import split_path

Kind = Literal["gauge", "rate", "counter"]
KINDS: tuple[Kind, ...] = ("gauge", "rate", "counter")


@dataclass(frozen=True)
class MetricSpec:
    """One catalog row: a path pattern, its kind, its unit and a one-line description."""

    pattern: str
    kind: Kind
    unit: str
    description: str = ""


# Units are short symbols understood by the formatters of reports and the explorer:
# "percent", "bytes", "bytes/s", "1/s" (events per second), "count", "seconds", "ms"
# (milliseconds), "celsius", "rpm", "load" (run-queue length), "timestamp" (seconds since
# the Unix epoch, UTC: show as a date, not a duration), "" (dimensionless, e.g. a 0/1 flag).
_SUFFIX_UNITS: tuple[tuple[str, Kind, str], ...] = (
    ("_bytes_per_s", "rate", "bytes/s"),
    ("_per_s", "rate", "1/s"),
    ("_percent", "gauge", "percent"),
    ("_bytes", "gauge", "bytes"),
    ("_seconds", "gauge", "seconds"),
    ("_celsius", "gauge", "celsius"),
    ("_rpm", "gauge", "rpm"),
    ("_count", "gauge", "count"),
    ("_total", "counter", "count"),
)

Leaf = tuple[str, Kind, str, str]  # (leaf name, kind, unit, description)


def _expand(prefixes: Iterable[str], leaves: Iterable[Leaf]) -> tuple[MetricSpec, ...]:
    """The same leaves under several prefixes (a total and its per-device pattern)."""
    leaves = tuple(leaves)
    return tuple(
        MetricSpec(f"{prefix}.{name}", kind, unit, description)
        for prefix in prefixes
        for name, kind, unit, description in leaves
    )


_DISK_USAGE: tuple[Leaf, ...] = (
    ("total_bytes", "gauge", "bytes", "Filesystem size"),
    ("used_bytes", "gauge", "bytes", "Filesystem space in use"),
    ("free_bytes", "gauge", "bytes", "Filesystem space free for unprivileged users"),
    ("usage_percent", "gauge", "percent", "Disk space used, as df shows it: used / (used + free)"),
)

_DISK_IO: tuple[Leaf, ...] = (
    ("read_bytes_per_s", "rate", "bytes/s", "Bytes read from the disk"),
    ("write_bytes_per_s", "rate", "bytes/s", "Bytes written to the disk"),
    ("read_ops_per_s", "rate", "1/s", "Completed read requests"),
    ("write_ops_per_s", "rate", "1/s", "Completed write requests"),
    ("busy_percent", "gauge", "percent", "Share of wall time the disk had I/O in flight"),
)

_NET_IO: tuple[Leaf, ...] = (
    ("bytes_sent_per_s", "rate", "bytes/s", "Bytes sent"),
    ("bytes_recv_per_s", "rate", "bytes/s", "Bytes received"),
    ("packets_sent_per_s", "rate", "1/s", "Packets sent"),
    ("packets_recv_per_s", "rate", "1/s", "Packets received"),
    ("errors_in_per_s", "rate", "1/s", "Receive errors"),
    ("errors_out_per_s", "rate", "1/s", "Transmit errors"),
    ("drops_in_per_s", "rate", "1/s", "Incoming packets dropped"),
    ("drops_out_per_s", "rate", "1/s", "Outgoing packets dropped"),
)

# Process states psutil reports, folded into a fixed set of leaves (the rest go to "other").
PROCESS_STATES: tuple[str, ...] = (
    "running",
    "sleeping",
    "disk_sleep",
    "stopped",
    "zombie",
    "idle",
    "other",
)

# The declarative table, one block per collector (and the daemon's own leaves).
CATALOG: tuple[MetricSpec, ...] = (
    # system
    MetricSpec("system.uptime_seconds", "gauge", "seconds", "Time since boot"),
    MetricSpec("system.boot_time_seconds", "gauge", "timestamp", "Boot time (Unix epoch, UTC)"),
    # cpu: percents are shares of all CPU time between two ticks
    MetricSpec("cpu.usage_percent", "gauge", "percent", "CPU busy time, all cores"),
    MetricSpec("cpu.user_percent", "gauge", "percent", "Time in user mode, all cores"),
    MetricSpec("cpu.system_percent", "gauge", "percent", "Time in kernel mode, all cores"),
    MetricSpec("cpu.iowait_percent", "gauge", "percent", "Idle time waiting for I/O"),
    MetricSpec("cpu.steal_percent", "gauge", "percent", "Time stolen by the hypervisor"),
    MetricSpec("cpu.idle_percent", "gauge", "percent", "Idle time, all cores"),
    MetricSpec("cpu.logical_count", "gauge", "count", "Logical CPUs"),
    MetricSpec("cpu.load1", "gauge", "load", "Load average over 1 minute"),
    MetricSpec("cpu.load5", "gauge", "load", "Load average over 5 minutes"),
    MetricSpec("cpu.load15", "gauge", "load", "Load average over 15 minutes"),
    MetricSpec("cpu.ctx_switches_per_s", "rate", "1/s", "Context switches"),
    MetricSpec("cpu.interrupts_per_s", "rate", "1/s", "Hardware interrupts"),
    MetricSpec("cpu.per_cpu.*.usage_percent", "gauge", "percent", "Busy time of one CPU"),
    # memory (the memory collector also produces swap)
    MetricSpec("memory.total_bytes", "gauge", "bytes", "Physical memory"),
    MetricSpec("memory.available_bytes", "gauge", "bytes", "Memory available without swapping"),
    MetricSpec("memory.used_bytes", "gauge", "bytes", "Memory in use"),
    MetricSpec(
        "memory.usage_percent", "gauge", "percent", "(total - available) / total, as psutil"
    ),
    MetricSpec("memory.cached_bytes", "gauge", "bytes", "Page cache"),
    MetricSpec("memory.buffers_bytes", "gauge", "bytes", "Kernel buffers"),
    MetricSpec("swap.total_bytes", "gauge", "bytes", "Swap space"),
    MetricSpec("swap.used_bytes", "gauge", "bytes", "Swap in use"),
    MetricSpec("swap.usage_percent", "gauge", "percent", "Swap in use (0 without swap)"),
    MetricSpec("swap.swapped_in_bytes_per_s", "rate", "bytes/s", "Bytes swapped in"),
    MetricSpec("swap.swapped_out_bytes_per_s", "rate", "bytes/s", "Bytes swapped out"),
    # disk usage: totals over real mounts, and per mount point
    *_expand(("disk", "disk.mounts.*"), _DISK_USAGE),
    MetricSpec("disk.max_usage_percent", "gauge", "percent", "Usage of the fullest mount"),
    # disk I/O: totals and per whole disk
    *_expand(("diskio", "diskio.disks.*"), _DISK_IO),
    # network: totals (without loopback) and per interface
    *_expand(("network", "network.interfaces.*"), _NET_IO),
    # processes
    MetricSpec("processes.total_count", "gauge", "count", "Processes"),
    *(
        MetricSpec(f"processes.{state}_count", "gauge", "count", f"Processes in state {state}")
        for state in PROCESS_STATES
    ),
    MetricSpec("processes.threads_count", "gauge", "count", "Threads of all processes"),
    # sensors (only where the machine has them)
    MetricSpec("sensors.temperatures.*.*.current_celsius", "gauge", "celsius", "Temperature"),
    MetricSpec("sensors.temperatures.*.*.high_celsius", "gauge", "celsius", "High threshold"),
    MetricSpec(
        "sensors.temperatures.*.*.critical_celsius", "gauge", "celsius", "Critical threshold"
    ),
    MetricSpec("sensors.fans.*.*.speed_rpm", "gauge", "rpm", "Fan speed"),
    MetricSpec("sensors.battery.charge_percent", "gauge", "percent", "Battery charge"),
    MetricSpec("sensors.battery.remaining_seconds", "gauge", "seconds", "Battery time left"),
    MetricSpec("sensors.battery.plugged_in", "gauge", "", "1 on mains power, 0 on battery"),
    # --- collector.*: the collection daemon's own state (metrics_toolkit.collect.daemon) ---
    MetricSpec(
        "collector.spool_depth_count",
        "gauge",
        "count",
        "Snapshots waiting in the local spool when the tick was taken",
    ),
    MetricSpec(
        "collector.spool_dropped_count",
        "counter",
        "count",
        "Snapshots dropped because the spool was full (cumulative, kept across restarts)",
    ),
    MetricSpec(
        "collector.write_latency_ms",
        "gauge",
        "ms",
        "Mean time of one database write (a batch, one transaction) in the previous flush",
    ),
    # --- end of collector.* ---
)


def _split(path: str) -> tuple[str, ...]:
    # Paths escape dots inside keys ("a\\.b"): split them the way documents does.
    return split_path(path)


_SPLIT_CATALOG: tuple[tuple[tuple[str, ...], MetricSpec], ...] = tuple(
    (_split(spec.pattern), spec) for spec in CATALOG
)


def _matches(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    return len(pattern) == len(path) and all(
        p in ("*", s) for p, s in zip(pattern, path, strict=True)
    )


def _declared(path: str) -> MetricSpec | None:
    parts = _split(path)
    for pattern, spec in _SPLIT_CATALOG:
        if _matches(pattern, parts):
            return spec
    return None


@lru_cache(maxsize=4096)
def lookup(path: str) -> MetricSpec:
    """The catalog row for a metric path; unknown paths get a gauge with a guessed unit.

    The returned row's ``pattern`` is the catalog pattern (``disk.mounts.*.used_bytes``)
    for declared paths, and the path itself for guesses.
    """
    spec = _declared(path)
    if spec is not None:
        return spec
    leaf = _split(path)[-1]
    for suffix, kind, unit in _SUFFIX_UNITS:
        if leaf.endswith(suffix):
            return MetricSpec(path, kind, unit)
    return MetricSpec(path, "gauge", "")


@lru_cache(maxsize=4096)
def is_declared(path: str) -> bool:
    """True when a catalog row (not a guess) covers ``path``."""
    return _declared(path) is not None


def kind_of(path: str) -> Kind:
    """The kind (gauge, rate or counter) of a metric path; unknown paths are gauges."""
    return lookup(path).kind


def unit_of(path: str) -> str:
    """The unit symbol of a metric path (see the unit list above); ``""`` when unknown."""
    return lookup(path).unit


def specs_under(*sections: str) -> tuple[MetricSpec, ...]:
    """The catalog rows whose path starts with one of ``sections`` (``"memory"``, ``"swap"``).

    Collectors use it to expose their fields, so units and descriptions are declared once.
    """
    return tuple(spec for spec in CATALOG if _split(spec.pattern)[0] in sections)
