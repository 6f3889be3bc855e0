"""A PostgreSQL result as NumPy columns, through ``COPY ... TO STDOUT (FORMAT binary)``.

For a result whose every column is a fixed-width, non-null ``timestamptz``, ``float8`` or
``int8``, each binary COPY row has the same size, so the whole stream is one NumPy
structured array: no text formatting on the server (``float8out`` is most of a text COPY's
cost), no parsing on the client. Callers make NULLs impossible (``coalesce(x, 'NaN')``).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from metrics_toolkit.errors import MetricsToolkitError

Kind = Literal["timestamptz", "float8", "int8"]
SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
#: PostgreSQL counts timestamps in microseconds from 2000-01-01 UTC.
PG_EPOCH_US = 946_684_800_000_000
_CODES: dict[Kind, str] = {"timestamptz": ">i8", "float8": ">f8", "int8": ">i8"}


def copy_columns(
    driver: Any, sql: str, params: Mapping[str, Any], columns: Sequence[tuple[str, Kind]]
) -> dict[str, np.ndarray]:
    """Run ``sql`` (a SELECT with ``%(name)s`` placeholders) and return its columns.

    :param driver: a psycopg 3 connection.
    :param columns: each result column's name and kind, in order. ``timestamptz`` columns
        come back as int64 epoch microseconds (UTC), the others as float64 / int64.
    """
    return parse(copy_out(driver, sql, params, "binary"), columns)


def copy_out(
    driver: Any, sql: str, params: Mapping[str, Any], form: Literal["binary", "csv"]
) -> bytearray:
    """The whole ``COPY (sql) TO STDOUT`` stream of a psycopg 3 connection, in ``form``."""
    buffer = bytearray()
    with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT {form})", params) as copy,
    ):
        for block in copy:
            buffer += block
    return buffer


def parse(data: bytes | bytearray, columns: Sequence[tuple[str, Kind]]) -> dict[str, np.ndarray]:
    """Decode one binary COPY stream of fixed-width, non-null columns."""
    if bytes(data[: len(SIGNATURE)]) != SIGNATURE or len(data) < len(SIGNATURE) + 10:
        raise MetricsToolkitError("Not a PostgreSQL binary COPY stream")
    extension = struct.unpack_from(">I", data, len(SIGNATURE) + 4)[0]
    body = memoryview(data)[len(SIGNATURE) + 8 + extension : -2]
    layout = [("fields", ">i2")]
    for i, (_, kind) in enumerate(columns):
        layout += [(f"len{i}", ">i4"), (f"col{i}", _CODES[kind])]
    rows = np.dtype(layout)
    if len(body) % rows.itemsize:
        raise MetricsToolkitError("A binary COPY row is not the expected size (a NULL value?)")
    table = np.frombuffer(body, dtype=rows)
    if len(table) and (
        (table["fields"] != len(columns)).any()
        or any((table[f"len{i}"] != 8).any() for i in range(len(columns)))
    ):
        raise MetricsToolkitError("A binary COPY row holds a NULL or an unexpected field")
    out: dict[str, np.ndarray] = {}
    for i, (name, kind) in enumerate(columns):
        values = table[f"col{i}"].astype(np.float64 if kind == "float8" else np.int64)
        if kind == "timestamptz":
            values += PG_EPOCH_US
        out[name] = values
    return out
