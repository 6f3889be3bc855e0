"""A tiny benchmark harness: every figure is printed beside a baseline measured in the same run.

Each ``benchmarks/bench_<thing>.py`` has a ``main(argv=None) -> int`` with small argparse
defaults, is run as ``python -m benchmarks.bench_<thing>`` (``make bench`` runs them all), and
uses this module:

.. code-block:: python

    from benchmarks.harness import Report, measure_interleaved

    def main(argv: list[str] | None = None) -> int:
        timings = measure_interleaved({"ours": ours, "bare": bare}, repeat=200)
        report = Report("Collection cost", note="median of 200 interleaved runs")
        report.add(
            "Collector.collect()", timings["ours"].median * 1e3, "ms",
            baseline=("bare psutil calls", timings["bare"].median * 1e3),
            max_ratio=1.5,
        )
        report.print()
        return report.exit_code(strict=False)

What it offers:

- :func:`measure` / :func:`measure_interleaved`: wall-clock samples of a callable (after a
  warm-up) as a :class:`Timing` (``median``, ``best``, ``mean``, ``p90``); interleaving the
  contenders call by call keeps background load from favouring one of them.
- :class:`Stopwatch`: ``with Stopwatch() as sw: ...`` then ``sw.wall`` and ``sw.cpu`` seconds.
- :func:`traced_peak`: the peak of Python allocations (tracemalloc) while a callable runs.
- :func:`run_child`: run a command as a child process and get its wall time, CPU time and
  peak RSS (from ``wait4``), e.g. to measure the memory of an ingest run on its own.
- :class:`Report`: rows of (name, value, unit, baseline name, baseline value, ratio, target,
  pass/fail), printed as one aligned table (rich) and savable as JSON.

Ratios are ``value / baseline``. Targets: ``max_ratio`` / ``min_ratio`` (against the baseline)
and ``max_value`` / ``min_value`` (absolute, in the row's unit). A row without a target is
informative and neither passes nor fails; so does a row whose value is NaN (not measured:
printed "n/a", e.g. for a feature not built yet). Benchmarks are not tests: they are not collected
by pytest and print, by design.
"""

from __future__ import annotations

import gc
import json
import math
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console, OverflowMethod
from rich.table import Table

T = TypeVar("T")


