"""load_dask_frame on a real LocalCluster (2 worker processes) equals load_frame."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import dask.dataframe as dd
import pandas as pd
import pytest
from dask.distributed import Client, LocalCluster, get_task_stream

from metrics_toolkit.frames.dask import flat_frame, load_dask_frame
from metrics_toolkit.frames.load import load_frame
from metrics_toolkit.store.db import make_engine
from tests.test_archive_source import CASES, END, METRICS, T0, assert_same, fill_archive

# The database's frames are the reference; "2D" buckets span two date partitions, 6h
# counters need the previous group's last sample.
DASK_CASES = {
    name: CASES[name]
    for name in (
        "hourly all stats",
        "hourly all stats pooled",
        "hourly pooled",
        "daily mean by host",
        "counter by host",
        "counter pooled",
    )
}
WIDE: dict[str, Any] = {
    "metrics": METRICS,
    "interval": "2D",
    "stats": ("mean", "max", "count"),
    "by_host": True,
}


@pytest.fixture(scope="module")
def filled(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> tuple[Path, dict[str, pd.DataFrame]]:
    work = tmp_path_factory.mktemp("dask")
    shutil.copyfile(sqlite_template, work / "metrics.db")
    engine = make_engine(f"sqlite:///{work / 'metrics.db'}")
    try:
        reference = fill_archive(engine, work / "archive")
    finally:
        engine.dispose()
    return work / "archive", reference


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with (
        LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def test_equals_the_database_on_a_local_cluster(
    client: Client, filled: tuple[Path, dict[str, pd.DataFrame]]
) -> None:
    root, reference = filled
    with get_task_stream(client) as stream:
        for name, kwargs in DASK_CASES.items():
            got = load_dask_frame(root, T0, END, compute=True, **kwargs)
            assert isinstance(got, pd.DataFrame)
            assert_same(got, reference[name], name)
            assert got.attrs["stored_intervals"] == reference[name].attrs["stored_intervals"]
            assert got.attrs["notes"] == reference[name].attrs["notes"]
    # the partitions were read by both worker processes, not by this one
    readers = {t["worker"] for t in stream.data if "partition_stats" in t["key"]}
    assert len(readers) == 2


def test_buckets_wider_than_a_partition(
    client: Client, filled: tuple[Path, dict[str, pd.DataFrame]]
) -> None:
    root, _ = filled
    got = load_dask_frame(root, T0, END, compute=True, **WIDE)
    want = load_frame(root, T0, END, **WIDE)
    assert_same(got, want)
    assert len(want) == 2 * 2  # two 2-day buckets per host


def test_lazy_frame_has_known_divisions(
    client: Client, filled: tuple[Path, dict[str, pd.DataFrame]]
) -> None:
    root, reference = filled
    kwargs: dict[str, Any] = DASK_CASES["hourly all stats"]
    lazy = load_dask_frame(root, T0, END, **kwargs)
    assert isinstance(lazy, dd.DataFrame)
    assert lazy.npartitions == 4 and lazy.known_divisions  # one per date
    day = lazy.loc[str((T0 + timedelta(days=1)).date())].compute()
    assert len(day) == 24 * 2
    got = lazy.compute()
    want = flat_frame(reference["hourly all stats"], by_host=True)
    pd.testing.assert_frame_equal(
        got.reset_index().sort_values(["host", "timestamp"], ignore_index=True),
        want.reset_index().sort_values(["host", "timestamp"], ignore_index=True),
        check_exact=False, rtol=1e-9, check_dtype=False,
    )  # fmt: skip
    assert "cpu.usage_percent:mean" in got.columns


def test_empty_range_and_errors(tmp_path: Path) -> None:
    empty = load_dask_frame(tmp_path, T0, END, metrics=METRICS, compute=True)
    assert isinstance(empty, pd.DataFrame) and empty.empty
    lazy = load_dask_frame(tmp_path, T0, END, metrics=METRICS)
    assert isinstance(lazy, dd.DataFrame) and len(lazy.compute()) == 0
    with pytest.raises(ValueError, match="start and end"):
        load_dask_frame(tmp_path, metrics=METRICS, interval="auto")
