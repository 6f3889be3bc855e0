"""Read a large PostgreSQL range over several connections at once, from one snapshot.

A full-resolution read is one backend parsing every document: on a multi-core server the
other cores sit idle. Like ConnectorX's partitioned reads and ``pg_dump --jobs``, the range
is cut into time slices, each read by its own connection in its own thread, and every
connection imports the caller's snapshot (``pg_export_snapshot`` / ``SET TRANSACTION
SNAPSHOT``), so the parts together are exactly what one query would have seen, even while
collectors write. The slices are consecutive in time, so concatenating the parts keeps the
rows in timestamp order.

Used only where it is safe and pays: the caller's transaction has written nothing (an
imported snapshot would not see those writes), and the planner expects many rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Connection

from metrics_toolkit.rollup.sql import Filters, pg_estimate_rows

T = TypeVar("T")

#: Fewer expected rows than this are read by one query: a second connection would cost
#: more than it saves.
MIN_ROWS_PER_PART = 100_000
MAX_PARTS = 4
_SNAPSHOT_ID = re.compile(r"^[0-9A-Fa-f]+(-[0-9A-Fa-f]+)+$")


def plan_parts(
    connection: Connection,
    filters: Filters,
    time_range: Callable[[], tuple[datetime, datetime] | None],
) -> list[Filters]:
    """The filters of each part (one part: no parallel read).

    ``time_range`` gives the first and last matching timestamps (asked only when the range
    is open and large).
    """
    if (
        connection.dialect.name != "postgresql"
        or MAX_PARTS < 2
        or connection.connection.driver_connection.autocommit  # type: ignore[union-attr]
        or connection.exec_driver_sql("SELECT txid_current_if_assigned()").scalar() is not None
    ):
        return [filters]
    query = pg_estimate_rows(filters)
    driver = connection.connection.driver_connection
    with driver.cursor() as cursor:  # type: ignore[union-attr]
        cursor.execute(query.sql, query.params)
        plan = cursor.fetchone()[0]
    estimated = int(plan[0]["Plan"]["Plan Rows"])
    parts = min(MAX_PARTS, estimated // MIN_ROWS_PER_PART)
    if parts < 2:
        return [filters]
    lo, hi = filters.start, filters.end
    if lo is None or hi is None:
        found = time_range()
        if found is None:
            return [filters]
        lo, hi = lo or found[0], hi or found[1]
    step = (hi - lo) / parts
    if step.total_seconds() <= 0:
        return [filters]
    bounds = [lo + step * i for i in range(1, parts)]
    starts = [filters.start, *bounds]
    ends = [*bounds, filters.end]
    return [replace(filters, start=s, end=e) for s, e in zip(starts, ends, strict=True)]


def read_parts(
    connection: Connection,
    parts: list[Filters],
    read: Callable[[Connection, Filters], T],
) -> list[T]:
    """``read`` each part: in this connection when there is one, else one connection each.

    Every extra connection runs a read-only REPEATABLE READ transaction on the snapshot
    exported by ``connection``'s transaction.
    """
    if len(parts) == 1:
        return [read(connection, parts[0])]
    snapshot = connection.exec_driver_sql("SELECT pg_export_snapshot()").scalar()
    if not isinstance(snapshot, str) or not _SNAPSHOT_ID.match(snapshot):
        raise RuntimeError(f"unexpected snapshot id {snapshot!r}")
    engine = connection.engine

    def run(part: Filters) -> T:
        with engine.connect() as worker:
            worker = worker.execution_options(isolation_level="REPEATABLE READ")
            with worker.begin():
                # SET TRANSACTION takes no bind parameters; the id was checked above.
                worker.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
                worker.exec_driver_sql("SET TRANSACTION READ ONLY")
                return read(worker, part)

    with ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="load-frame") as pool:
        return list(pool.map(run, parts))
