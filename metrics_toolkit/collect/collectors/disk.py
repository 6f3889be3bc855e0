"""Disk usage per real mount point, and summed over them (the ``disk`` section).

Real mount points only: pseudo and in-memory filesystems (proc, sysfs, tmpfs, overlay,
squashfs...), loop devices, snap and container-runtime mounts are skipped, and a device
mounted several times (bind mounts) is counted once, under its shortest mount point. When
nothing real is left (a container whose root is an overlay) the root ``/`` is reported alone.
``usage_percent`` is ``used / (used + free)``, as ``df`` and psutil compute it (blocks
reserved for root count as neither).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, ClassVar

import psutil

from metrics_toolkit.catalog import MetricSpec, specs_under
from metrics_toolkit.collect.collectors.base import Section, clean_key, share

log = logging.getLogger(__name__)

PSEUDO_FILESYSTEMS = frozenset(
    {
        "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs",
        "devpts", "devtmpfs", "efivarfs", "fusectl", "fuse.lxcfs", "fuse.gvfsd-fuse",
        "fuse.portal", "hugetlbfs", "mqueue", "nsfs", "overlay", "aufs", "proc", "pstore",
        "ramfs", "rpc_pipefs", "securityfs", "selinuxfs", "squashfs", "sysfs", "tmpfs",
        "tracefs", "nfsd", "none",
    }
)  # fmt: skip
_SKIPPED_MOUNT_PREFIXES = (
    "/snap/",
    "/var/snap/",
    "/var/lib/docker/",
    "/var/lib/containers/",
    "/var/lib/kubelet/",
    "/proc/",
    "/sys/",
    "/run/",
    "/dev/",
)


def real_mounts(partitions: Iterable[Any]) -> list[str]:
    """Mount points worth reporting, from ``psutil.disk_partitions()`` entries.

    Pure (entries need ``device``, ``mountpoint`` and ``fstype``); the result keeps one mount
    point per device, the shortest, in the input order.
    """
    by_device: dict[str, str] = {}
    for part in partitions:
        mount, device, fstype = part.mountpoint, part.device, part.fstype
        if fstype in PSEUDO_FILESYSTEMS or device.startswith("/dev/loop"):
            continue
        if mount.startswith(_SKIPPED_MOUNT_PREFIXES):
            continue
        kept = by_device.get(device)
        if kept is None or len(mount) < len(kept):
            by_device[device] = mount
    return list(by_device.values())


class DiskCollector:
    """The ``disk`` section: totals, ``max_usage_percent`` and ``mounts``."""

    FIELDS: ClassVar[tuple[MetricSpec, ...]] = specs_under("disk")

    def collect(self) -> dict[str, Section]:
        mounts = real_mounts(psutil.disk_partitions(all=False)) or ["/"]
        per_mount: dict[str, Section] = {}
        for mount in mounts:
            try:
                usage = psutil.disk_usage(mount)
            except OSError as error:  # permission denied, stale network mount, unmounted
                log.debug("no usage for %s: %s", mount, error)
                continue
            per_mount[clean_key(mount)] = {
                "total_bytes": usage.total,
                "used_bytes": usage.used,
                "free_bytes": usage.free,
                "usage_percent": share(usage.used, usage.used + usage.free) or 0.0,
            }
        if not per_mount:
            return {}
        used = sum(m["used_bytes"] for m in per_mount.values())
        free = sum(m["free_bytes"] for m in per_mount.values())
        section: Section = {
            "total_bytes": sum(m["total_bytes"] for m in per_mount.values()),
            "used_bytes": used,
            "free_bytes": free,
            "usage_percent": share(used, used + free) or 0.0,
            "max_usage_percent": max(m["usage_percent"] for m in per_mount.values()),
            "mounts": per_mount,
        }
        return {"disk": section}
