"""Shared fixtures: real SQLite files and the real PostgreSQL server, never mocks.

Database tests take ``db_url`` (or ``engine`` / ``session``), which runs them once on a
SQLite file and once on PostgreSQL. The PostgreSQL database named by
``METRICS_TOOLKIT_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/
metrics_toolkit_test``) is dropped and re-created for each test session and emptied
between tests. Without a reachable server those tests skip, except in CI (``CI=true``),
where an unreachable server is a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from metrics_toolkit.store.db import (
    make_async_engine,
    make_async_sessionmaker,
    make_engine,
    mask_url,
    resolve_url,
)
from metrics_toolkit.store.migrate import upgrade

DEFAULT_TEST_POSTGRES = "postgresql://postgres@127.0.0.1:5432/metrics_toolkit_test"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def postgres_test_url() -> str:
    return os.environ.get("METRICS_TOOLKIT_TEST_POSTGRES", DEFAULT_TEST_POSTGRES)


def recreate_database(url: str) -> None:
    """Drop and create the database of ``url`` (a test database: its name is checked)."""
    target = resolve_url(url)
    name = target.database
    assert name and name.replace("_", "").isalnum(), f"unsafe test database name {name!r}"
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A migrated, empty PostgreSQL database for this test session."""
    url = postgres_test_url()
    try:
        recreate_database(url)
    except sa_exc.OperationalError as error:
        reason = (
            f"PostgreSQL not reachable at {mask_url(url)} ({str(error.orig).strip()[:200]}). "
            "Start it (pg_ctlcluster 15 main start) or set METRICS_TOOLKIT_TEST_POSTGRES."
        )
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def empty_postgres(url: str) -> None:
    engine = make_engine(url)
    try:
        tables = [t for t in inspect(engine).get_table_names() if t != "alembic_version"]
        if tables:
            with engine.begin() as connection:
                names = ", ".join(f'"{t}"' for t in tables)
                connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "metrics.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """A migrated, empty database: a SQLite file, then PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    url = str(request.getfixturevalue("postgres_url"))
    empty_postgres(url)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
async def async_session_factory(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_async_engine(db_url)
    yield make_async_sessionmaker(engine)
    await engine.dispose()


def backend_of(url: str) -> str:
    return make_url(url).get_backend_name()
