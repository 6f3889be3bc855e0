"""Engines, sessions and database URLs: the only module that knows about dialects.

The URL comes from, in order: an explicit argument (the CLI's ``--database-url``),
``METRICS_TOOLKIT_DATABASE_URL``, ``DATABASE_URL``, and finally a SQLite file
``metrics.db`` in the working directory, which needs no server at all.

Plain ``postgresql://`` URLs use psycopg 3; ``sqlite://`` URLs use the standard library
driver (and ``aiosqlite`` for the async engine). Passwords never appear in messages:
use :func:`mask_url`.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, sessionmaker

from metrics_toolkit.errors import DatabaseError, InvalidDatabaseURL

ENV_VARS = ("METRICS_TOOLKIT_DATABASE_URL", "DATABASE_URL")
DEFAULT_SQLITE_FILE = "metrics.db"
SQLITE_BUSY_TIMEOUT_MS = 30_000

_SYNC_DRIVERS = {"postgresql": "psycopg", "sqlite": "pysqlite"}
_ASYNC_DRIVERS = {"postgresql": "psycopg", "sqlite": "aiosqlite"}
_ALIASES = {"postgres": "postgresql"}


def resolve_url(url: str | URL | None = None) -> URL:
    """The database URL to use, as a SQLAlchemy :class:`URL` with the sync driver set.

    Raises :class:`InvalidDatabaseURL` (with the password masked) when it cannot be parsed
    or names a backend other than SQLite or PostgreSQL.
    """
    if url is None:
        url = next((os.environ[v] for v in ENV_VARS if os.environ.get(v)), None)
    if url is None:
        url = f"sqlite:///{DEFAULT_SQLITE_FILE}"
    return _with_driver(_parse(url), _SYNC_DRIVERS)


def _parse(url: str | URL) -> URL:
    if isinstance(url, URL):
        return url
    text_url = str(url)
    try:
        parsed = make_url(text_url.strip())
    except (sa_exc.ArgumentError, ValueError) as error:
        msg = (
            f"Invalid database URL {_mask_text(text_url)!r}: {error}. Expected e.g. "
            "sqlite:///metrics.db or postgresql://user:password@host:5432/dbname"
        )
        raise InvalidDatabaseURL(msg) from None
    if parsed.password is not None and text_url.partition("://")[2].count("@") > 1:
        msg = (
            f"Invalid database URL {_mask_text(text_url)!r}: more than one '@'; write an '@' "
            "inside the user name or password as %40."
        )
        raise InvalidDatabaseURL(msg)
    return parsed


def _with_driver(url: URL, drivers: dict[str, str]) -> URL:
    backend = _ALIASES.get(url.get_backend_name(), url.get_backend_name())
    if backend not in drivers:
        msg = (
            f"Unsupported database {mask_url(url)!r}: metrics-toolkit supports sqlite:/// "
            "and postgresql:// URLs"
        )
        raise InvalidDatabaseURL(msg)
    return url.set(drivername=f"{backend}+{drivers[backend]}")


def async_url(url: str | URL | None = None) -> URL:
    """The same database with its async driver (psycopg async, aiosqlite)."""
    return _with_driver(resolve_url(url), _ASYNC_DRIVERS)


#: Query parameters that carry a secret (libpq reads ``?password=``).
_SECRET_PARAMETERS = frozenset({"password", "sslpassword", "passfile"})


def mask_url(url: str | URL) -> str:
    """The URL as text with any password replaced by ``***`` (and no driver name).

    No part of a password is ever shown, whatever characters it holds. An unescaped ``@``
    in it makes SQLAlchemy read the rest as the host or database (``root:SECRET@PW@host``),
    so a URL with a password and more than one ``@`` is masked from ``://`` to its last
    ``@``, as is text that does not parse at all.
    """
    if isinstance(url, URL):
        shown = unquote(url.render_as_string(hide_password=True))  # rendering escapes @
        if url.password is not None and shown.partition("://")[2].count("@") > 1:
            return _mask_text(shown, url.get_backend_name())
        text_url = url.render_as_string(hide_password=False)
    else:
        text_url = url
    try:
        parsed = make_url(text_url.strip())
    except (sa_exc.ArgumentError, ValueError):
        return _mask_text(text_url)
    backend = parsed.get_backend_name()
    if parsed.password is not None and text_url.partition("://")[2].count("@") > 1:
        return _mask_text(text_url, backend)
    secret = {k: "***" for k in parsed.query if k.lower() in _SECRET_PARAMETERS}
    if secret:
        parsed = parsed.update_query_dict(secret)
    text = parsed.set(drivername=backend).render_as_string(hide_password=True)
    return text.replace("%2A%2A%2A", "***")  # the query masks set above, not URL-escaped


def _mask_text(url: str, scheme: str | None = None) -> str:
    """All between ``://`` and the last ``@`` (user and password) becomes ``***``."""
    given, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    _, _, host = rest.rpartition("@")
    return f"{scheme or given}://***@{host}"


