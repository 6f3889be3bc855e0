"""``metrics-toolkit schedule``: collection, the archive policy and reports on cron schedules."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import click
from rich import box
from rich.table import Table

from metrics_toolkit import scheduler
from metrics_toolkit.cli.context import AppContext, console, echo_json, json_option, pass_app
from metrics_toolkit.collect import daemon
from metrics_toolkit.store.config import get_config
from metrics_toolkit.store.job_specs import JobSpec, parse_jobs

WHEN = "%m-%d %H:%M:%S"


@click.command("schedule")
@click.option("--list", "list_only", is_flag=True, help="Show the jobs and next run times; exit.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Report directory (default: config report.output_dir).",
)
@click.option(
    "--archive-path",
    type=click.Path(file_okay=False, path_type=Path),
    help="Archive directory (default: config archive.path).",
)
@click.option("--spool", "spool_path", help="Collector spool file (default: config spool.path).")
@json_option
@pass_app
def schedule(
    app: AppContext,
    list_only: bool,
    out: Path | None,
    archive_path: Path | None,
    spool_path: str | None,
    as_json: bool,
) -> None:
    """Run the jobs of config schedule.jobs (collect, archive, reports) until SIGTERM.

    Each job has its own cron expression (UTC); a job never overlaps itself, runs missed
    while busy are coalesced, and runs missed while the scheduler was down are caught up
    once at start. SIGTERM or Ctrl-C stop it after the running jobs (exit 0).

    Example: metrics-toolkit schedule --list
    """
    engine = app.engine()
    with app.session() as session:
        jobs = parse_jobs(get_config(session=session, key="schedule.jobs"))
        out_dir = out or Path(get_config(session=session, key="report.output_dir"))
        state_path = Path(get_config(session=session, key="schedule.state_path"))
    if list_only:
        _list(jobs, state_path, as_json)
        return
    if not jobs:
        raise click.ClickException("No jobs in config schedule.jobs; nothing to run.")
    settings = None
    if any(job.kind == "collect" for job in jobs):
        # The scheduled collector ticks on a 1 s grid: one snapshot per run, at the fire time.
        settings = daemon.load_settings(app.database_url, interval="1s", spool_path=spool_path)
    logging.getLogger(scheduler.__name__).setLevel(
        min(logging.INFO, logging.getLogger().getEffectiveLevel())
    )
    plan = scheduler.Schedule(
        engine=engine,
        jobs=jobs,
        output_dir=out_dir,
        state_path=state_path,
        archive_path=archive_path,
        collector_settings=settings,
    )
    click.echo(f"Scheduler running {len(jobs)} job(s) on {app.url_text}; stop with SIGTERM.")
    scheduler.serve(plan)
    runs = ", ".join(f"{name} {count}" for name, count in sorted(plan.runs.items())) or "none"
    click.echo(f"Scheduler stopped. Completed runs: {runs}.")


def _list(jobs: list[JobSpec], state_path: Path, as_json: bool) -> None:
    now = datetime.now(UTC)
    state = scheduler.read_state(state_path)
    rows = []
    for job in jobs:
        upcoming = scheduler.next_run(job, now)
        last = state.get(job.name)
        rows.append(
            {
                "name": job.name,
                "job": job.kind,
                "cron": job.cron,
                "what": job.describe(),
                "next_run": upcoming.isoformat() if upcoming else None,
                "last_run": last.isoformat() if last else None,
            }
        )
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("No jobs in config schedule.jobs.")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("name", "job", "cron (UTC)", "next run", "last run"):
        table.add_column(header, no_wrap=True)
    table.add_column("what", min_width=16)
    for job, row in zip(jobs, rows, strict=True):
        upcoming = scheduler.next_run(job, now)
        last = state.get(job.name)
        table.add_row(
            row["name"],
            row["job"],
            row["cron"],
            upcoming.strftime(WHEN) if upcoming else "never",
            last.strftime(WHEN) if last else "-",
            row["what"],
        )
    console().print(table)


COMMANDS = [schedule]
