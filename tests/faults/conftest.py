"""Fixtures of the fault suite: a private PostgreSQL cluster the tests may stop and restart."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from metrics_toolkit.store.db import make_engine
from metrics_toolkit.store.migrate import upgrade
from tests.conftest import IN_CI
from tests.faults.pgcluster import PrivateCluster, find_bindir, missing_reason


@pytest.fixture(scope="session")
def private_cluster() -> Iterator[PrivateCluster]:
    """A PostgreSQL cluster of our own (initdb in a temporary directory, a free port).

    Never the shared server: tests stop and restart this one. Skipped, with the reason,
    where the PostgreSQL server binaries are missing (a failure in CI, which has them).
    """
    reason = missing_reason()
    if reason is not None:
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    bindir = find_bindir()
    assert bindir is not None
    cluster = PrivateCluster(bindir)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def private_db(private_cluster: PrivateCluster) -> str:
    """A fresh, migrated database on the private cluster (which is running)."""
    if not private_cluster.is_running():  # a failed test may have left it stopped
        private_cluster.start()
    url = private_cluster.recreate_database("mt_faults")
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url
