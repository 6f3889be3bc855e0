"""``metrics-toolkit db``: schema migrations."""

from __future__ import annotations

import click

from metrics_toolkit.cli.context import AppContext, pass_app
from metrics_toolkit.cli.tiers_bar import refresh_with_bar, summary
from metrics_toolkit.store import migrate


@click.group("db")
def db_group() -> None:
    """Create and migrate the database schema."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@pass_app
def upgrade(app: AppContext, revision: str) -> None:
    """Bring the database (new or older) to the newest schema, then the rollup tiers up to
    date (a progress bar; an interrupted refresh resumes on the next upgrade or archive run).

    Example: metrics-toolkit --database-url postgresql://localhost/metrics db upgrade
    """
    engine = app.engine(migrate=False)
    before = migrate.current_revision(engine)
    migrate.upgrade(engine, revision)
    after = migrate.current_revision(engine)
    if before == after:
        click.echo(f"{app.url_text}: already at revision {after}.")
    else:
        click.echo(f"{app.url_text}: upgraded from {before or 'empty'} to {after}.")
    if after == migrate.head_revision():  # the tier tables exist: fill what the log marks
        click.echo(summary(refresh_with_bar(engine)))


@db_group.command("current")
@pass_app
def current(app: AppContext) -> None:
    """Print the schema revision of the database and the newest one.

    Example: metrics-toolkit db current
    """
    engine = app.engine(migrate=False)
    revision = migrate.current_revision(engine)
    head = migrate.head_revision()
    state = "up to date" if revision == head else "run `metrics-toolkit db upgrade`"
    click.echo(f"{app.url_text}: revision {revision or 'none'} (newest {head}; {state})")


COMMANDS = [db_group]
