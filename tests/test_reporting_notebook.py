"""notebooks/03-report.ipynb runs under papermill with parameters and renders the report."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nbformat
import papermill
import pytest

from metrics_toolkit.collect.generator import generate_history
from metrics_toolkit.store.db import make_engine
from metrics_toolkit.store.ingest import write_snapshots

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "03-report.ipynb"
END = datetime(2026, 5, 1, tzinfo=UTC)


def test_the_notebook_has_a_papermill_parameters_cell() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)  # type: ignore[no-untyped-call]
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    for name in ("database_url", "period", "end", "host", "interval", "out_dir"):
        assert f"{name} = " in tagged[0].source


@pytest.mark.slow
def test_the_notebook_runs_under_papermill_with_parameters(sqlite_url: str, tmp_path: Path) -> None:
    engine = make_engine(sqlite_url)
    write_snapshots(
        engine, generate_history(start=END - timedelta(days=1), end=END, interval="60s", hosts=2)
    )
    engine.dispose()
    output = tmp_path / "report.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(output),
        parameters={
            "database_url": sqlite_url,
            "period": "12h",
            "end": END.isoformat(),
            "host": "db-1",
            "out_dir": str(tmp_path / "reports"),
            "formats": ["json"],
        },
        cwd=str(NOTEBOOK.parent),
        kernel_name="python3",
        progress_bar=False,
    )
    ran = nbformat.read(output, as_version=4)  # type: ignore[no-untyped-call]
    outputs = [o for c in ran.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/svg+xml" in o.get("data", {}) for o in outputs) >= 5
    written = json.loads((tmp_path / "reports" / "db-1" / "12h-20260501T0000Z.json").read_text())
    assert written["hosts"] == ["db-1"] and written["summary"]
