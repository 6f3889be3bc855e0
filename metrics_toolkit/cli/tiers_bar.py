"""The rollup tier refresh with a progress bar, for the commands that run it after writing
(``generate``, ``db upgrade``; ``archive run`` shows it in its own bar)."""

from __future__ import annotations

from collections.abc import Callable

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy import Engine

from metrics_toolkit.archive.tiers import RefreshResult, refresh
from metrics_toolkit.cli.context import err_console


def day_progress(bar: Progress, description: str = "rollup tiers") -> Callable[[int, int], None]:
    """A ``refresh`` progress callback that adds a task to ``bar`` (days done of total)."""
    task = bar.add_task(description, total=None)

    def advance(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return advance


def refresh_with_bar(engine: Engine) -> RefreshResult:
    """Bring the rollup tiers up to date; a bar counts the days (interrupting is safe: the
    next refresh resumes with the days left)."""
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console(), transient=True) as bar:
        return refresh(engine, progress=day_progress(bar))


def summary(result: RefreshResult) -> str:
    """One line on a refresh, for the commands' output."""
    if not result.days:
        return "Rollup tiers: up to date."
    left = f", {result.left} left for a writer's newer rows" if result.left else ""
    return (
        f"Rollup tiers: {result.days:,} day(s) refreshed, {result.buckets:,} buckets from "
        f"{result.rows_read:,} snapshot rows{left}."
    )


__all__ = ["day_progress", "refresh_with_bar", "summary"]
