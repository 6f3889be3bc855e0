"""Hostile snapshots for the issue 8 tests, and an independent oracle for their numbers.

:func:`hostile_histories` draws raw rows whose metric leaves are sometimes clean numbers and
sometimes junk (numeric strings, booleans, null, lists, objects), under hostile keys (dots,
quotes, markup, unicode), with hostile or missing host labels, duplicate identities, wide
and deep extra documents, and timestamps before 1970 or far in the future.

The oracle (:func:`stored_rows`, :func:`expected_values`, :func:`expected_buckets`) never
calls the library: it reads leaves by their raw keys, keeps a value only when it is a
finite ``int``/``float`` (not ``bool``), and buckets by integer floor division of epoch
microseconds. Every reader must agree with it on the clean subset of the data.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from metrics_toolkit.documents import join_path

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T0 = datetime(2026, 1, 5, tzinfo=UTC)
#: Where histories start: now-ish, just before the epoch, long before it, far ahead.
BASES = (
    T0,
    datetime(1969, 12, 31, 23, 0, tzinfo=UTC),
    datetime(1900, 1, 1, tzinfo=UTC),
    datetime(2262, 4, 11, tzinfo=UTC),  # past pandas' nanosecond range
    datetime(9999, 12, 30, tzinfo=UTC),
)
SCRIPT = "<script>alert('x')</script>"
#: Raw keys of the metrics every test reads; their dotted paths escape the dots.
KEYS: tuple[tuple[str, ...], ...] = (
    ("cpu", "usage_percent"),
    ("disk", "mounts", "/data.old", "usage_percent"),  # a dot inside a key
    ("sensors", SCRIPT, "温度 °C"),  # markup and unicode
    ("it's & <b>", "x y"),  # quote, ampersand, spaces
)
PATHS = tuple(join_path(keys) for keys in KEYS)
MISSING = object()
HOSTS = (MISSING, "web-1", SCRIPT, "naïve-主机 'q' \"dq\"", "")
#: Leaves that are stored but are not numbers: every reader skips them.
JUNK: tuple[Any, ...] = ("12", "n/a", "", "NaN", "1e308", True, False, None, [], [1, 2.5], {"v": 1})
#: Numbers that are valid but awkward: zero signs, beyond int64, near the 1e300 limit.
AWKWARD = (0, -0.0, 2**63, 2**64 + 1, -(2**70), 1e300, -1e300, 5e-324)
WIDTHS = ("1min", "1h", "1D")
#: Property settings: few examples (two cores in CI), no deadline (databases vary).
HOSTILE = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)

Row = tuple[datetime, str, dict[str, Any]]


def clean_numbers(*, awkward: bool = True) -> st.SearchStrategy[Any]:
    plain = st.one_of(
        st.integers(-(10**6), 10**6),
        st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False),
    )
    return st.one_of(plain, st.sampled_from(AWKWARD)) if awkward else plain


def is_number(value: Any) -> bool:
    """The oracle's definition of a metric value (written independently of the library)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def put(doc: dict[str, Any], keys: tuple[str, ...], value: Any) -> None:
    node = doc
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value


def get(doc: dict[str, Any], keys: tuple[str, ...]) -> Any:
    node: Any = doc
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return MISSING
        node = node[key]
    return node


@st.composite
def hostile_histories(
    draw: st.DrawFn,
    *,
    junk: tuple[Any, ...] = JUNK,
    max_rows: int = 16,
    keys: tuple[tuple[str, ...], ...] = KEYS,
    bases: tuple[datetime, ...] = BASES,
    awkward: bool = True,
) -> list[Row]:
    """Raw rows of hostile documents, in input order (duplicates included)."""
    base = draw(st.sampled_from(bases))
    count = draw(st.integers(1, max_rows))
    rows: list[Row] = []
    for _ in range(count):
        offset = draw(st.integers(0, 3 * 3600))
        micros = draw(st.sampled_from([0, 0, 0, 500_000, 1]))
        stamp = base + timedelta(seconds=offset, microseconds=micros)
        doc: dict[str, Any] = {}
        host = draw(st.sampled_from(HOSTS))
        if host is not MISSING:
            doc["host"] = host
        for leaf in keys:
            choice = draw(st.integers(0, 9))
            if choice < 6:
                put(doc, leaf, draw(clean_numbers(awkward=awkward)))
            elif choice < 9:
                put(doc, leaf, draw(st.sampled_from(junk)))
            # else: the leaf is missing
        shape = draw(st.integers(0, 9))
        if shape == 0:  # very wide
            doc["wide"] = {f"k{i}": i for i in range(draw(st.integers(20, 150)))}
        elif shape == 1:  # deeply nested
            deep: dict[str, Any] = {"leaf": 1.5}
            for _ in range(draw(st.integers(10, 40))):
                deep = {"n": deep}
            doc["deep"] = deep
        rows.append((stamp, "aggregated", doc))
    # the same identity again (host label, type, timestamp), with other values: skipped
    for _ in range(draw(st.integers(0, 3))):
        stamp, kind, doc = rows[draw(st.integers(0, len(rows) - 1))]
        twin = {"host": doc["host"]} if "host" in doc else {}
        put(twin, keys[0], 12345.0)
        rows.append((stamp, kind, twin))
    return rows


