"""Open the explorer's database: one clear error when it cannot be used, never a traceback."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import psycopg
from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc

from metrics_toolkit.errors import DatabaseError
from metrics_toolkit.store.db import check_connection, is_sqlite, make_engine, mask_url, resolve_url
from metrics_toolkit.store.migrate import ensure_schema

#: What a database failure can raise: SQLAlchemy's errors, and the drivers' own where the
#: toolkit talks to a driver directly (PostgreSQL COPY, SQLite bulk writes).
DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.SQLAlchemyError,
    psycopg.Error,
    sqlite3.Error,
)

#: ``off`` here makes every view read the snapshots of its range, never the rollup tiers
#: (the same numbers, slower): the baseline of ``benchmarks/bench_explorer.py``, and a way
#: around tiers in doubt.
TIERS_ENV = "METRICS_TOOLKIT_EXPLORER_TIERS"


def database_url(url: str | None = None) -> str:
    """The URL the explorer uses (argument, then the environment, then ``./metrics.db``).

    Returned with its password, for :func:`open_database` only; show :func:`database_label`.
    """
    return resolve_url(url).render_as_string(hide_password=False)


def database_label(url: str | None = None) -> str:
    """The URL as it may be shown: password masked, no driver name."""
    return mask_url(resolve_url(url))


def open_database(url: str | None = None) -> Engine:
    """A connected engine whose schema is current; :class:`DatabaseError` otherwise.

    Unlike the CLI, a SQLite file that does not exist is an error rather than created: a
    typo in the path would otherwise open an empty explorer. A new empty database (an
    existing empty file, or a PostgreSQL database without tables) gets the schema.
    """
    resolved = resolve_url(url)
    if is_sqlite(resolved):
        database = resolved.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            path = Path(database).expanduser()
            if not path.exists():
                msg = (
                    f"Cannot use database {mask_url(resolved)}: the file {path} does not exist. "
                    "Create it with `metrics-toolkit db upgrade` (or `make demo`), or point "
                    "METRICS_TOOLKIT_DATABASE_URL at an existing database."
                )
                raise DatabaseError(msg)
    engine = make_engine(resolved)
    try:
        check_connection(engine)
        ensure_schema(engine)
    except DatabaseError:
        engine.dispose()
        raise
    return engine


def tiers_on() -> bool:
    """Whether the explorer's views read the rollup tiers: yes unless :data:`TIERS_ENV` is
    ``off``."""
    return os.environ.get(TIERS_ENV, "").strip().lower() != "off"
