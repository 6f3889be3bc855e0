"""A realistic, deterministic history of snapshot documents, for demos, tests and benchmarks.

>>> from datetime import UTC, datetime
>>> start = datetime(2026, 1, 5, tzinfo=UTC)
>>> end = datetime(2026, 1, 5, 1, tzinfo=UTC)
>>> rows = [row for chunk in generate_history(start=start, end=end) for row in chunk]
>>> len(rows) == count_history(start=start, end=end, interval="10s", hosts=2)
True
>>> rows[0][0], rows[0][1], rows[0][2]["host"]
(datetime.datetime(2026, 1, 5, 0, 0, tzinfo=datetime.timezone.utc), 'aggregated', 'web-1')

The documents have the same shape and catalog as real collection (a fixed subset of
devices: CPUs ``0`` and ``1``, mounts ``/`` and ``/data``, disk ``vda``, interface ``eth0``).
Hosts are named by role (``web-1``, ``db-1``, ``cache-1``, ``worker-1``, ``web-2``...).

What is in it: daily and weekly cycles (weekends quieter), slow wander and white noise,
short bursts, and per host one of each incident at a seed-chosen time: a CPU spike, a slow
memory leak that ends in a restart, a disk filling up (``/data``), a network burst, and one
collection gap (the host reboots during it: ``system.uptime_seconds`` restarts after it).
Relations hold exactly: ``used + available == total`` (memory), ``used + free == total``
(mounts), ``usage_percent == used / total * 100`` and ``cpu.usage_percent + iowait_percent +
idle_percent == 100`` (to 3 decimals), totals equal the one device's values, rates are never
negative. The top-process lists (``processes.top_cpu``, ``top_memory``: labels, not
metrics) come on ticks at whole minutes only, which keeps documents ~25 % smaller and the
generator ~30 % faster; real collection has them on every tick after the first.

Determinism: every value is a pure function of (seed, host, timestamp) and of the plan drawn
from (seed, range, interval, hosts), computed in blocks of ticks whose bounds depend on the
range and the host count only, so ``chunk_size`` changes how rows are grouped, never what
they are. Memory stays flat: one block of documents is alive at a time.
"""

from __future__ import annotations

import gc
import math
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from metrics_toolkit.errors import InvalidArgument
from metrics_toolkit.intervals import EPOCH, Interval, epoch_microseconds

SnapshotRow = tuple[datetime, str, dict[str, Any]]
METRIC_TYPE = "aggregated"
ROLES = ("web", "db", "cache", "worker")

Floats = npt.NDArray[np.float64]
_GIB = 1024**3
_DIGITS = 3
# Documents computed together (~40 MB of Python objects). Tied to the host count, not to
# chunk_size, so that the rows do not depend on how the caller chunks them.
_BLOCK_DOCS = 4096


@dataclass(frozen=True)
class _Role:
    """What a kind of host looks like on average."""

    cpu_base: float  # percent busy at the quietest hour
    cpu_amp: float  # extra percent at the busiest hour of a weekday
    peak_hour: float  # UTC hour of the daily peak
    mem_gib: int
    mem_base: float  # fraction of memory used at the quietest hour
    data_gib: int
    data_start: float  # fraction of /data used at the start of the range
    net_bytes: float  # bytes/s received at the busiest hour
    sent_ratio: float  # bytes sent per byte received
    procs: int
    names: tuple[str, str, str, str, str]  # the top processes, busiest first


_ROLES: dict[str, _Role] = {
    "web": _Role(8, 45, 15, 8, 0.40, 100, 0.30, 4e6, 4.0, 160,
                 ("gunicorn", "nginx", "python3", "node", "systemd-journald")),
    "db": _Role(6, 30, 14, 32, 0.55, 1000, 0.55, 1.5e6, 1.5, 120,
                ("postgres", "postgres", "postgres", "pgbouncer", "rsyslogd")),
    "cache": _Role(4, 18, 16, 16, 0.65, 50, 0.20, 6e6, 1.1, 100,
                   ("redis-server", "memcached", "sshd", "cron", "systemd")),
    "worker": _Role(20, 40, 2, 16, 0.35, 200, 0.40, 1e6, 0.5, 140,
                    ("celery", "python3", "ffmpeg", "celery", "sshd")),
}  # fmt: skip

