"""``metrics-toolkit collect`` (the collection daemon) and ``generate`` (a realistic history)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from metrics_toolkit.cli.context import AppContext, err_console, pass_app
from metrics_toolkit.collect import daemon
from metrics_toolkit.errors import InvalidArgument
from metrics_toolkit.intervals import Interval
from metrics_toolkit.store.ingest import write_snapshots


@click.command("collect")
@click.option("--interval", help="Time between ticks, e.g. 10s, 1min (config collector.interval).")
@click.option("--count", type=int, help="Stop after this many snapshots.")
@click.option("--duration", help="Stop after this long, e.g. 90s, 15min, 1h, 2D.")
@click.option("--host", help="Host label of the snapshots (config collector.host; hostname).")
@click.option("--collectors", help="Comma-separated collectors (config collector.enabled).")
@click.option("--spool", "spool_path", help="Local spool file (config spool.path).")
@click.option("--batch-size", type=int, help="Most snapshots per database transaction.")
@pass_app
def collect(
    app: AppContext,
    interval: str | None,
    count: int | None,
    duration: str | None,
    host: str | None,
    collectors: str | None,
    spool_path: str | None,
    batch_size: int | None,
) -> None:
    """Collect a snapshot at every multiple of the interval until stopped.

    Every snapshot goes to the local spool first and then to the database; while the
    database is down the spool keeps them and they are written, in order and once each,
    when it is back. SIGTERM or Ctrl-C finish the current tick, flush and exit 0. Options
    not given come from the config table when the database answers, else from defaults.

    Example: metrics-toolkit collect --interval 10s --duration 1h --spool /var/lib/mt/spool.db
    """
    settings = daemon.load_settings(
        app.database_url,
        interval=interval,
        count=count,
        duration=duration,
        host=host,
        collectors=collectors,
        spool_path=spool_path,
        batch_size=batch_size,
    )
    with daemon.CollectionDaemon(settings) as runner, daemon.stop_on_signals(runner):
        stats = runner.run()
    written = stats.written
    click.echo(
        f"Collected {stats.ticks} snapshot(s); wrote {written.inserted} "
        f"({written.duplicates} already stored); {stats.left_in_spool} left in the spool"
        + (f"; {stats.skipped_slots} slot(s) skipped" if stats.skipped_slots else "")
        + (f"; {stats.dropped} dropped (spool full)" if stats.dropped else "")
    )


def parse_end(text: str | None) -> datetime:
    """``--end`` as an aware UTC datetime (no offset means UTC); now when not given."""
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        msg = (
            f"Invalid --end {text!r}: expected an ISO 8601 date or time such as 2026-01-31, "
            "2026-01-31T12:00 or 2026-01-31T12:00:00+00:00 (UTC when no offset is given)."
        )
        raise InvalidArgument(msg) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@click.command("generate")
@click.option("--days", type=float, default=30.0, show_default=True, help="Length of the history.")
@click.option("--interval", default="10s", show_default=True, help="Time between snapshots.")
@click.option("--hosts", type=int, default=2, show_default=True, help="Number of hosts.")
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed.")
@click.option("--end", "end_text", help="End of the history, ISO 8601 (default: now; UTC).")
@click.option(
    "--batch-size", type=int, default=10_000, show_default=True, help="Rows per transaction."
)
@pass_app
def generate(
    app: AppContext,
    days: float,
    interval: str,
    hosts: int,
    seed: int,
    end_text: str | None,
    batch_size: int,
) -> None:
    """Write a realistic, deterministic history of snapshots into the database.

    Daily and weekly cycles, noise, bursts and a few incidents per host, in the same
    document shape as real collection. Running it again with the same arguments writes
    nothing new: stored snapshots are skipped.

    Example: metrics-toolkit generate --days 30 --interval 10s --hosts 2 --seed 42
    """
    from metrics_toolkit.collect.generator import (  # numpy: only here
        count_history,
        generate_history,
    )

    width = Interval.parse(interval)
    if not days > 0:
        raise InvalidArgument(f"--days must be greater than 0 (got {days:g}).")
    if hosts < 1:
        raise InvalidArgument(f"--hosts must be at least 1 (got {hosts}).")
    if batch_size < 1:
        raise InvalidArgument(f"--batch-size must be at least 1 (got {batch_size}).")
    end = parse_end(end_text)
    try:
        start = end - timedelta(days=days)
    except OverflowError:
        raise InvalidArgument(f"--days {days:g} reaches before year 1.") from None
    total = count_history(start=start, end=end, interval=width, hosts=hosts)
    engine = app.engine()
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console()) as progress:
        task = progress.add_task("Writing snapshots", total=total)
        result = write_snapshots(
            engine,
            generate_history(start=start, end=end, interval=width, hosts=hosts, seed=seed),
            batch_size=batch_size,
            on_batch=lambda rows: progress.advance(task, rows),
        )
    click.echo(
        f"Wrote {result.inserted:,} snapshot(s) ({result.duplicates:,} already stored) for "
        f"{hosts} host(s) from {start:%Y-%m-%d %H:%M:%S} to {end:%Y-%m-%d %H:%M:%S} UTC in "
        f"{result.seconds:.1f} s ({result.rows_per_second:,.0f} rows/s) into {app.url_text}."
    )


COMMANDS = [collect, generate]