@dataclass(frozen=True)
class Timing:
    """Wall-clock samples of one callable, in seconds."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def best(self) -> float:
        return min(self.samples)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples)

    @property
    def p90(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def measure(fn: Callable[[], object], *, repeat: int = 100, warmup: int = 5) -> Timing:
    """Call ``fn`` ``warmup`` times, then time ``repeat`` calls one by one."""
    return measure_interleaved({"fn": fn}, repeat=repeat, warmup=warmup)["fn"]


def measure_interleaved(
    contenders: Mapping[str, Callable[[], object]], *, repeat: int = 100, warmup: int = 5
) -> dict[str, Timing]:
    """Time several callables, alternating them call by call, so drift hits all alike.

    The order rotates every round (the first call after a pause runs with colder caches),
    and the cyclic GC runs between rounds rather than inside a timed call.
    """
    for _ in range(warmup):
        for fn in contenders.values():
            fn()
    order = list(contenders.items())
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    enabled = gc.isenabled()
    try:
        for round_ in range(repeat):
            gc.collect()
            gc.disable()
            shift = round_ % len(order)
            for name, fn in order[shift:] + order[:shift]:
                start = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - start)
            if enabled:
                gc.enable()
    finally:
        if enabled:
            gc.enable()
    return {name: Timing(tuple(values)) for name, values in samples.items()}


class Stopwatch:
    """Wall and CPU (this process) seconds of a ``with`` block."""

    wall: float = 0.0
    cpu: float = 0.0

    def __enter__(self) -> Stopwatch:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


def traced_peak(fn: Callable[[], T]) -> tuple[T, int]:
    """``(fn(), peak bytes of Python allocations while it ran)``, via tracemalloc (slow)."""
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@dataclass(frozen=True)
class ChildRun:
    """What :func:`run_child` measured."""

    returncode: int
    wall_seconds: float
    cpu_seconds: float  # user + system of the child
    peak_rss_bytes: int
    stdout: str


def run_child(command: Sequence[str], *, env: Mapping[str, str] | None = None) -> ChildRun:
    """Run ``command`` and measure it from outside: wall time, CPU time and peak RSS (Linux)."""
    start = time.perf_counter()
    child = subprocess.Popen(
        list(command),
        stdout=subprocess.PIPE,
        env=None if env is None else {**os.environ, **env},
        text=True,
    )
    assert child.stdout is not None
    stdout = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    return ChildRun(
        returncode=child.returncode,
        wall_seconds=wall,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_bytes=usage.ru_maxrss * 1024,  # KiB on Linux
        stdout=stdout,
    )


@dataclass(frozen=True)
class Row:
    """One figure of a report."""

    name: str
    value: float
    unit: str
    baseline_name: str | None = None
    baseline_value: float | None = None
    ratio: float | None = None
    target: str = ""
    passed: bool | None = None
    note: str = ""


@dataclass
class Report:
    """A table of figures with their same-run baselines, ratios and targets."""

    title: str
    note: str = ""
    rows: list[Row] = field(default_factory=list)

    def add(
        self,
        name: str,
        value: float,
        unit: str,
        *,
        baseline: tuple[str, float] | None = None,
        max_ratio: float | None = None,
        min_ratio: float | None = None,
        max_value: float | None = None,
        min_value: float | None = None,
        note: str = "",
    ) -> Row:
        """Add a figure; ``passed`` is decided by the targets given (``None`` without any)."""
        baseline_name, baseline_value = baseline if baseline else (None, None)
        ratio = value / baseline_value if baseline_value else None
        if ratio is not None and math.isnan(ratio):
            ratio = None
        checks: list[tuple[str, bool]] = []
        if max_ratio is not None:
            checks.append((f"<= {max_ratio:g}x", ratio is not None and ratio <= max_ratio))
        if min_ratio is not None:
            checks.append((f">= {min_ratio:g}x", ratio is not None and ratio >= min_ratio))
        if max_value is not None:
            checks.append((f"<= {max_value:g} {unit}", value <= max_value))
        if min_value is not None:
            checks.append((f">= {min_value:g} {unit}", value >= min_value))
        row = Row(
            name=name,
            value=value,
            unit=unit,
            baseline_name=baseline_name,
            baseline_value=baseline_value,
            ratio=ratio,
            target=", ".join(text for text, _ in checks),
            passed=all(ok for _, ok in checks) if checks and not math.isnan(value) else None,
            note=note,
        )
        self.rows.append(row)
        return row

    @property
    def failed(self) -> list[Row]:
        return [row for row in self.rows if row.passed is False]

    def exit_code(self, *, strict: bool) -> int:
        """1 when ``strict`` and a target was missed, else 0 (``make bench`` keeps going)."""
        return 1 if strict and self.failed else 0

    def table(self) -> Table:
        table = Table(title=self.title, caption=self.note or None, title_justify="left")
        for header in ("figure", "value", "baseline", "baseline value", "ratio", "target", ""):
            numeric = header in ("value", "baseline value", "ratio")
            wrap: OverflowMethod = "fold" if header in ("figure", "baseline") else "ellipsis"
            table.add_column(
                header,
                justify="right" if numeric else "left",
                overflow=wrap,
                no_wrap=wrap != "fold",
            )
        for row in self.rows:
            verdict = {True: "[green]pass[/]", False: "[red]FAIL[/]", None: ""}[row.passed]
            table.add_row(
                row.name + (f" [dim]({row.note})[/]" if row.note else ""),
                "n/a" if math.isnan(row.value) else f"{_number(row.value)} {row.unit}",
                row.baseline_name or "",
                ""
                if row.baseline_value is None
                else "n/a"
                if math.isnan(row.baseline_value)
                else f"{_number(row.baseline_value)} {row.unit}",
                "" if row.ratio is None else f"{row.ratio:.2f}x",
                row.target,
                verdict,
            )
        return table

    def print(self, console: Console | None = None) -> None:
        """Print the table (to stdout by default; 140 columns wide when not a terminal)."""
        if console is None:
            console = Console() if sys.stdout.isatty() else Console(width=140)
        console.print(self.table())

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "note": self.note, "rows": [asdict(r) for r in self.rows]}

    def write_json(self, path: str | Path) -> None:
        """Save the figures (e.g. under ``benchmarks/results/``, which git ignores)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(self.to_dict(), indent=2) + "\n")


def _number(value: float) -> str:
    """Three significant digits, without scientific notation for everyday magnitudes."""
    if value == 0 or 0.001 <= abs(value) < 1e7:
        return f"{value:,.{max(0, 2 - _magnitude(value))}f}"
    return f"{value:.3g}"


def _magnitude(value: float) -> int:
    return 0 if value == 0 else int(f"{abs(value):e}".split("e")[1])