# The top-process lists (labels, ~30 values in 12 containers) come on ticks at whole minutes
# only: on every 10 s tick they would make the documents ~25 % larger and the generator ~30 %
# slower, for lists that reports only rank over a period.
_TOP_EVERY = 60
_CPU_WEIGHTS = (0.40, 0.22, 0.12, 0.06, 0.03)  # share of busy CPU of the top processes
_MEM_WEIGHTS = (0.30, 0.14, 0.08, 0.04, 0.02)  # share of used memory


# A host's columns over a block: {dotted path: values}, and the top-process lists
# ({"top_cpu[0].name": values...}) for the positions listed in the index array.
_Columns = tuple[dict[str, Any], npt.NDArray[np.intp], dict[str, Any]]


@dataclass(frozen=True)
class _Grid:
    """The epoch-aligned ticks of the range: ``first + i * step`` for ``0 <= i < n``."""

    first: int
    step: int
    n: int

    @property
    def span(self) -> int:
        return self.n * self.step


@dataclass(frozen=True)
class _Host:
    """One host's fixed traits and its incidents (times in epoch seconds)."""

    index: int
    name: str
    role: _Role
    salt: int
    boot: float
    pids: tuple[int, ...]
    spike: tuple[float, float, float]  # start, length, extra percent
    leak: tuple[float, float, float]  # start, length, fraction of memory leaked at its end
    fill: tuple[float, float, float]  # start, length, fraction of /data filled
    burst: tuple[float, float, float]  # start, length, traffic multiplier
    data_growth: float  # fraction of /data added steadily over the range
    gap: tuple[int, int]  # tick index of the first missing tick, number of missing ticks


def host_names(hosts: int) -> list[str]:
    """The generated host labels: ``web-1``, ``db-1``, ``cache-1``, ``worker-1``, ``web-2``..."""
    return [f"{ROLES[i % len(ROLES)]}-{i // len(ROLES) + 1}" for i in range(hosts)]


def count_history(
    *, start: datetime, end: datetime, interval: str | Interval = "10s", hosts: int = 2
) -> int:
    """The exact number of rows :func:`generate_history` yields for these arguments.

    Independent of ``seed`` and ``chunk_size``; each host's collection gap is excluded.
    """
    grid = _grid(start, end, Interval.parse(interval))
    _check_hosts(hosts)
    return hosts * (grid.n - _gap_ticks(grid))


