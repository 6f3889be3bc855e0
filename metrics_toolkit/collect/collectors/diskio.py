"""Disk I/O rates per whole disk, and in total (the ``diskio`` section).

Which devices: whole disks only. Loop, RAM, zram, floppy and optical devices are skipped;
a partition (``sda1``, ``nvme0n1p2``) is skipped when its whole disk is listed, so bytes are
not counted twice. The totals also leave out stacked devices (``dm-*`` device-mapper/LVM and
``md*`` software RAID), whose I/O is already counted on the disks beneath them; they still
appear under ``disks``. A total rate is given only when every disk it sums has a rate on this
tick; ``busy_percent`` of the totals is that of the busiest disk.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from typing import ClassVar

import psutil

from metrics_toolkit.catalog import MetricSpec, specs_under
from metrics_toolkit.collect.collectors.base import DIGITS, Section, clean_key
from metrics_toolkit.collect.collectors.rates import RateTracker

log = logging.getLogger(__name__)

_SKIPPED = re.compile(r"^(loop|ram|zram|fd|sr)\d*")
_STACKED = re.compile(r"^(dm-|md)\d*")
_PARTITION = re.compile(
    r"^(?P<disk>(?:sd|vd|xvd|hd)[a-z]+)\d+$|^(?P<dev>(?:nvme\d+n\d+|mmcblk\d+))p\d+$"
)
# psutil counter -> leaf name (busy_time is in milliseconds, Linux and FreeBSD only)
_COUNTERS = {
    "read_bytes": "read_bytes_per_s",
    "write_bytes": "write_bytes_per_s",
    "read_count": "read_ops_per_s",
    "write_count": "write_ops_per_s",
}


def whole_disks(names: Iterable[str]) -> list[str]:
    """The device names to report, from ``psutil.disk_io_counters(perdisk=True)`` keys. Pure."""
    names = [name for name in names if not _SKIPPED.match(name)]
    present = set(names)
    kept = []
    for name in names:
        match = _PARTITION.match(name)
        if match and (match["disk"] or match["dev"]) in present:
            continue
        kept.append(name)
    return kept


class DiskIOCollector:
    """The ``diskio`` section: total rates, and per disk under ``disks``."""

    FIELDS: ClassVar[tuple[MetricSpec, ...]] = specs_under("diskio")

    def __init__(self) -> None:
        self._rates = RateTracker[tuple[str, str]]()

    def collect(self) -> dict[str, Section]:
        try:
            counters = psutil.disk_io_counters(perdisk=True) or {}
        except NotImplementedError as error:  # no /proc/diskstats nor /sys/block
            log.debug("no disk I/O counters: %s", error)
            return {}
        now = time.monotonic()
        disks = whole_disks(counters)
        values: dict[tuple[str, str], float] = {}
        for disk in disks:
            sample = counters[disk]
            for field in (*_COUNTERS, "busy_time"):
                value = getattr(sample, field, None)
                if value is not None:
                    values[(disk, field)] = value
        rates = self._rates.update(values, now)

        per_disk: dict[str, Section] = {}
        for disk in disks:
            entry: Section = {}
            for field, leaf in _COUNTERS.items():
                if (disk, field) in rates:
                    entry[leaf] = round(rates[(disk, field)], DIGITS)
            if (disk, "busy_time") in rates:  # ms busy per s -> percent of wall time
                entry["busy_percent"] = round(min(100.0, rates[(disk, "busy_time")] / 10), DIGITS)
            if entry:
                per_disk[clean_key(disk)] = entry
        if not disks:
            return {}

        section: Section = {}
        counted = [clean_key(d) for d in disks if not _STACKED.match(d)]
        for leaf in (*_COUNTERS.values(), "busy_percent"):
            found = [per_disk[d][leaf] for d in counted if leaf in per_disk.get(d, {})]
            if counted and len(found) == len(counted):
                total = max(found) if leaf == "busy_percent" else sum(found)
                section[leaf] = round(total, DIGITS)
        if per_disk:
            section["disks"] = per_disk
        return {"diskio": section} if section else {}
