"""``metrics-toolkit archive``: apply the archive policy; inspect and restore the archive."""

from __future__ import annotations

from datetime import datetime

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.orm import Session

from metrics_toolkit.archive import runner as archive
from metrics_toolkit.archive.restore import restore
from metrics_toolkit.archive.store import ArchiveStore
from metrics_toolkit.cli.context import (
    AppContext,
    console,
    echo_json,
    err_console,
    json_option,
    pass_app,
)
from metrics_toolkit.cli.tiers_bar import day_progress
from metrics_toolkit.cli.tiers_bar import summary as tiers_summary
from metrics_toolkit.frames.load import parse_time

WHEN = "%Y-%m-%d %H:%M"


def _when(value: datetime | None) -> str:
    return value.strftime(WHEN) if value else "-"


def _time(value: str | None, name: str) -> datetime | None:
    return None if value is None else parse_time(value, name)


archive_path_option = click.option(
    "--archive-path",
    metavar="DIR|URL",
    help="Archive directory or fsspec URL, e.g. s3://bucket/prefix (default: archive.path).",
)


@click.group("archive")
def archive_group() -> None:
    """Apply the archive policy (downsample, archive, delete) and manage the archive."""


@archive_group.command("run")
@click.option(
    "--now", "now_text", metavar="ISO", help="Apply the policy as of this time (default: now)."
)
@click.option("--dry-run", is_flag=True, help="Print what would happen; change nothing.")
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    help="Seconds to wait for another run to finish.",
)
@archive_path_option
@json_option
@pass_app
def run(
    app: AppContext,
    now_text: str | None,
    dry_run: bool,
    wait: float,
    archive_path: str | None,
    as_json: bool,
) -> None:
    """Roll up old rows, archive them to Parquet, and delete rows past retention.

    With --json, the run and the dry run both print one JSON object with the same counts:
    rows_rolled_up, rollups_written, rows_deleted, rows_archived and chunks.

    Example: metrics-toolkit archive run --dry-run
    """
    engine = app.engine()
    now = _time(now_text, "--now")
    if dry_run:
        plan, actions = archive.dry_run(engine, now=now)
        if as_json:
            counts = archive.planned_counts(actions)
            echo_json({"dry_run": True, "now": plan.now.isoformat(), **counts})
            return
        click.echo(
            f"Policy at {_when(plan.now)}: roll up before {_when(plan.downsample_before)} to "
            f"{plan.interval}, delete before {_when(plan.delete_before)}, "
            f"archive {'on' if plan.archive else 'off'}."
        )
        if not actions:
            click.echo("Nothing to do.")
            return
        table = Table("action", "from (UTC)", "to (UTC)", "rows")
        for action in actions:
            table.add_row(action.action, _when(action.start), _when(action.end), f"{action.rows:,}")
        console().print(table)
        counts = archive.planned_counts(actions)
        click.echo(
            f"Dry run: {counts['rows_rolled_up']:,} rows would be rolled up into "
            f"{counts['rollups_written']:,} rollups, {counts['rows_deleted']:,} rows deleted, "
            f"{counts['rows_archived']:,} rows archived, in {counts['chunks']:,} chunks; "
            "nothing was changed."
        )
        return
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console(),
        transient=True,
    ) as bar:
        task = bar.add_task("archive", total=None)

        def progress(item: archive.ChunkResult | int) -> None:
            if isinstance(item, int):
                bar.update(task, total=item)
            else:
                bar.update(task, advance=1, description=f"{item.action} {item.start:%Y-%m-%d}")

        result = archive.run_archive(
            engine,
            now=now,
            archive_path=archive_path,
            wait_seconds=wait,
            progress=progress,
            tier_progress=day_progress(bar),
        )
    if as_json:
        echo_json(
            {
                "dry_run": False,
                "now": result.plan.now.isoformat(),
                "run_id": result.run_id,
                **result.counts(),
                "recovered_files": result.recovered_files,
                "discarded_files": result.discarded_files,
                "tier_days": result.tiers.days if result.tiers else 0,
                "tier_buckets": result.tiers.buckets if result.tiers else 0,
            }
        )
        return
    if result.recovered_files or result.discarded_files:
        click.echo(
            f"Recovered from an interrupted run: {result.recovered_files} archive file(s) "
            f"completed, {result.discarded_files} uncommitted file(s) discarded."
        )
    click.echo(
        f"Run {result.run_id} completed: {result.total('rows_replaced'):,} rows rolled up into "
        f"{result.total('rollups_written'):,} rollups ({result.plan.interval}), "
        f"{result.total('rows_deleted'):,} rows deleted past retention, "
        f"{result.total('rows_archived'):,} rows archived."
    )
    if result.tiers is not None:
        click.echo(tiers_summary(result.tiers))


