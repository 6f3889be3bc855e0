"""The history generator: deterministic, chunk-independent, consistent, with its incidents."""

from __future__ import annotations

import itertools
import statistics
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from metrics_toolkit.collect.generator import (
    METRIC_TYPE,
    SnapshotRow,
    count_history,
    generate_history,
    host_names,
)
from metrics_toolkit.documents_check import validate_document
from metrics_toolkit.errors import InvalidArgument, InvalidInterval

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday


def rows_of(**kwargs: Any) -> list[SnapshotRow]:
    return [row for chunk in generate_history(**kwargs) for row in chunk]


def by_host(rows: list[SnapshotRow]) -> dict[str, list[SnapshotRow]]:
    grouped: dict[str, list[SnapshotRow]] = defaultdict(list)
    for row in rows:
        grouped[row[2]["host"]].append(row)
    return grouped


@pytest.fixture(scope="module")
def week() -> list[SnapshotRow]:
    """Seven days at 5 minutes for all four roles (8064 rows minus the gaps)."""
    return rows_of(start=START, end=START + timedelta(days=7), interval="5min", hosts=4)


def test_host_names() -> None:
    assert host_names(6) == ["web-1", "db-1", "cache-1", "worker-1", "web-2", "db-2"]


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    kwargs: dict[str, Any] = {"start": START, "end": START + timedelta(hours=6), "interval": "1min"}
    first, again = rows_of(**kwargs), rows_of(**kwargs)
    assert first == again
    other = rows_of(**kwargs, seed=7)
    assert [r[0] for r in other] != [] and len(other) == len(first)
    assert [r[2] for r in other] != [r[2] for r in first]


def test_rows_do_not_depend_on_chunk_size() -> None:
    kwargs: dict[str, Any] = {
        "start": START + timedelta(seconds=7),
        "end": START + timedelta(hours=12),
        "interval": "10s",
        "hosts": 3,
    }
    reference = rows_of(**kwargs, chunk_size=10_000_000)
    assert len(reference) > 8192  # several internal blocks
    for chunk_size in (1, 997, 4096):
        chunks = list(generate_history(**kwargs, chunk_size=chunk_size))
        assert all(len(c) == chunk_size for c in chunks[:-1])
        assert 0 < len(chunks[-1]) <= chunk_size
        assert [row for chunk in chunks for row in chunk] == reference


@pytest.mark.parametrize(
    ("start", "end", "interval", "hosts"),
    [
        (START, START + timedelta(days=1), "10s", 2),
        (START + timedelta(seconds=3), START + timedelta(hours=2, seconds=1), "10s", 3),
        (START, START + timedelta(days=30), "1h", 5),
        (START, START + timedelta(days=40), "1D", 1),
        (START, START + timedelta(minutes=3), "10s", 2),  # 18 ticks: too short for a gap
        (START, START + timedelta(minutes=5), "1min", 1),
        (START, START, "10s", 2),  # empty
        (START + timedelta(seconds=1), START + timedelta(seconds=9), "10s", 2),  # no tick
    ],
)
def test_count_history_is_exact(start: datetime, end: datetime, interval: str, hosts: int) -> None:
    rows = rows_of(start=start, end=end, interval=interval, hosts=hosts)
    assert len(rows) == count_history(start=start, end=end, interval=interval, hosts=hosts)


def test_timestamps_aligned_utc_ordered_and_in_range() -> None:
    start = datetime(2026, 3, 1, 12, 0, 7, 500, tzinfo=timezone(timedelta(hours=2)))
    end = start + timedelta(hours=3)
    rows = rows_of(start=start, end=end, interval="30s", hosts=2)
    stamps = [row[0] for row in rows]
    assert stamps[0] == datetime(2026, 3, 1, 10, 0, 30, tzinfo=UTC)
    assert all(s.tzinfo is UTC and s.timestamp() % 30 == 0 for s in stamps)
    assert all(start <= s < end for s in stamps)
    keys = [(row[0], host_names(2).index(row[2]["host"])) for row in rows]
    assert keys == sorted(keys)
    assert {row[1] for row in rows} == {METRIC_TYPE}


