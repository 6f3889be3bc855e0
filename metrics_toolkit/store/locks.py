"""One-at-a-time locks for jobs that must never interleave (the archive runner).

PostgreSQL: a session-level advisory lock held on a dedicated connection (released by the
server if the process dies). SQLite: an OS file lock beside the database file (released by
the kernel if the process dies). An in-memory SQLite database needs no lock.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout
from sqlalchemy import Engine, text

from metrics_toolkit.errors import MetricsToolkitError


class JobBusy(MetricsToolkitError):
    """Another process is running the same job right now."""


def _key(name: str) -> int:
    # A stable signed 64-bit key per job name (advisory locks take a bigint).
    return zlib.crc32(f"metrics_toolkit:{name}".encode()) - 2**31


@contextmanager
def exclusive(engine: Engine, name: str, *, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the ``name`` lock of this database for the block, or raise :class:`JobBusy`.

    ``wait_seconds`` > 0 waits that long for the other holder to finish.
    """
    busy = JobBusy(
        f"Another '{name}' run holds the lock on this database; it was not started. "
        "Wait for it to finish (or pass a longer --wait)."
    )
    if engine.dialect.name == "postgresql":
        deadline = time.monotonic() + wait_seconds
        with engine.connect() as connection:
            while True:
                got = connection.execute(
                    text("SELECT pg_try_advisory_lock(:k)"), {"k": _key(name)}
                ).scalar()
                connection.commit()
                if got:
                    break
                if time.monotonic() >= deadline:
                    raise busy
                time.sleep(min(0.2, max(deadline - time.monotonic(), 0.01)))
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _key(name)})
                connection.commit()
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    lock = FileLock(str(Path(database).expanduser()) + f".{name}.lock")
    try:
        lock.acquire(timeout=wait_seconds)
    except Timeout:
        raise busy from None
    except OSError as error:  # the lock file beside the database cannot be made
        msg = f"Cannot take the '{name}' lock beside {database[:200]!r}: {error.strerror or error}"
        raise MetricsToolkitError(msg) from None
    try:
        yield
    finally:
        lock.release()
