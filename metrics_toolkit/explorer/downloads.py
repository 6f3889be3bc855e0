"""The explorer's downloads: the current frame as CSV or Parquet bytes.

Columns are flattened to ``stat(metric)`` (``mean(cpu.usage_percent)``), which needs no
escaping whatever characters a metric path holds, and the index becomes ordinary columns
(``timestamp`` in UTC, and ``host`` when hosts are shown apart). The Parquet file also keeps
the frame's ``interval``, ``stored_intervals`` and ``notes`` in its schema metadata.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

METADATA_KEY = b"metrics_toolkit"


def flat_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with ``stat(metric)`` columns and the index as leading columns."""
    flat = frame.copy()
    if isinstance(flat.columns, pd.MultiIndex):
        flat.columns = [f"{stat}({metric})" for metric, stat in flat.columns]
    else:
        flat.columns = [str(c) for c in flat.columns]
    return flat.reset_index()


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """UTF-8 CSV with a header row; timestamps in ISO 8601 (``2026-01-05T12:00:00+00:00``)."""
    flat = flat_frame(frame)
    for column in flat.columns:
        if isinstance(flat[column].dtype, pd.DatetimeTZDtype):
            flat[column] = [stamp.isoformat() for stamp in flat[column]]
    text: str = flat.to_csv(index=False)
    return text.encode("utf-8")


def to_parquet_bytes(frame: pd.DataFrame) -> bytes:
    """A Parquet file (zstd); ``frame.attrs`` goes to the ``metrics_toolkit`` metadata key."""
    table = pa.Table.from_pandas(flat_frame(frame), preserve_index=False)
    attrs: dict[str, Any] = {
        key: value
        for key, value in frame.attrs.items()
        if key in ("interval", "stored_intervals", "notes", "method")
    }
    metadata = dict(table.schema.metadata or {})
    metadata[METADATA_KEY] = json.dumps(attrs, default=str).encode()
    table = table.replace_schema_metadata(metadata)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def parquet_attrs(data: bytes) -> dict[str, Any]:
    """The frame attributes stored by :func:`to_parquet_bytes`."""
    schema = pq.read_schema(io.BytesIO(data))
    raw = (schema.metadata or {}).get(METADATA_KEY)
    return dict(json.loads(raw)) if raw else {}
