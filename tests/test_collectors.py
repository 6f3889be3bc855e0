"""Collectors on the real machine: shape, invariants, rates, gaps; pure helpers directly."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from metrics_toolkit.collect.collectors import (
    AVAILABLE,
    COLLECTORS,
    Collector,
    collect_snapshot,
    resolve_names,
    validate_document,
)
from metrics_toolkit.collect.collectors.cpu import time_shares
from metrics_toolkit.collect.collectors.disk import real_mounts
from metrics_toolkit.collect.collectors.diskio import whole_disks
from metrics_toolkit.collect.collectors.network import is_loopback
from metrics_toolkit.collect.collectors.processes import ProcessesCollector
from metrics_toolkit.collect.collectors.rates import RateTracker, per_second
from metrics_toolkit.collect.collectors.sensors import (
    SensorsCollector,
    battery_readings,
    group_readings,
)
from metrics_toolkit.errors import InvalidSnapshot, UnknownCollector
from metrics_toolkit.store.config_keys import CONFIG_KEYS

try:  # psutil's own result types (psutil >= 7 moved them)
    from psutil._ntuples import sbattery, sdiskpart, sfan, shwtemp
except ImportError:  # pragma: no cover - older psutil
    from psutil._common import sbattery, sdiskpart, sfan, shwtemp


def leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every non-dict value outside lists."""
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            yield from leaves(value, path)
        else:
            yield path, value


