"""A throw-away SQLite copy of part of a database, to try the archive policy on safely.

Notebook ``02-rollups`` uses it to run the policy on a copy and compare the 1h view before
and after, without touching the database it reads from (SQLite or PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from metrics_toolkit.errors import InvalidArgument
from metrics_toolkit.frames.load import iter_rows
from metrics_toolkit.frames.sources import Source
from metrics_toolkit.rollup.rule import Row
from metrics_toolkit.store.db import make_engine
from metrics_toolkit.store.ingest import write_snapshots
from metrics_toolkit.store.migrate import upgrade

SANDBOX_FILE = "sandbox.db"


def sandbox_copy(
    source: Source,
    directory: str | Path,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    metric_type: str = "aggregated",
) -> Engine:
    """Copy the snapshots of ``[start, end)`` into a new SQLite file in ``directory``.

    Returns an engine on the copy (schema at head, no users, the default policy). The
    directory must not already hold a sandbox, so nothing is overwritten by accident.
    """
    path = Path(directory) / SANDBOX_FILE
    if path.exists():
        msg = f"{path} already exists: give sandbox_copy an empty directory."
        raise InvalidArgument(msg)
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)

    def rows() -> Iterator[list[Row]]:
        yield from iter_rows(source, start, end, metric_type=metric_type)

    write_snapshots(engine, rows())
    return engine
