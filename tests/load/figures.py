"""The load suite's figures: kept in ``benchmarks/results/load-<mode>.json``, printed as a table.

Each scenario records one flat dict (see ``test_load.py``); ``python -m tests.load.figures``
prints the table of every results file (``make load`` does so after the run).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"

COLUMNS = (
    ("scenario", "scenario", "{}"),
    ("collectors", "collectors", "{}"),
    ("seconds", "run s", "{:.0f}"),
    ("stored", "stored", "{}"),
    ("expected", "expected", "{}"),
    ("doubled", "doubled", "{}"),
    ("latency_p50_ms", "p50 ms", "{:.1f}"),
    ("latency_p99_ms", "p99 ms", "{:.1f}"),
    ("latency_max_ms", "max ms", "{:.0f}"),
    ("collector_cpu_percent", "CPU %/coll.", "{:.2f}"),
    ("db_growth_bytes_per_snapshot", "B/snap", "{:.0f}"),
    ("load_average_1min", "load 1m", "{:.1f}"),
)


def record(mode: str, scenario: str, figures: dict[str, Any]) -> Path:
    """Add (or replace) one scenario's figures in the mode's results file."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"load-{mode}.json"
    data: dict[str, Any] = json.loads(path.read_text("utf-8")) if path.exists() else {}
    data[scenario] = {"scenario": scenario, "mode": mode, **figures}
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", "utf-8")
    return path


def _cell(value: Any, pattern: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return pattern.format(value)


def table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table of the scenarios' headline figures."""
    header = [title for _, title, _ in COLUMNS]
    body = [[_cell(row.get(key), pattern) for key, _, pattern in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True))
        for line in [header, *body]
    )


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted(RESULTS.glob("load-*.json"))
    for path in paths:
        if not path.exists():
            sys.stderr.write(f"No figures in {path}: run the load suite first.\n")
            return 1
        rows = list(json.loads(path.read_text("utf-8")).values())
        sys.stdout.write(f"== {path}\n{table(rows)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