@archive_group.command("status")
@click.option("--limit", type=click.IntRange(min=1, max=100_000), default=10, show_default=True)
@json_option
@pass_app
def status(app: AppContext, limit: int, as_json: bool) -> None:
    """Show the most recent archive runs.

    Example: metrics-toolkit archive status --limit 5
    """
    runs = archive.last_runs(app.engine(), limit)
    if as_json:
        echo_json(
            [
                {
                    name: getattr(r, name)
                    for name in (
                        "id",
                        "status",
                        "started_at",
                        "finished_at",
                        "policy_now",
                        "rows_rolled_up",
                        "rollups_written",
                        "rows_deleted",
                        "rows_archived",
                        "chunks_done",
                        "watermark",
                        "error",
                    )
                }
                for r in runs
            ]
        )
        return
    if not runs:
        click.echo("No archive runs yet. Start one with: metrics-toolkit archive run")
        return
    table = Table(
        "run",
        "status",
        "started (UTC)",
        "finished",
        "rolled up",
        "rollups",
        "deleted",
        "archived",
        "watermark",
        "error",
    )
    for r in runs:
        table.add_row(
            str(r.id),
            r.status,
            _when(r.started_at),
            _when(r.finished_at),
            f"{r.rows_rolled_up:,}",
            f"{r.rollups_written:,}",
            f"{r.rows_deleted:,}",
            f"{r.rows_archived:,}",
            _when(r.watermark),
            (r.error or "")[:60],
        )
    console().print(table)


def _existing_archive(app: AppContext, archive_path: str | None) -> ArchiveStore:
    """The archive of --archive-path (default: config archive.path); it must exist."""
    with Session(app.engine()) as session:
        root = archive.archive_root(session, archive_path)
    return ArchiveStore(root).require()


@archive_group.command("list")
@archive_path_option
@json_option
@pass_app
def list_(app: AppContext, archive_path: str | None, as_json: bool) -> None:
    """List the archive's partitions (metric type, date) with rows and size.

    Example: metrics-toolkit archive list --archive-path /var/lib/metrics/archive
    """
    store = _existing_archive(app, archive_path)
    root = store.url
    parts = store.partitions()
    if as_json:
        echo_json([p.__dict__ for p in parts])
        return
    if not parts:
        click.echo(f"The archive at {root} is empty.")
        return
    table = Table("metric_type", "date", "files", "rows", "MiB")
    for p in parts:
        table.add_row(
            p.metric_type, p.date.isoformat(), str(p.files), f"{p.rows:,}", f"{p.bytes / 2**20:.2f}"
        )
    console().print(table)
    click.echo(f"{len(parts)} partitions, {sum(p.rows for p in parts):,} rows under {root}")


@archive_group.command("verify")
@archive_path_option
@json_option
@pass_app
def verify(app: AppContext, archive_path: str | None, as_json: bool) -> None:
    """Read every archive file in full and list the damaged ones (exit 1 if any).

    Example: metrics-toolkit archive verify --archive-path /var/lib/metrics/archive
    """
    store = _existing_archive(app, archive_path)
    root = store.url
    checked = len(store.files())
    damaged = store.damaged_files(full=True)
    if as_json:
        echo_json(
            {
                "files": checked,
                "damaged": [{"path": str(d.path), "reason": d.reason} for d in damaged],
            }
        )
    else:
        for item in damaged:
            click.echo(f"DAMAGED {item.path}: {item.reason}")
        click.echo(f"{checked:,} files checked under {root}, {len(damaged):,} damaged.")
    if damaged:
        raise SystemExit(1)


@archive_group.command("restore")
@click.option(
    "--start", "start_text", required=True, metavar="ISO", help="Start of the range (UTC)."
)
@click.option(
    "--end", "end_text", required=True, metavar="ISO", help="End of the range (exclusive)."
)
@click.option("--metric-type", help="Only this metric type (default: all).")
@archive_path_option
@pass_app
def restore_(
    app: AppContext,
    start_text: str,
    end_text: str,
    metric_type: str | None,
    archive_path: str | None,
) -> None:
    """Put archived raw rows of a time range back into the database.

    Rollups in the range are replaced by the raw rows they were made from when the archive
    holds all of them. Rows still present are skipped, never doubled.

    Example: metrics-toolkit archive restore --start 2026-01-01 --end 2026-01-02
    """
    start, end = _time(start_text, "--start"), _time(end_text, "--end")
    assert start is not None and end is not None
    with Progress(
        TextColumn("restoring"),
        BarColumn(bar_width=None),
        TextColumn("{task.completed:,} rows"),
        TimeElapsedColumn(),
        console=err_console(),
        transient=True,
    ) as bar:
        task = bar.add_task("restore", total=None)
        result = restore(
            app.engine(),
            start=start,
            end=end,
            metric_type=metric_type,
            archive_path=archive_path,
            progress=lambda n: bar.update(task, advance=n),
        )
    click.echo(
        f"Restored {result.restored:,} rows ({result.already_present:,} already present) for "
        f"{_when(result.start)} to {_when(result.end)}; {result.rollups_replaced:,} rollups "
        "replaced by their raw rows."
    )
    if result.rollups_kept:
        click.echo(
            f"Kept {result.rollups_kept:,} rollups whose raw rows the archive does not fully "
            f"hold ({result.rows_not_restored:,} partial rows not restored, to avoid "
            "double counting)."
        )


COMMANDS = [archive_group]