def test_documents_pass_validation(week: list[SnapshotRow]) -> None:
    for row in week[::7]:
        validate_document(row[2])


def test_one_gap_per_host_then_a_reboot(week: list[SnapshotRow]) -> None:
    step = timedelta(minutes=5)
    expected = count_history(start=START, end=START + timedelta(days=7), interval="5min", hosts=4)
    assert len(week) == expected
    for host, rows in by_host(week).items():
        holes = [(a[0], b[0]) for a, b in itertools.pairwise(rows) if b[0] - a[0] != step]
        assert len(holes) == 1, host
        before, after = holes[0]
        assert after - before == step * (6 + 1)  # 30 minutes missing
        uptime = {row[0]: row[2]["system"]["uptime_seconds"] for row in rows}
        assert uptime[after] < uptime[before]  # rebooted during the gap
        assert uptime[after] < 3600


def test_relations_hold(week: list[SnapshotRow]) -> None:
    for _, _, doc in week:
        memory = doc["memory"]
        assert memory["used_bytes"] + memory["available_bytes"] == memory["total_bytes"]
        assert memory["usage_percent"] == pytest.approx(
            memory["used_bytes"] / memory["total_bytes"] * 100, abs=1e-3
        )
        assert memory["cached_bytes"] + memory["buffers_bytes"] <= memory["available_bytes"]
        swap = doc["swap"]
        assert 0 <= swap["used_bytes"] <= swap["total_bytes"]
        disk, mounts = doc["disk"], doc["disk"]["mounts"]
        for mount in mounts.values():
            assert mount["used_bytes"] + mount["free_bytes"] == mount["total_bytes"]
            assert mount["usage_percent"] == pytest.approx(
                mount["used_bytes"] / mount["total_bytes"] * 100, abs=1e-3
            )
        for leaf in ("total_bytes", "used_bytes", "free_bytes"):
            assert disk[leaf] == sum(m[leaf] for m in mounts.values())
        assert disk["max_usage_percent"] == max(m["usage_percent"] for m in mounts.values())
        cpu = doc["cpu"]
        assert cpu["usage_percent"] + cpu["iowait_percent"] + cpu["idle_percent"] == (
            pytest.approx(100, abs=0.002)
        )
        assert cpu["user_percent"] + cpu["system_percent"] <= cpu["usage_percent"]
        diskio, network = doc["diskio"], doc["network"]
        assert {k: v for k, v in diskio.items() if k != "disks"} == diskio["disks"]["vda"]
        assert {k: v for k, v in network.items() if k != "interfaces"} == (
            network["interfaces"]["eth0"]
        )
        processes = doc["processes"]
        states = ("running", "sleeping", "disk_sleep", "stopped", "zombie", "idle", "other")
        assert processes["total_count"] == sum(processes[f"{s}_count"] for s in states)
        assert min(processes[f"{s}_count"] for s in states) >= 0
        for path, value in _numbers(doc):
            if path.endswith(("_per_s", "_bytes", "_count", "_seconds")):
                assert value >= 0, path
            if path.endswith("_percent"):
                assert 0 <= value <= 100, path


def test_top_lists_once_a_minute_busiest_first() -> None:
    rows = rows_of(start=START, end=START + timedelta(minutes=10), interval="10s", hosts=1)
    with_lists = [row for row in rows if "top_cpu" in row[2]["processes"]]
    assert len(with_lists) >= 9  # ten minutes, less the gap
    for stamp, _, doc in rows:
        assert ("top_cpu" in doc["processes"]) is (stamp.second == 0)
        assert ("top_memory" in doc["processes"]) is (stamp.second == 0)
    for _, _, doc in with_lists:
        cpu = [entry["cpu_percent"] for entry in doc["processes"]["top_cpu"]]
        assert cpu == sorted(cpu, reverse=True) and len(cpu) == 5
        memory = doc["processes"]["top_memory"]
        assert [e["rss_bytes"] for e in memory] == sorted(
            (e["rss_bytes"] for e in memory), reverse=True
        )
        assert memory[0]["rss_bytes"] <= doc["memory"]["used_bytes"]