def numeric(doc: dict[str, Any]) -> dict[str, float]:
    return {
        path: value
        for path, value in leaves(doc)
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


@pytest.fixture(scope="module")
def two_ticks() -> tuple[dict[str, Any], dict[str, Any]]:
    """A first and a second document from one collector, 0.3 s apart."""
    collector = Collector(host="test-host")
    first = collector.collect()
    time.sleep(0.3)
    return first, collector.collect()


# --- registry and API --------------------------------------------------------------------


def test_registry_names_are_the_config_default() -> None:
    assert AVAILABLE == (
        "cpu",
        "memory",
        "disk",
        "diskio",
        "network",
        "processes",
        "sensors",
        "system",
    )
    default = next(k.default for k in CONFIG_KEYS if k.key == "collector.enabled")
    assert list(AVAILABLE) == default
    assert set(COLLECTORS) == set(AVAILABLE)


def test_unknown_collector_names_the_valid_ones() -> None:
    with pytest.raises(UnknownCollector) as caught:
        Collector(["cpu", "gpu"])
    message = str(caught.value)
    assert "'gpu'" in message
    assert "Available: cpu, disk, diskio, memory, network, processes, sensors, system" in message


def test_resolve_names_dedupes_and_reads_comma_lists() -> None:
    assert resolve_names(["memory", "cpu", "memory"]) == ("memory", "cpu")
    assert resolve_names("cpu, memory") == ("cpu", "memory")
    assert resolve_names(None) == AVAILABLE


def test_host_label_defaults_to_hostname_and_can_be_overridden() -> None:
    assert Collector(["system"]).collect()["host"] == socket.gethostname()
    assert Collector(["system"], host="web-9").collect()["host"] == "web-9"


def test_only_the_chosen_sections_appear() -> None:
    doc = Collector(["memory", "system"]).collect()
    assert set(doc) == {"host", "memory", "swap", "system"}


# --- documents on this machine --------------------------------------------------------------


def test_documents_pass_validation(two_ticks: tuple[dict[str, Any], dict[str, Any]]) -> None:
    for doc in two_ticks:
        validate_document(doc)


def test_first_tick_has_no_rates_and_the_second_has_them(
    two_ticks: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    first, second = two_ticks
    first_leaves = numeric(first)
    assert not [p for p in first_leaves if p.endswith("_per_s")]
    assert "usage_percent" not in first["cpu"]  # a share needs two samples
    assert "top_cpu" not in first["processes"]
    assert "top_memory" in first["processes"]
    assert first["memory"]["total_bytes"] > 0  # levels are there from the start

    second_leaves = numeric(second)
    for path in (
        "cpu.usage_percent",
        "cpu.ctx_switches_per_s",
        "cpu.interrupts_per_s",
        "swap.swapped_in_bytes_per_s",
        "swap.swapped_out_bytes_per_s",
    ):
        assert path in second_leaves, path
    assert second["processes"]["top_cpu"]
    if second.get("network", {}).get("interfaces"):
        assert any(p.startswith("network.interfaces.") for p in second_leaves)


def test_values_are_finite_and_in_range(
    two_ticks: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    for doc in two_ticks:
        for path, value in numeric(doc).items():
            assert math.isfinite(value), path
            if path.endswith("_percent"):
                assert 0 <= value <= 100, (path, value)
            if path.endswith(("_per_s", "_bytes", "_count", "_seconds")):
                assert value >= 0, (path, value)
            if path.endswith(("_bytes", "_count")):
                assert isinstance(value, int), (path, value)


def test_used_never_exceeds_total(two_ticks: tuple[dict[str, Any], dict[str, Any]]) -> None:
    doc = two_ticks[1]
    sections = [doc["memory"], doc["swap"], doc["disk"], *doc["disk"]["mounts"].values()]
    for section in sections:
        assert section["used_bytes"] <= section["total_bytes"]
    memory = doc["memory"]
    assert memory["available_bytes"] <= memory["total_bytes"]
    assert memory["usage_percent"] == pytest.approx(
        (memory["total_bytes"] - memory["available_bytes"]) / memory["total_bytes"] * 100,
        abs=1e-3,
    )
    for mount in doc["disk"]["mounts"].values():
        used, free = mount["used_bytes"], mount["free_bytes"]
        assert mount["usage_percent"] == pytest.approx(used / (used + free) * 100, abs=1e-3)


def test_cpu_section(two_ticks: tuple[dict[str, Any], dict[str, Any]]) -> None:
    cpu = two_ticks[1]["cpu"]
    assert cpu["logical_count"] == psutil.cpu_count()
    assert set(cpu["per_cpu"]) == {str(i) for i in range(len(psutil.cpu_times(percpu=True)))}
    assert cpu["usage_percent"] + cpu["idle_percent"] + cpu["iowait_percent"] == pytest.approx(
        100, abs=0.01
    )
    assert {"load1", "load5", "load15"} <= set(cpu)


def test_disk_totals_sum_the_mounts(two_ticks: tuple[dict[str, Any], dict[str, Any]]) -> None:
    disk = two_ticks[1]["disk"]
    mounts = disk["mounts"]
    assert mounts, "at least one real mount (or the root fallback)"
    for leaf in ("total_bytes", "used_bytes", "free_bytes"):
        assert disk[leaf] == sum(m[leaf] for m in mounts.values())
    assert disk["max_usage_percent"] == max(m["usage_percent"] for m in mounts.values())
    assert not [m for m in mounts if "." in m]


def test_network_totals_leave_out_loopback(
    two_ticks: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    network = two_ticks[1].get("network")
    if not network or "bytes_recv_per_s" not in network:
        pytest.skip("this machine has no non-loopback interface")
    counted = [n for n in network["interfaces"] if not is_loopback(n)]
    for leaf in ("bytes_sent_per_s", "bytes_recv_per_s", "packets_recv_per_s"):
        expected = sum(network["interfaces"][n][leaf] for n in counted)
        assert network[leaf] == pytest.approx(expected, abs=0.01)


def test_processes_section(two_ticks: tuple[dict[str, Any], dict[str, Any]]) -> None:
    processes = two_ticks[1]["processes"]
    states = [k for k in processes if k.endswith("_count") and k not in ("total_count",)]
    by_state = sum(processes[k] for k in states if k != "threads_count")
    assert processes["total_count"] == by_state > 0
    assert processes["threads_count"] >= processes["total_count"] - processes["zombie_count"]
    for key, field in (("top_cpu", "cpu_percent"), ("top_memory", "rss_bytes")):
        top = processes[key]
        assert 0 < len(top) <= 5
        assert all({"name", "pid", field} <= set(entry) for entry in top)
        figures = [entry[field] for entry in top]
        assert figures == sorted(figures, reverse=True)


def test_rates_follow_real_traffic() -> None:
    """Bytes sent over loopback between two ticks show up as a loopback rate."""
    collector = Collector(["network"])
    collector.collect()
    server = socket.create_server(("127.0.0.1", 0))
    with server, socket.create_connection(server.getsockname()) as client:
        peer, _ = server.accept()
        with peer:
            payload = b"x" * 65536
            for _ in range(64):  # 4 MiB
                client.sendall(payload)
                peer.recv(1 << 20)
    time.sleep(0.05)
    doc = collector.collect()
    loopback = [n for n in doc["network"]["interfaces"] if is_loopback(n)]
    if not loopback:
        pytest.skip("no loopback interface listed")
    assert doc["network"]["interfaces"][loopback[0]]["bytes_sent_per_s"] > 100_000


def test_busy_process_ranks_first_in_top_cpu() -> None:
    collector = Collector(["processes", "cpu"])
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        collector.collect()
        time.sleep(0.6)
        doc = collector.collect()
    finally:
        busy.kill()
        busy.wait()
    ranked = {entry["pid"]: entry["cpu_percent"] for entry in doc["processes"]["top_cpu"]}
    assert busy.pid in ranked, doc["processes"]["top_cpu"]
    assert ranked[busy.pid] > 20
    assert doc["cpu"]["usage_percent"] > 10


def test_disk_writes_show_up_as_write_rates(tmp_path: Any) -> None:
    collector = Collector(["diskio"])
    collector.collect()
    if not psutil.disk_io_counters(perdisk=True):
        pytest.skip("no disk I/O counters on this machine")
    path = tmp_path / "blob"
    with path.open("wb") as handle:
        handle.write(os.urandom(8 << 20))
        handle.flush()
        os.fsync(handle.fileno())
    doc = collector.collect()
    if "write_bytes_per_s" not in doc.get("diskio", {}):
        pytest.skip("no whole disk with counters (container without block devices)")
    assert doc["diskio"]["write_bytes_per_s"] > 0
    for disk in doc["diskio"]["disks"].values():
        assert 0 <= disk["busy_percent"] <= 100


def test_collect_snapshot_primes_the_counters() -> None:
    doc = collect_snapshot(["cpu", "memory"], host="nb", prime_seconds=0.2)
    assert doc["host"] == "nb"
    assert "ctx_switches_per_s" in doc["cpu"]
    assert "usage_percent" in doc["cpu"]
    unprimed = collect_snapshot(["cpu"], prime_seconds=0)
    assert "ctx_switches_per_s" not in unprimed["cpu"]


# --- rates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "current", "elapsed", "expected"),
    [
        (100, 400, 2.0, 150.0),
        (5, 5, 1.0, 0.0),  # a real zero: nothing happened
        (400, 100, 2.0, None),  # went backwards: reboot, wrap, device replaced
        (100, 400, 0.0, None),  # no time elapsed
        (100, 400, -1.0, None),
    ],
)
def test_per_second(
    previous: float, current: float, elapsed: float, expected: float | None
) -> None:
    assert per_second(previous, current, elapsed) == expected


def test_rate_tracker_never_fakes_or_goes_negative() -> None:
    tracker = RateTracker[str]()
    assert tracker.update({"a": 100, "b": 50}, now=0.0) == {}  # first tick: nothing
    assert tracker.update({"a": 300, "b": 10}, now=2.0) == {"a": 100.0}  # b went backwards
    assert tracker.update({"a": 300, "b": 30}, now=4.0) == {"a": 0.0, "b": 10.0}
    assert tracker.update({"b": 40}, now=5.0) == {"b": 10.0}  # a vanished
    assert tracker.update({"a": 900, "b": 40}, now=6.0) == {"b": 0.0}  # a is back: starts over
    assert tracker.update({"a": 1000}, now=6.0) == {}  # no time elapsed


def test_time_shares_from_two_samples() -> None:
    kind = type(psutil.cpu_times())
    fields = kind._fields
    before = kind(*[100.0] * len(fields))
    values = dict.fromkeys(fields, 100.0)
    values.update(user=160.0, system=120.0, idle=115.0)  # 60 + 20 + 15 = 95 s
    if "iowait" in values:
        values["iowait"] = 105.0  # + 5 s = 100 s in all
    after = kind(**values)
    shares = time_shares(before, after)
    total = 100.0 if "iowait" in values else 95.0
    assert shares["user_percent"] == pytest.approx(60 / total * 100, abs=1e-3)
    assert shares["usage_percent"] == pytest.approx(80 / total * 100, abs=1e-3)
    assert time_shares(after, after) == {}  # no time elapsed: no shares, not zeros
    if "iowait" in values:  # an idle counter stepping back is clamped, never negative
        shaky = kind(**{**values, "idle": 99.0})
        assert all(v >= 0 for v in time_shares(before, shaky).values())


# --- machine-dependent selection (pure) --------------------------------------------------------


def test_real_mounts_skip_pseudo_loop_snap_and_duplicates() -> None:
    def part(device: str, mount: str, fstype: str) -> Any:
        return sdiskpart(device, mount, fstype, "rw")

    partitions = [
        part("/dev/sda1", "/", "ext4"),
        part("proc", "/proc", "proc"),
        part("tmpfs", "/run", "tmpfs"),
        part("overlay", "/var/lib/docker/overlay2/x/merged", "overlay"),
        part("/dev/loop3", "/snap/core/1", "squashfs"),
        part("/dev/sda2", "/srv/data", "xfs"),
        part("/dev/sda2", "/srv/data/bind", "xfs"),  # a bind mount of the same device
        part("/dev/nvme0n1p1", "/boot/efi", "vfat"),
    ]
    assert real_mounts(partitions) == ["/", "/srv/data", "/boot/efi"]


def test_whole_disks_skip_virtual_devices_and_partitions_of_listed_disks() -> None:
    names = ["sda", "sda1", "sda2", "nvme0n1", "nvme0n1p1", "loop0", "zram0", "ram1", "sr0"]
    names += ["dm-0", "mmcblk0p1", "vdb1", "xvda"]
    assert whole_disks(names) == ["sda", "nvme0n1", "dm-0", "mmcblk0p1", "vdb1", "xvda"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [("lo", True), ("lo0", True), ("Loopback Pseudo-Interface 1", True), ("eth0", False)],
)
def test_is_loopback(name: str, expected: bool) -> None:
    assert is_loopback(name) is expected


# --- gaps: missing APIs, denied access, no sensors ----------------------------------------------


def test_sensors_on_this_machine_are_valid_or_absent() -> None:
    doc = Collector(["sensors"]).collect()
    validate_document(doc)
    if psutil.sensors_temperatures() or psutil.sensors_fans() or psutil.sensors_battery():
        assert "sensors" in doc
    else:
        assert "sensors" not in doc


@pytest.mark.parametrize("api", ["sensors_temperatures", "sensors_fans", "sensors_battery"])
def test_sensors_omitted_when_the_api_is_missing(monkeypatch: pytest.MonkeyPatch, api: str) -> None:
    def missing() -> None:
        raise AttributeError(api)

    for name in ("sensors_temperatures", "sensors_fans"):
        monkeypatch.setattr(psutil, name, dict)  # returns {}: no chip at all
    monkeypatch.setattr(psutil, "sensors_battery", lambda: None)
    monkeypatch.setattr(psutil, api, missing)
    assert SensorsCollector().collect() == {}
    monkeypatch.delattr(psutil, api)  # the platform has no such function
    assert SensorsCollector().collect() == {}


def test_sensor_readings_shape() -> None:
    chips = {
        "coretemp": [
            shwtemp("Package id 0", 45.0, 80.0, 100.0),
            shwtemp("", 40.0, None, None),
            shwtemp("Core 0", 41.0, 80.0, 100.0),
            shwtemp("Core 0", 42.0, 80.0, 100.0),
            shwtemp("bad", float("nan"), None, None),
        ],
        "acpi.tz": [shwtemp("", None, None, None)],
    }
    grouped = group_readings(chips, "temp", {"current": "current_celsius", "high": "high_celsius"})
    assert grouped == {
        "coretemp": {
            "Package id 0": {"current_celsius": 45.0, "high_celsius": 80.0},
            "temp2": {"current_celsius": 40.0},
            "Core 0": {"current_celsius": 41.0, "high_celsius": 80.0},
            "Core 0_2": {"current_celsius": 42.0, "high_celsius": 80.0},
        }
    }
    fans = group_readings({"thinkpad": [sfan("", 2400)]}, "fan", {"current": "speed_rpm"})
    assert fans == {"thinkpad": {"fan1": {"speed_rpm": 2400}}}
    assert battery_readings(sbattery(81.5, psutil.POWER_TIME_UNLIMITED, True)) == {
        "charge_percent": 81.5,
        "plugged_in": 1,
    }
    assert battery_readings(sbattery(50, 3600, False)) == {
        "charge_percent": 50,
        "remaining_seconds": 3600,
        "plugged_in": 0,
    }
    assert battery_readings(None) == {}


def test_denied_process_details_still_count(monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(self: psutil.Process) -> None:
        raise psutil.AccessDenied(self.pid)

    monkeypatch.setattr(psutil.Process, "num_threads", denied)
    section = ProcessesCollector().collect()["processes"]
    assert section["total_count"] > 0
    assert "top_memory" not in section
    assert section["threads_count"] == 0


def test_missing_load_average_is_omitted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(psutil, "getloadavg")
    cpu = Collector(["cpu"]).collect()["cpu"]
    assert "load1" not in cpu
    assert "logical_count" in cpu


# --- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ([], "expected a JSON object"),
        ({"cpu": {}}, "'host' must be a non-empty string"),
        ({"host": ""}, "'host' must be a non-empty string"),
        ({"host": 3}, "'host' must be a non-empty string"),
        ({"host": "h", "cpu": {"usage_percent": float("nan")}}, "cpu.usage_percent is nan"),
        ({"host": "h", "cpu": {"x": float("inf")}}, "numbers must be finite"),
        ({"host": "h", "disk": {"mounts": {"a.b": {}}}}, "key 'a.b' under disk.mounts"),
        ({"host": "h", 1: 2}, "key 1"),
        ({"host": "h", "p": {"top": [1, 2]}}, "p.top[0] is int"),
        ({"host": "h", "p": {"top": [{"x": float("nan")}]}}, "p.top[0].x is nan"),
        ({"host": "h", "p": {"s": {1, 2}}}, "p.s is set"),
    ],
)
def test_validate_document_rejects(doc: Any, fragment: str) -> None:
    with pytest.raises(InvalidSnapshot) as caught:
        validate_document(doc)
    assert fragment in str(caught.value)


def test_validate_document_accepts_every_allowed_value_and_limits_depth() -> None:
    validate_document(
        {"host": "h", "a": {"b": 1, "c": 2.5, "d": "x", "e": True, "f": None, "g": [{"n": 1}]}}
    )
    deep: dict[str, Any] = {"host": "h"}
    node = deep
    for _ in range(40):
        node["n"] = {}
        node = node["n"]
    with pytest.raises(InvalidSnapshot, match="nested deeper"):
        validate_document(deep)


def test_missing_disk_counters_give_no_diskio_section(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(perdisk: bool = False) -> None:
        raise NotImplementedError("couldn't find /proc/diskstats or /sys/block")

    monkeypatch.setattr(psutil, "disk_io_counters", missing)
    assert Collector(["diskio"], host="h").collect() == {"host": "h"}
