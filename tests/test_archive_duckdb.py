"""The README's DuckDB SQL over the archive gives load_frame's numbers (docs kept honest)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from metrics_toolkit.frames.load import load_frame
from metrics_toolkit.store.db import make_engine
from tests.test_archive_source import T0, fill_archive

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_sql() -> list[str]:
    """The ```sql blocks of the README's "When one machine is not enough" section."""
    text = README.read_text()
    section = text.split("### When one machine is not enough", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.DOTALL)


def statements(block: str) -> list[str]:
    return [s.strip() for s in block.split(";") if s.strip()]


@pytest.fixture(scope="module")
def archive_root(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Path:
    import shutil

    work = tmp_path_factory.mktemp("duckdb")
    shutil.copyfile(sqlite_template, work / "metrics.db")
    engine = make_engine(f"sqlite:///{work / 'metrics.db'}")
    try:
        fill_archive(engine, work / "archive")
    finally:
        engine.dispose()
    return work / "archive"


@pytest.fixture
def duck(archive_root: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    yield connection
    connection.close()


def run(
    duck: duckdb.DuckDBPyConnection, block: str, root: Path, start: str, end: str
) -> pd.DataFrame:
    *settings, query = statements(block)
    for statement in settings:
        duck.execute(statement)
    duck.execute(f"SET VARIABLE archive = '{root}'")
    duck.execute(f"SET VARIABLE range_start = TIMESTAMPTZ '{start}'")
    duck.execute(f"SET VARIABLE range_end = TIMESTAMPTZ '{end}'")
    frame = duck.execute(query).df()
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True).astype("datetime64[us, UTC]")
    return frame.set_index("bucket")


def test_the_readme_has_both_queries() -> None:
    blocks = readme_sql()
    assert len(blocks) == 2
    assert "rollup_interval IS NULL" in blocks[0] and "union_by_name = true" in blocks[0]
    assert "_rollup.sum" in blocks[1]


def test_hourly_means_of_raw_rows_equal_load_frame(
    duck: duckdb.DuckDBPyConnection, archive_root: Path
) -> None:
    start, end = T0 + timedelta(days=1), T0 + timedelta(days=4)  # raw rows archived
    got = run(duck, readme_sql()[0], archive_root, start.isoformat(), end.isoformat())
    want = load_frame(
        archive_root, start, end, metrics=["cpu.usage_percent", "memory.used_bytes"],
        interval="1h", stats=("mean", "max", "count"),
    )  # fmt: skip
    assert len(got) == len(want) == 72
    assert (got.index == want.index).all()
    np.testing.assert_allclose(got["cpu_usage_percent"], want["cpu.usage_percent", "mean"])
    np.testing.assert_allclose(got["memory_used_bytes_max"], want["memory.used_bytes", "max"])
    np.testing.assert_array_equal(got["samples"], want["cpu.usage_percent", "count"])


def test_daily_means_of_rolled_up_rows_equal_load_frame(
    duck: duckdb.DuckDBPyConnection, archive_root: Path
) -> None:
    start, end = T0, T0 + timedelta(days=1)  # only hourly rollups were archived for day 0
    blocks = readme_sql()
    got = run(duck, blocks[0].split("SELECT", 1)[0] + blocks[1], archive_root,
              start.isoformat(), end.isoformat())  # fmt: skip
    want = load_frame(archive_root, start, end, metrics=["cpu.usage_percent"], interval="1D")
    assert len(got) == len(want) == 1
    np.testing.assert_allclose(got["cpu_usage_percent"], want["cpu.usage_percent"], rtol=1e-12)
