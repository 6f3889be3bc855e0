"""Fixtures of the load suite: the mode, and databases of its own.

The PostgreSQL fleet writes into ``<test database>_load`` (``mt_h1_load`` next to
``mt_h1``), dropped and re-created for each scenario, so its size and its rows are the
run's alone. Without a reachable server the scenario skips, except in CI.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc

from metrics_toolkit.store.db import make_engine, mask_url, resolve_url
from metrics_toolkit.store.migrate import upgrade
from tests.conftest import IN_CI, postgres_test_url, recreate_database
from tests.load import modes


@pytest.fixture(scope="session")
def load_mode() -> modes.LoadMode:
    return modes.current()


@pytest.fixture
def load_postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one load scenario."""
    base = resolve_url(postgres_test_url())
    url = base.set(database=f"{base.database}_load").render_as_string(hide_password=False)
    try:
        recreate_database(url)
    except sa_exc.OperationalError as error:
        reason = f"PostgreSQL not reachable at {mask_url(url)} ({str(error.orig).strip()[:200]})"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url


@pytest.fixture
def load_sqlite_url(tmp_path: Path) -> str:
    """A migrated SQLite file (WAL) of its own."""
    url = f"sqlite:///{tmp_path / 'metrics.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url