def generate_history(
    *,
    start: datetime,
    end: datetime,
    interval: str | Interval = "10s",
    hosts: int = 2,
    seed: int = 42,
    chunk_size: int = 10_000,
) -> Iterator[list[SnapshotRow]]:
    """Yield ``(timestamp, "aggregated", document)`` rows in lists of ``chunk_size``.

    Ticks are aligned to the Unix epoch at multiples of ``interval`` within the half-open
    range ``[start, end)``; rows are ordered by timestamp, then host. Timestamps are
    timezone-aware UTC. The last list may be shorter; an empty range yields nothing.

    Memory: a document takes about 10 KB as Python objects (about 3 KB as JSON), and the
    caller's previous chunk is alive while the next one is built, so peak memory is about
    ``2 * chunk_size * 10 KB`` plus a 40 MB working block, whatever the range: with the
    default ``chunk_size`` ~240 MB, with ``chunk_size=2000`` ~80 MB.

    :raises InvalidArgument: naive datetimes, ``end`` before ``start``, ``hosts`` or
        ``chunk_size`` below 1.
    :raises InvalidInterval: an interval the rollup rule does not accept.
    """
    grid = _grid(start, end, Interval.parse(interval))
    _check_hosts(hosts)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        msg = f"chunk_size must be a whole number of rows >= 1 (got {chunk_size!r})."
        raise InvalidArgument(msg)
    plans = [_plan(index, name, grid, seed) for index, name in enumerate(host_names(hosts))]
    block = max(1, _BLOCK_DOCS // hosts)
    pending: list[SnapshotRow] = []
    for begin in range(0, grid.n, block):
        pending.extend(_block_rows(plans, grid, begin, min(begin + block, grid.n)))
        while len(pending) >= chunk_size:
            yield pending[:chunk_size]
            del pending[:chunk_size]
    if pending:
        yield pending


# ---------------------------------------------------------------------------------------------
# Arguments and plan


def _check_hosts(hosts: int) -> None:
    if isinstance(hosts, bool) or not isinstance(hosts, int) or hosts < 1:
        msg = f"hosts must be a whole number >= 1 (got {hosts!r})."
        raise InvalidArgument(msg)


def _epoch_us(moment: datetime, name: str) -> int:
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        msg = f"{name} must be a timezone-aware datetime, e.g. datetime(2026, 1, 5, tzinfo=UTC)."
        raise InvalidArgument(msg)
    return epoch_microseconds(moment)  # aware, as checked: a naive time is refused here


def _grid(start: datetime, end: datetime, interval: Interval) -> _Grid:
    start_us, end_us = _epoch_us(start, "start"), _epoch_us(end, "end")
    if end_us < start_us:
        msg = f"end ({end.isoformat()}) is before start ({start.isoformat()})."
        raise InvalidArgument(msg)
    step_us = interval.seconds * 1_000_000
    first = -(-start_us // step_us)  # first tick index at or after start
    stop = -(-end_us // step_us)  # first tick index at or after end (excluded)
    return _Grid(first * interval.seconds, interval.seconds, max(0, stop - first))


def _gap_ticks(grid: _Grid) -> int:
    """Ticks each host misses: 30 minutes, at most a twentieth of the range, none if tiny."""
    if grid.n < 20:
        return 0
    return max(1, min(grid.n // 20, 1800 // grid.step))


def _plan(index: int, name: str, grid: _Grid, seed: int) -> _Host:
    rng = np.random.default_rng([seed % (1 << 64), index, 0x5EED])
    role = _ROLES[ROLES[index % len(ROLES)]]
    span, t0 = float(grid.span), float(grid.first)

    def window(lo: float, hi: float, length: float) -> tuple[float, float]:
        return t0 + span * float(rng.uniform(lo, hi)), max(length, 2.0 * grid.step)

    spike_at, spike_len = window(0.1, 0.9, min(2700.0, span * 0.02))
    leak_at, leak_len = window(0.05, 0.45, span * float(rng.uniform(0.25, 0.45)))
    fill_at, fill_len = window(0.45, 0.75, span * 0.2)
    burst_at, burst_len = window(0.1, 0.9, min(1200.0, span * 0.01))
    gap_len = _gap_ticks(grid)
    gap_at = int(rng.integers(grid.n // 10, max(grid.n // 10 + 1, grid.n * 9 // 10 - gap_len)))
    return _Host(
        index=index,
        name=name,
        role=role,
        salt=_mix(seed * 1_000_003 + index),
        boot=t0 - float(rng.integers(1, 40)) * 86_400 - float(rng.integers(0, 86_400)),
        pids=tuple(int(p) for p in rng.integers(300, 60_000, size=5)),
        spike=(spike_at, spike_len, float(rng.uniform(45, 75))),
        leak=(leak_at, leak_len, float(rng.uniform(0.18, 0.3))),
        fill=(fill_at, fill_len, float(rng.uniform(0.15, 0.3))),
        burst=(burst_at, burst_len, float(rng.uniform(6, 12))),
        data_growth=float(rng.uniform(0.01, 0.05)),
        gap=(gap_at, gap_len),
    )


# ---------------------------------------------------------------------------------------------
# Counter-based noise: a hash of (seed, host, channel, position), so any tick can be computed
# alone, in any block, with the same result.

_MASK = (1 << 64) - 1


def _mix(value: int) -> int:
    """splitmix64's finaliser on a Python int."""
    z = (value + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def _uniform(salt: int, channel: int, position: npt.NDArray[np.int64]) -> Floats:
    """Uniform [0, 1) noise, one value per position (an array of whole numbers)."""
    key = np.uint64(_mix(salt * 131 + channel))
    z = position.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + key
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


class _Noise:
    """The noise channels of one host over one block of ticks."""

    def __init__(self, salt: int, t: npt.NDArray[np.int64]) -> None:
        self.salt, self.t = salt, t

    def uniform(self, channel: int, period: int = 1) -> Floats:
        """Uniform [0, 1), constant over epoch-aligned slots of ``period`` seconds."""
        return _uniform(self.salt, channel, self.t // period)

    def gauss(self, channel: int) -> Floats:
        """Standard normal white noise (Box-Muller)."""
        u1 = _uniform(self.salt, channel, self.t)
        u2 = _uniform(self.salt, channel + 500, self.t)
        return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * math.pi * u2)

    def smooth(self, channel: int, period: int) -> Floats:
        """Slow wander in [-1, 1]: knots every ``period`` seconds, smoothstep between them."""
        knot = self.t // period
        frac = (self.t - knot * period) / period
        a = _uniform(self.salt, channel, knot)
        b = _uniform(self.salt, channel, knot + 1)
        s = frac * frac * (3.0 - 2.0 * frac)
        return (a + (b - a) * s) * 2.0 - 1.0


def _ramp(t: Floats, start: float, length: float) -> Floats:
    """0 before ``start``, rising linearly to 1 over ``length`` seconds, 1 after."""
    return np.clip((t - start) / length, 0.0, 1.0)


def _inside(t: Floats, start: float, length: float) -> npt.NDArray[np.bool_]:
    return (t >= start) & (t < start + length)


# ---------------------------------------------------------------------------------------------
# Metrics of one host over one block of ticks: {dotted path: column}


@dataclass(frozen=True)
class _Drivers:
    """What every subsystem's columns follow: the ticks, the day's activity and the bursts."""

    t_int: npt.NDArray[np.int64]
    t: Floats
    noise: _Noise
    hour: Floats
    activity: Floats  # 0 at night and on weekend nights, 1 at a weekday's peak
    burst: Floats  # short CPU bursts (percentage points), shared by CPU, disk I/O and network

    @property
    def n(self) -> int:
        return len(self.t)


@dataclass(frozen=True)
class _Cpu:
    """The CPU figures the process counts follow too."""

    busy: Floats
    busy_smooth: Floats
    iowait: Floats
    load_noise: Floats


_CPUS = 2


def _r(values: Floats) -> list[float]:
    rounded: list[float] = np.round(values, _DIGITS).tolist()
    return rounded


def _i(values: npt.NDArray[Any]) -> list[int]:
    whole: list[int] = np.asarray(values, dtype=np.int64).tolist()
    return whole


def _const(value: Any, n: int) -> list[Any]:
    return [value] * n


def _columns(host: _Host, grid: _Grid, t_int: npt.NDArray[np.int64]) -> _Columns:
    """One host's document columns over a block of ticks, with its top-process lists."""
    drivers = _drivers(host, t_int)
    cpu_cols, cpu = _cpu_columns(host, drivers)
    memory_cols, mem_used, mem_total = _memory_columns(host, drivers)
    disk_cols, filling = _disk_columns(host, grid, drivers)
    cols: dict[str, Any] = {"host": _const(host.name, drivers.n)}
    cols |= cpu_cols | memory_cols | disk_cols | _io_network_columns(host, drivers, filling)
    cols |= _process_columns(host, drivers, cpu) | _system_columns(host, grid, drivers)
    top_at = np.flatnonzero(t_int % _TOP_EVERY == 0)
    tops = _top_cpu(host, (cpu.busy * _CPUS)[top_at], _Noise(host.salt, t_int[top_at]))
    tops |= _top_memory(host, mem_used[top_at], mem_total)
    return cols, top_at, tops


def _drivers(host: _Host, t_int: npt.NDArray[np.int64]) -> _Drivers:
    role, noise = host.role, _Noise(host.salt, t_int)
    t = t_int.astype(np.float64)
    hour = (t % 86_400) / 3600.0
    weekday = (t_int // 86_400 + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    week = np.where(weekday >= 5, 0.55, 1.0)
    daily = 0.5 - 0.5 * np.cos(2 * math.pi * (hour - role.peak_hour + 12) / 24)
    burst = np.where(noise.uniform(1, 300) < 0.03, 10 + 25 * noise.uniform(2, 300), 0.0)
    return _Drivers(t_int, t, noise, hour, daily * week, burst)


def _cpu_columns(host: _Host, d: _Drivers) -> tuple[dict[str, Any], _Cpu]:
    """The busy share, then its split: idle + iowait + busy == 100."""
    role, noise, cpus = host.role, d.noise, _CPUS
    spike_at, spike_len, spike_extra = host.spike
    spike = np.where(_inside(d.t, spike_at, spike_len), spike_extra, 0.0)
    busy_smooth = role.cpu_base + role.cpu_amp * d.activity + 5 * noise.smooth(3, 1800)
    busy = np.clip(busy_smooth + 2.5 * noise.gauss(4) + d.burst + spike, 0.5, 99.5)
    iowait = np.clip(0.3 + 1.2 * np.abs(noise.gauss(5)) + 0.03 * busy, 0.0, 100.0 - busy)
    idle = 100.0 - busy - iowait
    spread = 6 * noise.gauss(6)
    load_noise = 1 + 0.15 * noise.gauss(7)
    cols = {
        "cpu.usage_percent": _r(busy),
        "cpu.user_percent": _r(busy * 0.72),
        "cpu.system_percent": _r(busy * 0.21),
        "cpu.iowait_percent": _r(iowait),
        "cpu.steal_percent": _r(busy * 0.02),
        "cpu.idle_percent": _r(idle),
        "cpu.logical_count": _const(cpus, d.n),
        "cpu.load1": _r(np.maximum(0, busy / 100 * cpus * load_noise)),
        "cpu.load5": _r(np.maximum(0, busy_smooth / 100 * cpus)),
        "cpu.load15": _r(np.maximum(0, (role.cpu_base + role.cpu_amp * d.activity) / 100 * cpus)),
        "cpu.ctx_switches_per_s": _r((900 + 60 * busy * cpus) * load_noise),
        "cpu.interrupts_per_s": _r((500 + 35 * busy * cpus) * load_noise),
        "cpu.per_cpu.0.usage_percent": _r(np.clip(busy + spread, 0, 100)),
        "cpu.per_cpu.1.usage_percent": _r(np.clip(busy - spread, 0, 100)),
    }
    return cols, _Cpu(busy, busy_smooth, iowait, load_noise)


def _memory_columns(host: _Host, d: _Drivers) -> tuple[dict[str, Any], npt.NDArray[np.int64], int]:
    """Memory used follows the day, plus a leak that grows until its restart; swap follows
    the memory pressure. Returns the columns, the bytes used and the total."""
    role, noise = host.role, d.noise
    leak_at, leak_len, leak_size = host.leak
    leaking = _inside(d.t, leak_at, leak_len)
    leak = np.where(leaking, leak_size * _ramp(d.t, leak_at, leak_len), 0.0)
    mem_total = role.mem_gib * _GIB
    mem_frac = role.mem_base + 0.08 * d.activity + 0.03 * noise.smooth(8, 3600) + leak
    mem_frac = np.clip(mem_frac + 0.004 * noise.gauss(9), 0.05, 0.97)
    mem_used = (mem_frac * mem_total).astype(np.int64)
    mem_avail = mem_total - mem_used
    pressure = np.clip((mem_frac - 0.85) / 0.12, 0.0, 1.0)
    swap_total = 2 * _GIB
    swap_used = (swap_total * np.clip(0.01 + 0.6 * pressure, 0, 0.95)).astype(np.int64)
    swapping = pressure > 0
    swap_in, swap_out = noise.uniform(27), noise.uniform(28)
    cols = {
        "memory.total_bytes": _const(mem_total, d.n),
        "memory.available_bytes": _i(mem_avail),
        "memory.used_bytes": _i(mem_used),
        "memory.usage_percent": _r(mem_used / mem_total * 100),
        "memory.cached_bytes": _i(mem_avail * (0.45 + 0.1 * noise.smooth(26, 7200))),
        "memory.buffers_bytes": _i(mem_avail * 0.03),
        "swap.total_bytes": _const(swap_total, d.n),
        "swap.used_bytes": _i(swap_used),
        "swap.usage_percent": _r(swap_used / swap_total * 100),
        "swap.swapped_in_bytes_per_s": _r(np.where(swapping, pressure * 2e6 * swap_in, 0)),
        "swap.swapped_out_bytes_per_s": _r(np.where(swapping, pressure * 4e6 * swap_out, 0)),
    }
    return cols, mem_used, mem_total


def _disk_columns(
    host: _Host, grid: _Grid, d: _Drivers
) -> tuple[dict[str, Any], npt.NDArray[np.bool_]]:
    """/ grows a little each day (logs, rotated at midnight); /data grows and fills up.

    Returns the columns and where /data is filling (the disk writes follow it)."""
    role, noise = host.role, d.noise
    pos = (d.t - grid.first) / max(1, grid.span)
    root_total = 50 * _GIB
    root_frac = 0.32 + 0.04 * (d.hour / 24) + 0.01 * noise.smooth(10, 21_600)
    root_used = (root_total * root_frac).astype(np.int64)
    data_total = role.data_gib * _GIB
    fill_at, fill_len, fill_size = host.fill
    data_frac = role.data_start + host.data_growth * pos + fill_size * _ramp(d.t, fill_at, fill_len)
    data_used = (data_total * np.clip(data_frac, 0.0, 0.99)).astype(np.int64)
    cols: dict[str, Any] = {
        "disk.total_bytes": _const(root_total + data_total, d.n),
        "disk.used_bytes": _i(root_used + data_used),
        "disk.free_bytes": _i(root_total + data_total - root_used - data_used),
        "disk.usage_percent": _r((root_used + data_used) / (root_total + data_total) * 100),
        "disk.max_usage_percent": _r(
            np.maximum(root_used / root_total, data_used / data_total) * 100
        ),
    }
    mounts = {"/": (root_total, root_used), "/data": (data_total, data_used)}
    for mount, (size, used) in mounts.items():
        prefix = f"disk.mounts.{mount}"
        cols[f"{prefix}.total_bytes"] = _const(size, d.n)
        cols[f"{prefix}.used_bytes"] = _i(used)
        cols[f"{prefix}.free_bytes"] = _i(size - used)
        cols[f"{prefix}.usage_percent"] = _r(used / size * 100)
    return cols, _inside(d.t, fill_at, fill_len)


def _io_network_columns(host: _Host, d: _Drivers, filling: npt.NDArray[np.bool_]) -> dict[str, Any]:
    """Disk I/O on vda and traffic on eth0; one disk and one interface, so the totals are
    theirs (the same lists, shared read-only)."""
    role, noise = host.role, d.noise
    io_level = 0.15 + d.activity + 0.3 * noise.smooth(11, 900) + d.burst / 20
    write_b = np.abs(2.5e6 * io_level * (1 + 0.3 * noise.gauss(12))) + np.where(filling, 3e7, 0.0)
    read_b = np.abs(1.5e6 * io_level * (1 + 0.3 * noise.gauss(13)))
    write_ops = write_b / (24_000 + 8_000 * noise.uniform(14))
    read_ops = read_b / (16_000 + 8_000 * noise.uniform(15))
    disk_busy = np.clip((read_b + write_b) / 2e6 + 0.5 * np.abs(noise.gauss(16)), 0, 100)
    burst_at, burst_len, burst_factor = host.burst
    boost = np.where(_inside(d.t, burst_at, burst_len), burst_factor, 1.0) + d.burst / 15
    recv = np.abs(
        role.net_bytes * (0.08 + d.activity) * (1 + 0.2 * noise.smooth(17, 1200)) * boost
        * (1 + 0.1 * noise.gauss(18))
    )  # fmt: skip
    sent = np.abs(recv * role.sent_ratio * (1 + 0.1 * noise.gauss(19)))
    errors = np.where(noise.uniform(20) < 0.001, 1 + 3 * noise.uniform(21), 0.0)
    drops = np.where(noise.uniform(22) < 0.004 * boost, 1 + 20 * noise.uniform(23), 0.0)
    io = {
        "read_bytes_per_s": _r(read_b),
        "write_bytes_per_s": _r(write_b),
        "read_ops_per_s": _r(read_ops),
        "write_ops_per_s": _r(write_ops),
        "busy_percent": _r(disk_busy),
    }
    net = {
        "bytes_sent_per_s": _r(sent),
        "bytes_recv_per_s": _r(recv),
        "packets_sent_per_s": _r(sent / 900),
        "packets_recv_per_s": _r(recv / 1100),
        "errors_in_per_s": _r(errors),
        "errors_out_per_s": _const(0.0, d.n),
        "drops_in_per_s": _r(drops),
        "drops_out_per_s": _const(0.0, d.n),
    }
    cols: dict[str, Any] = {}
    for leaf, values in io.items():
        cols[f"diskio.{leaf}"] = cols[f"diskio.disks.vda.{leaf}"] = values
    for leaf, values in net.items():
        cols[f"network.{leaf}"] = cols[f"network.interfaces.eth0.{leaf}"] = values
    return cols


def _process_columns(host: _Host, d: _Drivers, cpu: _Cpu) -> dict[str, Any]:
    noise = d.noise
    running = np.maximum(1, np.rint(cpu.busy / 100 * _CPUS * cpu.load_noise)).astype(np.int64)
    zombie = (noise.uniform(24, 600) < 0.05).astype(np.int64)
    disk_sleep = (cpu.iowait > 3).astype(np.int64)
    idle_procs = np.full(d.n, 40 + host.index % 7, dtype=np.int64)
    total = (host.role.procs + 8 * noise.smooth(25, 3600) + cpu.busy / 10).astype(np.int64)
    total += zombie
    sleeping = total - running - zombie - disk_sleep - idle_procs
    return {
        "processes.total_count": _i(total),
        "processes.running_count": _i(running),
        "processes.sleeping_count": _i(sleeping),
        "processes.disk_sleep_count": _i(disk_sleep),
        "processes.stopped_count": _const(0, d.n),
        "processes.zombie_count": _i(zombie),
        "processes.idle_count": _i(idle_procs),
        "processes.other_count": _const(0, d.n),
        "processes.threads_count": _i(total * 3 + 4 * cpu.busy.astype(np.int64)),
    }


def _system_columns(host: _Host, grid: _Grid, d: _Drivers) -> dict[str, Any]:
    """Uptime and boot time: the host reboots during its collection gap."""
    gap_at, gap_len = host.gap
    boot = np.full(d.n, host.boot)
    if gap_len:
        gap_end = grid.first + (gap_at + gap_len) * grid.step
        boot[d.t >= gap_end] = gap_end - 45.0
    return {"system.uptime_seconds": _r(d.t - boot), "system.boot_time_seconds": _r(boot)}


def _top_cpu(host: _Host, busy_cores: Floats, noise: _Noise) -> dict[str, Any]:
    """Columns of the top-5 list by CPU, busiest first (each share capped by the one before)."""
    shares = np.stack(
        [busy_cores * w * (1 + 0.15 * noise.gauss(30 + k)) for k, w in enumerate(_CPU_WEIGHTS)]
    )
    ordered = np.round(np.minimum.accumulate(np.maximum(shares, 0.0), axis=0), _DIGITS).tolist()
    n = len(busy_cores)
    cols: dict[str, Any] = {}
    for k, (name, pid) in enumerate(zip(host.role.names, host.pids, strict=True)):
        entry = f"top_cpu[{k}]"
        cols |= {f"{entry}.name": [name] * n, f"{entry}.pid": [pid] * n}
        cols[f"{entry}.cpu_percent"] = ordered[k]
    return cols


def _top_memory(host: _Host, used: npt.NDArray[np.int64], total: int) -> dict[str, Any]:
    """Columns of the top-5 list by resident memory (fixed shares of used memory)."""
    rss = np.stack([(used * w).astype(np.int64) for w in _MEM_WEIGHTS])
    percent = np.round(rss / total * 100, _DIGITS).tolist()
    sizes = rss.tolist()
    n = len(used)
    cols: dict[str, Any] = {}
    for k, (name, pid) in enumerate(zip(host.role.names, host.pids, strict=True)):
        entry = f"top_memory[{k}]"
        cols |= {f"{entry}.name": [name] * n, f"{entry}.pid": [pid] * n}
        cols |= {f"{entry}.memory_percent": percent[k], f"{entry}.rss_bytes": sizes[k]}
    return cols


# ---------------------------------------------------------------------------------------------
# Columns -> nested documents -> rows

RowBuilder = Callable[[tuple[Any, ...]], dict[str, Any]]


def _nest(paths: Sequence[str]) -> dict[str, Any]:
    """The nesting of column paths, each leaf holding its column's position.

    ``"cpu.per_cpu.0.usage_percent"`` nests dicts; a segment ``name[k]`` is item ``k`` of a
    list of dicts (``"processes.top_cpu[0].pid"``), kept as a dict keyed by ``[k]`` here.
    """
    tree: dict[str, Any] = {}
    for position, path in enumerate(paths):
        *parents, leaf = re.sub(r"\[(\d+)\]", r".[\1]", path).split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = position
    return tree


@lru_cache(maxsize=8)
def _row_builder(paths: tuple[str, ...]) -> RowBuilder:
    """A function turning one tuple of column values into a nested document.

    Generated once per column layout, as a single nested display
    (``lambda v: {"host": v[0], "cpu": {"usage_percent": v[1], ...}, ...}``), the way
    ``dataclasses`` generates ``__init__``: about twice as fast as building each level with
    ``dict(zip())``. The keys come from this module's own column names, written with
    ``repr()``; nothing from the caller ends up in the source.
    """

    def display(node: Any) -> str:
        if not isinstance(node, dict):
            return f"v[{node}]"
        if all(key.startswith("[") for key in node):
            return "[" + ", ".join(display(item) for item in node.values()) + "]"
        return "{" + ", ".join(f"{key!r}: {display(value)}" for key, value in node.items()) + "}"

    builder: RowBuilder = eval(f"lambda v: {display(_nest(paths))}", {})
    return builder


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while a block of documents is built.

    Building thousands of dicts at once triggers collections that only rescan the growing
    set of live documents (none of them is garbage): about a third of the build time.
    Reference counting still frees everything; no caller code runs while it is paused.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _block_rows(plans: list[_Host], grid: _Grid, begin: int, stop: int) -> list[SnapshotRow]:
    """Rows of ticks ``begin <= i < stop``, by timestamp then host, gaps left out."""
    index = np.arange(begin, stop, dtype=np.int64)
    t_int = grid.first + index * grid.step
    stamps = [EPOCH + timedelta(seconds=s) for s in t_int.tolist()]
    rows: list[SnapshotRow] = []
    with _gc_paused():
        per_host = []
        for host in plans:
            cols, top_at, tops = _columns(host, grid, t_int)
            build = _row_builder(tuple(cols))
            docs = list(map(build, zip(*cols.values(), strict=True)))
            if len(top_at):
                lists = map(_row_builder(tuple(tops)), zip(*tops.values(), strict=True))
                for j, extra in zip(top_at.tolist(), lists, strict=True):
                    docs[j]["processes"].update(extra)
            gap_at, gap_len = host.gap
            per_host.append((docs, gap_at - begin, gap_at + gap_len - begin))
        for j, stamp in enumerate(stamps):
            for docs, gap_from, gap_to in per_host:
                if not gap_from <= j < gap_to:
                    rows.append((stamp, METRIC_TYPE, docs[j]))
    return rows