def identity(row: Row) -> tuple[str, str, datetime]:
    stamp, kind, doc = row
    host = doc.get("host")
    return (host if isinstance(host, str) else "", kind, stamp)


def stored_rows(rows: list[Row]) -> list[Row]:
    """The rows a write keeps: the first of each identity, in input order."""
    seen: set[tuple[str, str, datetime]] = set()
    kept = []
    for row in rows:
        key = identity(row)
        if key not in seen:
            seen.add(key)
            kept.append(row)
    return kept


def host_label(doc: dict[str, Any]) -> str:
    host = doc.get("host")
    return host if isinstance(host, str) else ""


def expected_values(
    rows: list[Row], keys: tuple[tuple[str, ...], ...] = KEYS
) -> dict[tuple[str, pd.Timestamp], dict[str, float]]:
    """Full resolution: ``{(host, timestamp): {path: value}}`` of the clean leaves."""
    out: dict[tuple[str, pd.Timestamp], dict[str, float]] = {}
    for stamp, _, doc in rows:
        values = {}
        for leaf in keys:
            path = join_path(leaf)
            value = get(doc, leaf)
            if is_number(value):
                values[path] = float(value)
        out[host_label(doc), pd.Timestamp(stamp)] = values
    return out


def bucket_of(stamp: datetime, width: str) -> pd.Timestamp:
    seconds = pd.Timedelta(width).total_seconds()
    width_us = int(seconds) * 1_000_000
    delta = stamp - EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return pd.Timestamp(EPOCH + timedelta(microseconds=micros - micros % width_us))


@dataclass
class Bucket:
    values: list[float]

    @property
    def count(self) -> int:
        return len(self.values)

    @property
    def sum(self) -> float:
        return math.fsum(self.values)

    @property
    def scale(self) -> float:
        """What float rounding is relative to: the sum of magnitudes."""
        return math.fsum(abs(v) for v in self.values)


def expected_buckets(
    rows: list[Row], width: str, keys: tuple[tuple[str, ...], ...] = KEYS
) -> dict[tuple[str, pd.Timestamp], dict[str, Bucket]]:
    """``{(host, bucket start): {path: Bucket}}`` of the clean leaves, per host."""
    out: dict[tuple[str, pd.Timestamp], dict[str, Bucket]] = defaultdict(dict)
    for stamp, _, doc in rows:
        key = (host_label(doc), bucket_of(stamp, width))
        out[key]  # a bucket with rows but no clean value still exists
        for leaf in keys:
            path = join_path(leaf)
            value = get(doc, leaf)
            if is_number(value):
                out[key].setdefault(path, Bucket([])).values.append(float(value))
    return dict(out)


def close(actual: float, expected: float, scale: float) -> bool:
    """Equal up to float rounding of sums whose magnitudes add up to ``scale``."""
    return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9 * scale + 1e-12)


def check_bucket(actual: dict[str, float], bucket: Bucket, where: Any) -> None:
    """``actual`` (stat -> value) against the oracle's bucket of clean values."""
    assert actual["count"] == bucket.count, (where, actual, bucket.values)
    assert actual["min"] == min(bucket.values), (where, actual, bucket.values)
    assert actual["max"] == max(bucket.values), (where, actual, bucket.values)
    assert close(actual["sum"], bucket.sum, bucket.scale), (where, actual, bucket.values)
    mean = bucket.sum / bucket.count
    assert close(actual["mean"], mean, bucket.scale / bucket.count), (where, actual, mean)


def test_the_oracle_reads_only_clean_numbers() -> None:
    doc: dict[str, Any] = {"host": 7}
    put(doc, KEYS[0], "12")
    put(doc, KEYS[1], 2**64)
    put(doc, KEYS[2], True)
    put(doc, KEYS[3], 1.5)
    assert expected_values([(T0, "aggregated", doc)]) == {
        ("", pd.Timestamp(T0)): {PATHS[1]: float(2**64), PATHS[3]: 1.5}
    }
    assert PATHS[1] == "disk.mounts./data\\.old.usage_percent"
    before = datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC)
    assert bucket_of(before, "1min") == pd.Timestamp("1969-12-31 23:59:00", tz=UTC)
    assert bucket_of(before, "1D") == pd.Timestamp("1969-12-31", tz=UTC)
    assert stored_rows([(T0, "a", {}), (T0, "a", {"host": ""}), (T0, "a", {"host": "h"})]) == [
        (T0, "a", {}),
        (T0, "a", {"host": "h"}),
    ]
