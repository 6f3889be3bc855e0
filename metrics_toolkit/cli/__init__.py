"""The ``metrics-toolkit`` command line: a thin shell over the library.

Each command parses its arguments, opens a session, calls one library function and maps
library errors to one line on stderr with a non-zero exit code.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import click
from sqlalchemy import exc as sa_exc

from metrics_toolkit.cli.context import AppContext
from metrics_toolkit.errors import MetricsToolkitError
from metrics_toolkit.store.db import describe_error, mask_url, resolve_url

EPILOG = (
    "The database URL comes from --database-url, then METRICS_TOOLKIT_DATABASE_URL, then "
    "DATABASE_URL; the default is the SQLite file ./metrics.db."
)


# Each command's module, imported only when that command runs (or help lists it), so a
# light command such as `collect` never pays for pandas, pyarrow or matplotlib.
COMMAND_MODULES: dict[str, str] = {
    "status": "status_cmds",
    "db": "db_cmds",
    "users": "users_cmds",
    "config": "config_cmds",
    "policy": "policy_cmds",
    "collect": "collect_cmds",
    "generate": "collect_cmds",
    "archive": "archive_cmds",
    "report": "report_cmds",
    "schedule": "schedule_cmds",
    "explore": "explore_cmds",
}


class ToolkitGroup(click.Group):
    """A group that loads its commands lazily and turns expected errors into one line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMAND_MODULES, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        module_name = COMMAND_MODULES.get(cmd_name)
        if module_name is None:
            return None
        module = importlib.import_module(f"metrics_toolkit.cli.{module_name}")
        for command in module.COMMANDS:
            if command.name == cmd_name:
                return command  # type: ignore[no-any-return]
        return None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MetricsToolkitError as error:
            raise click.ClickException(str(error)) from None
        except sa_exc.SQLAlchemyError as error:
            app = ctx.find_object(AppContext)
            where = mask_url(resolve_url(app.database_url)) if app else "the database"
            raise click.ClickException(
                f"Database error on {where}: {describe_error(error)}"
            ) from None
        except KeyboardInterrupt:
            raise click.ClickException("Interrupted.") from None


@click.group(
    cls=ToolkitGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option(
    "--database-url",
    envvar="METRICS_TOOLKIT_DATABASE_URL",
    metavar="URL",
    help="Database to use, e.g. sqlite:///metrics.db or postgresql://user@host/db.",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="metrics-toolkit")
@click.pass_context
def main(ctx: click.Context, database_url: str | None, verbose: int) -> None:
    """Collect system metrics, keep them in SQLite or PostgreSQL, analyse and report them.

    Example: metrics-toolkit status
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = AppContext(database_url=database_url)
    ctx.obj = app
    ctx.call_on_close(app.close)


__all__ = ["main"]
