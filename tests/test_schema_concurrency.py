"""First use of a new database by several processes at once: the schema is created once,
under a lock (advisory on PostgreSQL, a file lock on SQLite), and every process goes on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from metrics_toolkit.store.db import make_engine
from metrics_toolkit.store.migrate import current_revision, head_revision
from tests.conftest import postgres_test_url, recreate_database

PROCESSES = 4


def start_together(url: str) -> list[subprocess.CompletedProcess[str]]:
    command = [sys.executable, "-m", "metrics_toolkit", "--database-url", url, "status"]
    env = {**os.environ, "METRICS_TOOLKIT_DATABASE_URL": url}
    started = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(PROCESSES)
    ]
    done = []
    for process in started:
        out, err = process.communicate(timeout=300)
        done.append(subprocess.CompletedProcess(command, process.returncode, out, err))
    return done


def check(url: str) -> None:
    results = start_together(url)
    failed = [r.stderr for r in results if r.returncode != 0]
    assert not failed, failed
    engine = make_engine(url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


@pytest.mark.slow
def test_processes_starting_on_a_new_sqlite_file(tmp_path: Path) -> None:
    check(f"sqlite:///{tmp_path / 'new' / 'metrics.db'}")


@pytest.mark.slow
@pytest.mark.postgres
def test_processes_starting_on_a_new_postgres_database(postgres_url: str) -> None:
    url = make_url(postgres_test_url())
    fresh = url.set(database=f"{url.database}_fresh").render_as_string(hide_password=False)
    recreate_database(fresh)
    check(fresh)
