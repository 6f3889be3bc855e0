"""The archive on S3 (a local moto server on loopback, through s3fs): write, finalize, read."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer
from sqlalchemy import Engine

from metrics_toolkit.archive.store import ArchiveRow, ArchiveStore
from metrics_toolkit.frames.dask import load_dask_frame
from metrics_toolkit.frames.load import load_frame
from metrics_toolkit.store.db import make_engine
from tests.test_archive_source import CASES, END, T0, assert_same, fill_archive

BUCKET = "metrics"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_env(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Credentials and endpoint as a deployment would give them (environment), plus a bucket."""
    import s3fs

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    options: dict[str, Any] = {"client_kwargs": {"endpoint_url": endpoint}, "anon": False}
    fs = s3fs.S3FileSystem(**options, skip_instance_cache=True)
    if not fs.exists(BUCKET):
        fs.mkdir(BUCKET)
    if fs.ls(BUCKET):  # each test starts from an empty bucket
        fs.rm(f"{BUCKET}/*", recursive=True)
    s3fs.S3FileSystem.clear_instance_cache()
    return options


def rows(n: int = 6) -> list[ArchiveRow]:
    t0 = datetime(2026, 1, 5, 23, 58, tzinfo=UTC)
    return [
        ArchiveRow(i, t0 + timedelta(minutes=i), "aggregated",
                   {"host": "h", "cpu": {"usage_percent": float(i)}})
        for i in range(n)
    ]  # fmt: skip


def test_pending_files_are_invisible_until_finalized(s3_env: dict[str, Any]) -> None:
    store = ArchiveStore(f"s3://{BUCKET}/archive", storage_options=s3_env)
    assert not store.is_local and store.files() == []
    pending = store.write_pending(rows(), stem="run1")
    assert len(pending) == 2  # two UTC dates
    assert store.files() == [] and store.pending_files() == pending
    assert list(store.iter_rows()) == []
    store.finalize(pending)
    store.finalize(pending)  # idempotent: the second call finds nothing pending
    assert store.pending_files() == []
    assert [p.name for p in store.files()] == ["part-run1.parquet"] * 2
    got = [r for batch in store.iter_rows() for r in batch]
    assert [r.id for r in got] == list(range(6))
    assert [(p.date.isoformat(), p.rows) for p in store.partitions()] == [
        ("2026-01-05", 2),
        ("2026-01-06", 4),
    ]


def test_a_crash_between_copy_and_delete_is_finished_by_the_next_finalize(
    s3_env: dict[str, Any],
) -> None:
    store = ArchiveStore(f"s3://{BUCKET}/archive", storage_options=s3_env)
    pending = store.write_pending(rows(), stem="run2")
    # What a crash after the copy and before the delete leaves: both objects.
    for path in pending:
        store.fs.copy(str(path), str(store.final_path(path)))
    assert len(store.files()) == 2 and len(store.pending_files()) == 2
    assert sum(len(b) for b in store.iter_rows()) == 6  # readers ignore the pending copies
    store.finalize(pending)
    assert store.pending_files() == [] and sum(len(b) for b in store.iter_rows()) == 6
    orphan = store.write_pending(rows(2), stem="never-committed")
    assert store.discard_pending() == orphan and store.pending_files() == []


def test_policy_runs_write_to_s3_and_load_frame_reads_it(
    s3_env: dict[str, Any], sqlite_template: Path, tmp_path: Path
) -> None:
    shutil.copyfile(sqlite_template, tmp_path / "metrics.db")
    engine: Engine = make_engine(f"sqlite:///{tmp_path / 'metrics.db'}")
    url = f"s3://{BUCKET}/archive"
    try:
        reference = fill_archive(engine, url)  # type: ignore[arg-type]  # a URL, not a Path
    finally:
        engine.dispose()
    assert all(
        str(p).startswith(f"{BUCKET}/archive/metric_type=") for p in ArchiveStore(url).files()
    )
    for name in ("hourly all stats", "daily mean by host", "full resolution"):
        got = load_frame(url, T0, END, **CASES[name])
        assert_same(got, reference[name], name)
    # an explicit store carries its storage options; Dask reads through it too (sync here)
    store = ArchiveStore(url, storage_options=s3_env)
    got = load_dask_frame(store, T0, END, compute=True, **CASES["daily mean by host"])
    assert_same(got, reference["daily mean by host"])
