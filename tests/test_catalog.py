"""The metric catalog: lookups, and that it declares every leaf real and generated docs have."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from metrics_toolkit import catalog
from metrics_toolkit.catalog import (
    CATALOG,
    KINDS,
    MetricSpec,
    is_declared,
    kind_of,
    lookup,
    specs_under,
    unit_of,
)
from metrics_toolkit.collect.collectors import COLLECTORS, Collector
from metrics_toolkit.collect.generator import generate_history

# Units each leaf-name suffix implies (the naming rule of docs/design.md §2, snapshots).
SUFFIX_UNITS = {
    "_bytes_per_s": "bytes/s",
    "_per_s": "1/s",
    "_percent": "percent",
    "_bytes": "bytes",
    "_celsius": "celsius",
    "_rpm": "rpm",
    "_count": "count",
}


def numeric_paths(node: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of the numeric leaves (lists are labels: not entered)."""
    paths: list[str] = []
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            paths.extend(numeric_paths(value, path))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            paths.append(path)
    return paths


@pytest.fixture(scope="module")
def real_docs() -> list[dict[str, Any]]:
    collector = Collector()
    first = collector.collect()
    time.sleep(0.2)
    return [first, collector.collect()]


@pytest.fixture(scope="module")
def generated_docs() -> list[dict[str, Any]]:
    start = datetime(2026, 1, 5, tzinfo=UTC)
    chunks = generate_history(start=start, end=start + timedelta(hours=2), hosts=4)
    return [doc for chunk in chunks for _, _, doc in chunk]


def test_rows_are_well_formed() -> None:
    patterns = [spec.pattern for spec in CATALOG]
    assert not [p for p, n in Counter(patterns).items() if n > 1], "duplicate patterns"
    for spec in CATALOG:
        assert spec.kind in KINDS, spec
        assert spec.description, spec
        leaf = spec.pattern.rsplit(".", 1)[-1]
        assert "*" not in leaf, spec
        if spec.kind == "rate":
            assert leaf.endswith("_per_s"), spec
        for suffix, unit in SUFFIX_UNITS.items():
            if leaf.endswith(suffix):
                # network.bytes_sent_per_s: the brief's name puts "bytes" first
                bytes_first = leaf.startswith("bytes_") and suffix == "_per_s"
                assert spec.unit == ("bytes/s" if bytes_first else unit), spec
                break


@pytest.mark.parametrize(
    ("path", "kind", "unit", "pattern"),
    [
        ("cpu.usage_percent", "gauge", "percent", "cpu.usage_percent"),
        ("cpu.load5", "gauge", "load", "cpu.load5"),
        ("cpu.per_cpu.17.usage_percent", "gauge", "percent", "cpu.per_cpu.*.usage_percent"),
        ("disk.mounts./srv.used_bytes", "gauge", "bytes", "disk.mounts.*.used_bytes"),
        ("diskio.disks.nvme0n1.read_bytes_per_s", "rate", "bytes/s", None),
        ("network.interfaces.eth0.drops_in_per_s", "rate", "1/s", None),
        ("sensors.temperatures.coretemp.Core 0.current_celsius", "gauge", "celsius", None),
        ("system.boot_time_seconds", "gauge", "timestamp", None),
    ],
)
def test_lookup_declared(path: str, kind: str, unit: str, pattern: str | None) -> None:
    spec = lookup(path)
    assert is_declared(path)
    assert (spec.kind, spec.unit) == (kind, unit)
    assert kind_of(path) == kind and unit_of(path) == unit
    if pattern:
        assert spec.pattern == pattern


@pytest.mark.parametrize(
    ("path", "kind", "unit"),
    [
        ("gpu.memory_bytes", "gauge", "bytes"),
        ("gpu.fan.speed_rpm", "gauge", "rpm"),
        ("app.requests_per_s", "rate", "1/s"),
        ("app.sent_bytes_per_s", "rate", "bytes/s"),
        ("app.requests_total", "counter", "count"),
        ("app.mystery", "gauge", ""),
        ("cpu.per_cpu.usage_percent", "gauge", "percent"),  # wrong depth: not the * row
    ],
)
def test_lookup_guesses_unknown_paths(path: str, kind: str, unit: str) -> None:
    assert not is_declared(path)
    assert lookup(path) == MetricSpec(path, kind, unit)  # type: ignore[arg-type]


def test_collector_fields_are_their_catalog_rows() -> None:
    for name, factory in COLLECTORS.items():
        fields = factory.FIELDS  # type: ignore[attr-defined]
        assert fields, name
        sections = {spec.pattern.split(".")[0] for spec in fields}
        assert set(fields) == set(specs_under(*sections)), name
    assert {s.pattern.split(".")[0] for s in specs_under("memory", "swap")} == {"memory", "swap"}


def test_every_real_leaf_is_declared_by_its_collector() -> None:
    for name, factory in COLLECTORS.items():
        collector = Collector([name])
        collector.collect()
        time.sleep(0.05)
        doc = collector.collect()
        fields = factory.FIELDS  # type: ignore[attr-defined]
        for path in numeric_paths(doc):
            assert any(
                catalog._matches(tuple(spec.pattern.split(".")), tuple(path.split(".")))
                for spec in fields
            ), f"{name} produced {path}, not in its FIELDS"


def test_catalog_covers_every_real_leaf(real_docs: list[dict[str, Any]]) -> None:
    undeclared = {p for doc in real_docs for p in numeric_paths(doc) if not is_declared(p)}
    assert not undeclared


def test_catalog_covers_every_generated_leaf(generated_docs: list[dict[str, Any]]) -> None:
    undeclared = {p for doc in generated_docs for p in numeric_paths(doc) if not is_declared(p)}
    assert not undeclared


def test_generated_docs_use_the_whole_catalog(generated_docs: list[dict[str, Any]]) -> None:
    """Apart from sensors (VMs have none) and the daemon's own leaves, every row is used."""
    used = {lookup(p).pattern for doc in generated_docs for p in numeric_paths(doc)}
    expected = {
        spec.pattern for spec in CATALOG if not spec.pattern.startswith(("sensors.", "collector."))
    }
    assert used == expected
    assert 60 <= len({p for doc in generated_docs for p in numeric_paths(doc)}) <= 90