def test_daily_and_weekly_cycles(week: list[SnapshotRow]) -> None:
    rows = by_host(week)["web-1"]  # web peaks at 15:00 UTC
    weekday = [r for r in rows if r[0].weekday() < 5]
    afternoon = [r[2]["cpu"]["load15"] for r in weekday if 13 <= r[0].hour < 17]
    night = [r[2]["cpu"]["load15"] for r in weekday if 1 <= r[0].hour < 5]
    assert statistics.mean(afternoon) > 2 * statistics.mean(night)
    weekend = [r[2]["cpu"]["load15"] for r in rows if r[0].weekday() >= 5 and 13 <= r[0].hour < 17]
    assert statistics.mean(afternoon) > 1.3 * statistics.mean(weekend)


def test_incidents_are_there(week: list[SnapshotRow]) -> None:
    for host, rows in by_host(week).items():
        cpu = [r[2]["cpu"]["usage_percent"] for r in rows]
        assert max(cpu) > statistics.median(cpu) + 35, f"{host}: no CPU spike"
        recv = [r[2]["network"]["bytes_recv_per_s"] for r in rows]
        assert max(recv) > 4 * statistics.median(recv), f"{host}: no network burst"
        data = [r[2]["disk"]["mounts"]["/data"]["usage_percent"] for r in rows]
        assert data[-1] - data[0] > 10, f"{host}: /data does not fill up"
        assert data == sorted(data), f"{host}: /data shrank"
        memory = [r[2]["memory"]["usage_percent"] for r in rows]
        # the leak: a sustained climb, then a sharp drop at the restart
        drops = [a - b for a, b in itertools.pairwise(memory)]
        assert max(drops) > 12, f"{host}: no leak ending in a restart"


def _peak_rss(days: int) -> int:
    """Peak RSS (KiB) of a fresh process that generates ``days`` of 1-minute rows, 2 hosts."""
    script = (
        "import resource, sys\n"
        "from datetime import UTC, datetime, timedelta\n"
        "from metrics_toolkit.collect.generator import generate_history\n"
        "start = datetime(2026, 1, 5, tzinfo=UTC)\n"
        "n = 0\n"
        "for chunk in generate_history(start=start, end=start + timedelta(days=int(sys.argv[1])),"
        " interval='1min', chunk_size=2000):\n"
        "    n += len(chunk)\n"
        "print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(days)], capture_output=True, text=True, check=True
    )
    rows, peak = map(int, done.stdout.split())
    assert rows > days * 2800
    return peak


@pytest.mark.slow
def test_memory_stays_flat_as_the_range_grows() -> None:
    short, long = _peak_rss(10), _peak_rss(40)  # 29k and 115k rows: 7 and 28 blocks
    # KiB. Keeping the rows would add ~10 KB each (~850 MB here); the allocator's warm-up
    # adds ~13 MB between these two, then nothing more (measured up to 120 days).
    assert long < short + 40 * 1024, (short, long)


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"start": datetime(2026, 1, 1)}, InvalidArgument, "start must be a timezone-aware"),
        ({"end": START - timedelta(days=1)}, InvalidArgument, "is before start"),
        ({"hosts": 0}, InvalidArgument, "hosts must be a whole number >= 1"),
        ({"chunk_size": 0}, InvalidArgument, "chunk_size must be"),
        ({"interval": "7min"}, InvalidInterval, "divides one day"),
        ({"interval": "abc"}, InvalidInterval, "Invalid interval"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], error: type[Exception], fragment: str) -> None:
    arguments: dict[str, Any] = {"start": START, "end": START + timedelta(hours=1)} | kwargs
    with pytest.raises(error, match=fragment):
        list(generate_history(**arguments))


def _numbers(node: dict[str, Any], prefix: str = "") -> list[tuple[str, float]]:
    found: list[tuple[str, float]] = []
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            found.extend(_numbers(value, path))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            found.append((path, value))
    return found
