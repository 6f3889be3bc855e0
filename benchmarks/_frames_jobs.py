"""One measurement of bench_frames, run alone in a child process (for its time and peak RSS).

    python -m benchmarks._frames_jobs NAME URL SEED_ROWS

Imports only what the measured path needs, so peak RSS compares like with like; the job
``imports`` measures the interpreter with those imports and nothing else.
"""

from __future__ import annotations

import io
import json
import sys
import time
from typing import Any

import pandas as pd
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from benchmarks.metric_sets import TEN_METRICS
from metrics_toolkit.frames.load import load_frame
from metrics_toolkit.store.db import make_engine
from metrics_toolkit.store.models import MetricsSnapshot

M = TEN_METRICS


def _pg_leaf(path: str) -> str:
    a, b = path.split(".")
    return f"(metric_data->'{a}'->>'{b}')::float8"


def _sqlite_leaf(path: str) -> str:
    return f"json_extract(metric_data, '$.{path}')"


def job(name: str, url: str, seed_rows: int) -> dict[str, Any]:
    """One measurement, run inside a child process."""
    engine = make_engine(url)
    start = time.perf_counter()
    if name == "ours_full":
        frame = load_frame(engine, metrics=M)
    elif name == "ours_1h":
        frame = load_frame(engine, metrics=M, interval="1h")
    elif name in ("seed_full", "seed_1h"):
        with Session(engine) as session:
            snapshots = (
                session.execute(
                    select(MetricsSnapshot).order_by(MetricsSnapshot.timestamp).limit(seed_rows)
                )
                .scalars()
                .all()
            )
            frame = pd.json_normalize([s.metric_data for s in snapshots])
            frame.index = pd.DatetimeIndex([s.timestamp for s in snapshots], name="timestamp")
            frame = frame[M]
        if name == "seed_1h":
            frame = frame.resample("1h").mean()
    elif name == "copy_full":
        columns = ", ".join(_pg_leaf(p) for p in M)
        raw = engine.raw_connection()
        buffer = io.BytesIO()
        with (
            raw.cursor() as cursor,
            cursor.copy(  # type: ignore[attr-defined]
                f"COPY (SELECT timestamp, {columns} FROM metrics_snapshots ORDER BY timestamp) "
                "TO STDOUT WITH (FORMAT csv)"
            ) as copy,
        ):
            for block in copy:
                buffer.write(block)
        buffer.seek(0)
        frame = pd.read_csv(buffer, header=None, names=["timestamp", *M], index_col=0)
        raw.close()
    elif name == "datebin_1h":
        columns = ", ".join(f"avg({_pg_leaf(p)})" for p in M)
        sql = (
            "SELECT date_bin('1 hour', timestamp, TIMESTAMPTZ '1970-01-01+00') AS b, "
            f"{columns} FROM metrics_snapshots GROUP BY 1 ORDER BY 1"
        )
        with engine.connect() as connection:
            frame = pd.DataFrame(connection.execute(text(sql)).all())
    elif name == "sqlite_full_sql":
        columns = ", ".join(_sqlite_leaf(p) for p in M)
        with engine.connect() as connection:
            frame = pd.DataFrame(
                connection.execute(
                    text(f"SELECT timestamp, {columns} FROM metrics_snapshots ORDER BY timestamp")
                ).all()
            )
    elif name == "sqlite_1h_sql":
        columns = ", ".join(f"avg({_sqlite_leaf(p)})" for p in M)
        with engine.connect() as connection:
            frame = pd.DataFrame(
                connection.execute(
                    text(
                        "SELECT CAST(strftime('%s', timestamp) AS INTEGER) / 3600 AS b, "
                        f"{columns} FROM metrics_snapshots GROUP BY 1 ORDER BY 1"
                    )
                ).all()
            )
    elif name == "imports":
        frame = pd.DataFrame()
    else:
        raise SystemExit(f"unknown job {name}")
    return {"seconds": time.perf_counter() - start, "rows": len(frame), "peak_bytes": _vm_hwm()}


def _vm_hwm() -> int:
    """This process's own peak RSS (``ru_maxrss`` of a forked child counts the parent's pages)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


if __name__ == "__main__":
    print(json.dumps(job(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
