"""Tier blocks: the tier rows' count, sum, min and max per leaf and UTC day, as arrays.

A tier row (``metrics_tiers``) holds every statistic of every leaf of one host's bucket in
one document, ~35 kB as JSONB; a view asking for four leaves decompresses all of it, and
that was three quarters of a fleet view's time (docs/design.md §9). A block
(:class:`~metrics_toolkit.store.models.TierBlock`) holds one leaf of one host over one
day: a slot per tier bucket, the ``count``, ``sum``, ``min`` and ``max`` that the tier
documents' ``_rollup`` maps hold for the leaf, so a view reads a few small rows per leaf
and host. The row of path :data:`SAMPLES` (``"_rollup"``, which no leaf path can be: the
top-level key is skipped by ``documents.flatten``) holds each bucket's samples, NaN where
there is no tier row.

:func:`write` makes blocks from the very documents the tier refresh writes, in its
transaction, so a block slot is a tier row's statistics, read without JSON.
:func:`bucket_rows` reads them for a plan's tier rows and aggregates them into the view's
buckets by the pooling law, in the shape of ``rollup.sql.pg_buckets``' result, so the
reader merges them with the snapshots' buckets as it merges any partial buckets.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, delete, insert, select

from metrics_toolkit.documents import ROLLUP_KEY, flatten, host_of
from metrics_toolkit.intervals import (
    SECONDS_PER_DAY,
    as_utc,
    bucket_start,
    bucket_start_ticks,
    epoch_microseconds,
)
from metrics_toolkit.rollup.rule import Row
from metrics_toolkit.rollup.sql import Filters
from metrics_toolkit.rollup.stats import POOL_LAW
from metrics_toolkit.store.models import TierBlock

#: The path of the samples row (the top-level ``_rollup`` key is never a leaf's path).
SAMPLES = ROLLUP_KEY
#: The statistics a block holds, by the column that holds them.
COLUMNS = {"count": "counts", "sum": "sums", "min": "mins", "max": "maxes"}
#: Little-endian float64, whatever the machine.
_DTYPE = np.dtype("<f8")
_DAY = timedelta(days=1)
_BLOCK = TierBlock.__table__.c  # Core columns: an ORM select costs a fresh process to compile
_MICROS = 1_000_000


def slots(width: int) -> int:
    """Tier buckets of ``width`` seconds per UTC day (each width divides a day)."""
    return SECONDS_PER_DAY // width


def pack(values: np.ndarray) -> bytes:
    return np.ascontiguousarray(values, dtype=_DTYPE).tobytes()


def unpack(data: bytes | None, n: int) -> np.ndarray:
    """A writable float64 array of ``n`` slots (all NaN for NULL)."""
    if data is None:
        return np.full(n, np.nan)
    return np.frombuffer(data, dtype=_DTYPE).astype(np.float64)


def _stack(blobs: Sequence[bytes], n: int) -> np.ndarray:
    """Blobs of ``n`` slots each as one ``(len(blobs), n)`` array."""
    return np.frombuffer(b"".join(blobs), dtype=_DTYPE).reshape(len(blobs), n)


# --------------------------------------------------------------------------------------
# Writing


def write(
    connection: Connection, width: int, start: datetime, end: datetime, docs: Sequence[Row]
) -> int:
    """Make the blocks of ``width`` over ``[start, end)`` what ``docs`` (the tier rows just
    written there, every key's) say; slots outside the range keep what they hold. Returns
    the block rows written."""
    n = slots(width)
    by_day: dict[datetime, list[Row]] = defaultdict(list)
    for row in docs:
        by_day[bucket_start(row[0], _DAY)].append(row)
    written = 0
    day = bucket_start(start, _DAY)
    while day < end:
        lo = max(0, int((start - day).total_seconds()) // width)
        hi = min(n, -(-int((end - day).total_seconds()) // width))
        arrays = {} if lo == 0 and hi == n else _read_day(connection, width, day, n)
        for columns in arrays.values():
            for values in columns.values():
                values[lo:hi] = np.nan
        _fill(arrays, by_day.get(day, ()), day, width, n)
        connection.execute(
            delete(TierBlock).where(_BLOCK.width_seconds == width, _BLOCK.day == day)
        )
        rows = _rows(arrays, width, day)
        if rows and connection.dialect.name == "postgresql":
            _copy(connection, rows)  # one stream: quicker than executemany
        elif rows:
            connection.execute(insert(TierBlock), rows)
        written += len(rows)
        day += _DAY
    return written


_Arrays = dict[tuple[str, str, str], dict[str, np.ndarray]]
_NAMES = ("width_seconds", "metric_type", "host", "path", "day", *COLUMNS.values())


def _copy(connection: Connection, rows: list[dict[str, Any]]) -> None:
    driver: Any = connection.connection.driver_connection
    statement = f"COPY {TierBlock.__tablename__} ({', '.join(_NAMES)}) FROM STDIN"
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row([row[name] for name in _NAMES])


def _read_day(connection: Connection, width: int, day: datetime, n: int) -> _Arrays:
    """The blocks of one width and day, decoded (a leaf's NULL counts: its samples)."""
    stmt = select(
        _BLOCK.metric_type,
        _BLOCK.host,
        _BLOCK.path,
        *[getattr(_BLOCK, c) for c in COLUMNS.values()],
    ).where(_BLOCK.width_seconds == width, _BLOCK.day == day)
    found = connection.execute(stmt).all()
    arrays: _Arrays = {}
    for mt, host, path, *data in sorted(found, key=lambda r: r[2] != SAMPLES):
        columns = {c: unpack(d, n) for c, d in zip(COLUMNS.values(), data, strict=True)}
        if path != SAMPLES and data[0] is None:
            samples = arrays.get((mt, host, SAMPLES))
            if samples is not None:
                columns["counts"] = samples["counts"].copy()
        arrays[mt, host, path] = columns
    return arrays


def _fill(arrays: _Arrays, docs: Sequence[Row], day: datetime, width: int, n: int) -> None:
    def columns(key: tuple[str, str, str]) -> dict[str, np.ndarray]:
        found = arrays.get(key)
        if found is None:
            found = arrays[key] = {c: np.full(n, np.nan) for c in COLUMNS.values()}
        return found

    for ts, mt, doc in docs:
        slot = int((ts - day).total_seconds()) // width
        host = host_of(doc)
        meta = doc.get(ROLLUP_KEY)
        if not isinstance(meta, dict):
            continue
        columns((mt, host, SAMPLES))["counts"][slot] = float(meta.get("samples", 0))
        for stat, column in COLUMNS.items():
            tree = meta.get(stat)
            if isinstance(tree, dict):
                for path, value in flatten(tree).items():
                    columns((mt, host, path))[column][slot] = value


def _rows(arrays: _Arrays, width: int, day: datetime) -> list[dict[str, Any]]:
    rows = []
    for (mt, host, path), columns in arrays.items():
        if all(np.isnan(v).all() for v in columns.values()):
            continue
        row: dict[str, Any] = {
            "width_seconds": width,
            "metric_type": mt,
            "host": host,
            "path": path,
            "day": day,
        }
        samples = arrays.get((mt, host, SAMPLES))
        for column, values in columns.items():
            if np.isnan(values).all():
                row[column] = None
            elif (
                column == "counts"
                and path != SAMPLES
                and samples is not None
                and np.array_equal(values, samples["counts"], equal_nan=True)
            ):
                row[column] = None  # the usual case: the leaf is in every sample
            else:
                row[column] = pack(values)
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------
# Reading


def bucket_rows(
    connection: Connection,
    paths: Sequence[str],
    filters: Filters,
    width_seconds: int,
    stats: Sequence[str],
    by_host: bool,
) -> pd.DataFrame | None:
    """The view buckets of ``width_seconds`` that the tier rows ``filters`` selects (a
    plan's ``tiers``: its width, range and excluded spans) make, read from the blocks.

    Columns as ``rollup.sql.pg_buckets`` returns them for those tier rows: ``bucket_us``,
    ``host`` (``""`` unless ``by_host``), ``intervals`` (none), ``samples``, ``nrows`` (0)
    and ``m<i>_<stat>``. None when a statistic is not in a block (``first``, ``last``).
    """
    if not set(stats) <= set(COLUMNS) or filters.tier_width is None:
        return None
    width = filters.tier_width
    n = slots(width)
    wanted = ["count", *[s for s in COLUMNS if s != "count" and s in stats]]
    stmt = select(
        _BLOCK.path,
        _BLOCK.host,
        _BLOCK.day,
        *[getattr(_BLOCK, COLUMNS[s]) for s in wanted],
    ).where(
        _BLOCK.width_seconds == width,
        _BLOCK.metric_type == filters.metric_type,
        _BLOCK.path.in_([SAMPLES, *paths]),
    )
    if filters.start is not None:
        stmt = stmt.where(_BLOCK.day >= bucket_start(filters.start, _DAY))
    if filters.end is not None:
        stmt = stmt.where(_BLOCK.day < filters.end)
    if filters.host is not None:
        stmt = stmt.where(_BLOCK.host == filters.host)
    found = connection.execute(stmt).all()
    keys = sorted({(host, as_utc(day)) for path, host, day, *_ in found if path == SAMPLES})
    at = {key: k for k, key in enumerate(keys)}
    samples = np.full((len(keys), n), np.nan)
    column_of: dict[str, list[int]] = defaultdict(list)
    for i, path in enumerate(paths):
        column_of[path].append(i)
    values = {
        (i, stat): np.full((len(keys), n), np.nan) for i in range(len(paths)) for stat in stats
    }
    # the blobs of each matrix gathered first, then decoded in one call per matrix
    gathered: dict[tuple[int, str], tuple[list[int], list[bytes]]] = defaultdict(lambda: ([], []))
    for path, host, day, *data in found:
        k = at.get((host, as_utc(day)))
        if k is None:
            continue
        if path == SAMPLES:
            gathered[-1, "count"][0].append(k)
            gathered[-1, "count"][1].append(data[0])
            continue
        for stat, blob in zip(wanted, data, strict=True):
            if stat not in stats or (blob is None and stat != "count"):
                continue  # not asked for, or no value all day
            for i in column_of[path]:
                rows, blobs = gathered[i, stat]
                rows.append(k)
                blobs.append(blob)  # None counts: the leaf's are its samples
    ks, blobs = gathered.pop((-1, "count"), ([], []))
    samples[ks] = _stack(blobs, n)
    for (i, stat), (ks, blobs) in gathered.items():
        if stat == "count":
            nulls = [k for k, blob in zip(ks, blobs, strict=True) if blob is None]
            values[i, stat][nulls] = samples[nulls]
            ks = [k for k, blob in zip(ks, blobs, strict=True) if blob is not None]
            blobs = [blob for blob in blobs if blob is not None]
        values[i, stat][ks] = _stack(blobs, n)
    return _aggregate(keys, samples, values, filters, width, width_seconds, by_host)


def _aggregate(
    keys: list[tuple[str, datetime]],
    samples: np.ndarray,
    values: dict[tuple[int, str], np.ndarray],
    filters: Filters,
    width: int,
    width_seconds: int,
    by_host: bool,
) -> pd.DataFrame:
    n = samples.shape[1]
    days = np.array([epoch_microseconds(day) for _, day in keys], dtype=np.int64)
    times = days[:, None] + np.arange(n, dtype=np.int64)[None, :] * (width * _MICROS)
    keep = ~np.isnan(samples)
    if filters.start is not None:
        keep &= times >= epoch_microseconds(filters.start)
    if filters.end is not None:
        keep &= times < epoch_microseconds(filters.end)
    hosts = np.array([host for host, _ in keys], dtype=object)
    for span in filters.exclude:
        inside = np.ones_like(keep)
        if span.start is not None:
            inside &= times >= epoch_microseconds(span.start)
        if span.end is not None:
            inside &= times < epoch_microseconds(span.end)
        if span.hosts is not None:
            inside &= np.isin(hosts, list(span.hosts))[:, None]
        keep &= ~inside
    rows, cols = np.nonzero(keep)
    frame = pd.DataFrame(
        {
            "bucket_us": bucket_start_ticks(times[rows, cols], width_seconds * _MICROS),
            "host": hosts[rows] if by_host else "",
            "samples": samples[rows, cols],
            **{f"m{i}_{stat}": v[rows, cols] for (i, stat), v in values.items()},
        }
    )
    law = {f"m{i}_{s}": POOL_LAW[s] for (i, s) in values}  # the pooling law, one place
    sums = ["samples", *[c for c, how in law.items() if how == "sum"]]
    grouped = frame.groupby(["bucket_us", "host"], sort=True)
    merged = pd.concat(
        [
            grouped[sums].sum(min_count=1),  # a sum over no values is missing, not 0
            grouped[[c for c, how in law.items() if how == "min"]].min(),
            grouped[[c for c, how in law.items() if how == "max"]].max(),
        ],
        axis=1,
    ).reset_index()
    merged["intervals"] = None
    merged["nrows"] = 0
    order = ["bucket_us", "host", "intervals", "samples", "nrows"]
    order += [f"m{i}_{s}" for (i, s) in values]
    return merged[order].sort_values(["host", "bucket_us"], kind="stable", ignore_index=True)


__all__ = ["COLUMNS", "SAMPLES", "bucket_rows", "pack", "slots", "unpack", "write"]