def is_sqlite(bind: Engine | URL) -> bool:
    url = bind.url if isinstance(bind, Engine) else bind
    return url.get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


#: JSON documents reach SQLite as UTF-8 text, not ``\\uXXXX`` escapes: SQLite's JSON paths
#: match keys by their stored text, so an escaped non-ASCII key (a mount or sensor name)
#: would be invisible to ``json_extract``. Non-finite numbers stay as json.dumps writes them.
#: Compact separators, as ingest writes snapshots: a tier document is 7 % smaller.
sqlite_json = partial(json.dumps, ensure_ascii=False, separators=(",", ":"))


def _prepare_sqlite_file(url: URL) -> None:
    database = url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        folder = Path(database).parent
        try:
            if "\0" in database:
                raise ValueError("a NUL character in the path")
            folder.expanduser().mkdir(parents=True, exist_ok=True)
        except (OSError, ValueError, RuntimeError) as error:  # a file in the way, no access...
            reason = getattr(error, "strerror", None) or str(error)
            msg = (
                f"Cannot use database {mask_url(url)}: its folder {str(folder)[:200]!r} cannot "
                f"be created ({reason}); give a path in a folder you can write."
            )
            raise DatabaseError(msg) from None


def make_engine(url: str | URL | None = None, **kwargs: Any) -> Engine:
    """A sync engine for ``url`` (see :func:`resolve_url`) with sensible settings.

    SQLite gets WAL journaling, foreign keys and a 30 s busy timeout, so a collector and
    a reader can share one file. PostgreSQL connections are checked before reuse.
    """
    resolved = resolve_url(url)
    if is_sqlite(resolved):
        _prepare_sqlite_file(resolved)
        kwargs.setdefault("json_serializer", sqlite_json)
        engine = create_engine(resolved, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("connect_args", {"connect_timeout": 10})
    return create_engine(resolved, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """A session factory; the caller owns each session's scope and transaction."""
    return sessionmaker(engine, expire_on_commit=False)


def make_async_engine(url: str | URL | None = None, **kwargs: Any) -> AsyncEngine:
    """The async engine of the seed's pattern (psycopg async or aiosqlite)."""
    resolved = async_url(url)
    if is_sqlite(resolved):
        _prepare_sqlite_file(resolved)
        kwargs.setdefault("json_serializer", sqlite_json)
        engine = create_async_engine(resolved, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(resolved, **kwargs)


def make_async_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """``AsyncSessionLocal`` of the seed: ``async_sessionmaker(..., expire_on_commit=False)``."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


#: The seed's module-level ``engine`` and ``AsyncSessionLocal``, made on first use from the
#: configured URL (see :func:`resolve_url`): importing this module opens no connection.
_DEFAULT_NAMES = ("engine", "AsyncSessionLocal")
_defaults: dict[str, Any] = {}
_defaults_lock = threading.Lock()


def _default(name: str) -> Any:
    with _defaults_lock:
        if not _defaults:
            engine = make_async_engine()
            _defaults.update(engine=engine, AsyncSessionLocal=make_async_sessionmaker(engine))
        return _defaults[name]


def __getattr__(name: str) -> Any:
    """``engine`` and ``AsyncSessionLocal`` of the seed, created lazily on first access."""
    if name in _DEFAULT_NAMES:
        return _default(name)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


async def dispose_default_engine() -> None:
    """Close the module-level engine's connections; the next use makes a new one, from the
    URL configured then (an application's shutdown hook, or a test changing the URL)."""
    with _defaults_lock:
        engine = _defaults.pop("engine", None)
        _defaults.clear()
    if engine is not None:
        await engine.dispose()


async def get_db() -> AsyncIterator[AsyncSession]:
    """The seed's dependency: one async session per request, closed afterwards.

    Used as ``db: AsyncSession = Depends(get_db)``; the session comes from the module-level
    ``AsyncSessionLocal`` (the configured database, created on first use).
    """
    AsyncSessionLocal: async_sessionmaker[AsyncSession] = _default("AsyncSessionLocal")
    async with AsyncSessionLocal() as session:
        yield session


def describe_error(error: BaseException) -> str:
    """One line saying what a driver error means, without the SQL or a traceback."""
    original = getattr(error, "orig", None) or error
    lines = [line.strip() for line in str(original).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(original).__name__


def check_connection(engine: Engine) -> None:
    """Open and close one connection; raise :class:`DatabaseError` in one clear line."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DatabaseError) as error:
        msg = f"Cannot use database {mask_url(engine.url)}: {describe_error(error)}"
        raise DatabaseError(msg) from None


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on error."""
    with make_sessionmaker(engine)() as session, session.begin():
        yield session
