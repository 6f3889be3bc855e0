"""``metrics-toolkit explore``: start the Streamlit explorer on the database."""

from __future__ import annotations

import signal
import subprocess
from types import FrameType

import click

from metrics_toolkit.cli.context import AppContext, pass_app
from metrics_toolkit.explorer.connection import open_database
from metrics_toolkit.explorer.launch import (
    absolute_url,
    app_environment,
    app_path,
    require_streamlit,
    streamlit_command,
)


@click.command(
    "explore", context_settings={"ignore_unknown_options": True, "allow_extra_args": False}
)
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8501, show_default=True, help="HTTP port."
)
@click.option(
    "--address",
    default="127.0.0.1",
    show_default=True,
    help="Interface to listen on; 0.0.0.0 serves the whole network (users must log in).",
)
@click.option(
    "--headless/--open-browser",
    default=None,
    help="Do not / do open a browser tab (default: Streamlit decides from the display).",
)
@click.argument("streamlit_args", nargs=-1, type=click.UNPROCESSED)
@pass_app
@click.pass_context
def explore(
    ctx: click.Context,
    app: AppContext,
    port: int,
    address: str,
    headless: bool | None,
    streamlit_args: tuple[str, ...],
) -> None:
    """Open the web explorer (Streamlit) on the database; Ctrl+C stops it.

    Users log in with accounts made by `metrics-toolkit users add NAME`. Extra arguments
    go to `streamlit run` (e.g. --theme.base dark). The database URL reaches the app
    through the environment, never the command line.

    Example: metrics-toolkit --database-url sqlite:///demo/metrics.db explore --port 8501
    """
    require_streamlit()
    path = app_path()
    url = absolute_url(app.database_url)
    open_database(url).dispose()  # fail here, in one line, rather than in the browser
    command = streamlit_command(
        path, port=port, address=address, headless=headless, extra=streamlit_args
    )
    click.echo(
        f"Explorer for {app.url_text} on http://{address}:{port} (Ctrl+C stops it)", err=True
    )
    ctx.exit(run_until_stopped(command, app_environment(url)))


def run_until_stopped(command: list[str], env: dict[str, str]) -> int:
    """Run ``command``, passing SIGTERM on to it; Ctrl+C reaches it through the terminal.

    Returns its exit code (0 after Ctrl+C), so stopping ``explore`` always stops Streamlit.
    """
    process = subprocess.Popen(command, env=env)

    def forward(signum: int, frame: FrameType | None) -> None:
        process.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        while True:
            try:
                code = process.wait()
                break
            except KeyboardInterrupt:  # the child got SIGINT too; wait for it to finish
                continue
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0 if code in (-signal.SIGINT, -signal.SIGTERM) else code


COMMANDS = [explore]
