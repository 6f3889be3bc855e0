"""``metrics-toolkit report``: write a dated HTML/PDF/JSON report, refresh the index, mail it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from metrics_toolkit.cli.context import AppContext, err_console, pass_app
from metrics_toolkit.reporting import build_report
from metrics_toolkit.reporting.files import FORMATS, check_formats, write_report
from metrics_toolkit.store.config import get_config
from metrics_toolkit.store.smtp_settings import SmtpSettings, parse_recipients, parse_smtp


class OutDir(click.Path):
    """``click.Path`` that refuses a NUL in the name with a usage error (click would raise)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and "\0" in value:
            self.fail("a path cannot hold a NUL character.", param, ctx)
        return super().convert(value, param, ctx)


@click.command("report")
@click.option("--period", help="Length of the report: 24h, 7d, 30d or any width (default 24h).")
@click.option("--start", "start_text", metavar="ISO", help="Start of the range (UTC if no offset).")
@click.option(
    "--end",
    "end_text",
    metavar="ISO",
    help="End of the range (default: now, to the minute; 'latest': after the newest snapshot).",
)
@click.option("--host", help="Only this host label (default: every host, each shown apart).")
@click.option(
    "--format",
    "formats",
    default=",".join(FORMATS),
    show_default=True,
    help="Comma-separated formats: html, pdf, json.",
)
@click.option(
    "--out",
    type=OutDir(file_okay=False, path_type=Path),
    help="Output directory (default: config report.output_dir).",
)
@click.option(
    "--interval", help="Chart bucket width, e.g. 1h (default: a few hundred points per chart)."
)
@click.option("--metric-type", default="aggregated", show_default=True, help="Snapshot type.")
@click.option(
    "--mail-to",
    metavar="ADDRESSES",
    help="Also mail the report to these comma-separated addresses (server: config report.smtp).",
)
@pass_app
def report(
    app: AppContext,
    period: str | None,
    start_text: str | None,
    end_text: str | None,
    host: str | None,
    formats: str,
    out: Path | None,
    interval: str | None,
    metric_type: str,
    mail_to: str | None,
) -> None:
    """Write a report of a period: summary, charts, breaches, completeness, top processes.

    Files go to OUT/<host or all>/<period>-<end>.<format>; OUT/index.html lists every
    report. The paths written are printed, one per line. A range without data gives a
    short report saying so (and a warning), not an error.

    With --mail-to, one message goes out after the files are written: the HTML report as
    its body, a plain-text summary beside it and the PDF attached (when written). If the
    mail cannot be sent the files stay written and the command exits non-zero.

    Example: metrics-toolkit report --period 7d --format html,pdf --out reports/
    """
    wanted = check_formats(formats)
    if period is None and start_text is None:
        period = "24h"
    if period is not None and start_text is not None and end_text is not None:
        raise click.UsageError("Give --period with --start or --end, or --start and --end.")
    recipients = parse_recipients(mail_to, "--mail-to") if mail_to is not None else ()
    engine = app.engine()
    smtp: SmtpSettings | None = None
    with app.session() as session:
        out_dir = out or Path(get_config(session=session, key="report.output_dir"))
        if recipients:
            smtp = parse_smtp(get_config(session=session, key="report.smtp"))
            smtp.password()  # a missing password fails before the work, not after
    status = err_console()
    with status.status("Reading the data…"):
        built = build_report(
            engine,
            start=start_text,
            end=end_text,
            period=period,
            host=host,
            interval=interval,
            metric_type=metric_type,
        )
    for warning in built.warnings:
        status.print(f"[yellow]Warning:[/] {warning}", markup=True, highlight=False)
    with status.status(f"Writing {', '.join(wanted)}…"):
        paths = write_report(built, out_dir, wanted)
    for path in paths:
        click.echo(str(path))
    status.print(f"Index: {out_dir / 'index.html'}", highlight=False)
    if smtp is not None:
        from metrics_toolkit.reporting.mail import MailError, mail_report

        try:
            with status.status(f"Mailing {', '.join(recipients)} through {smtp.where}…"):
                mail_report(built, recipients, smtp, paths)
        except MailError as error:
            raise click.ClickException(f"Report written but not mailed: {error}") from None
        status.print(f"Mailed to {', '.join(recipients)}.", highlight=False)


COMMANDS = [report]
