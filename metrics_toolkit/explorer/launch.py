"""How ``metrics-toolkit explore`` starts Streamlit: where the app is and what to run."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from metrics_toolkit.errors import MetricsToolkitError
from metrics_toolkit.store.db import ENV_VARS, is_sqlite, resolve_url


def app_path() -> Path:
    """The explorer page, :mod:`metrics_toolkit.explorer.app`, shipped inside the package."""
    return Path(__file__).resolve().with_name("app.py")


def require_streamlit() -> None:
    """Raise a clear error when Streamlit is not installed."""
    if importlib.util.find_spec("streamlit") is None:
        msg = "The explorer needs Streamlit (a metrics-toolkit dependency): pip install streamlit."
        raise MetricsToolkitError(msg)


def absolute_url(url: str | None) -> str:
    """The database URL with a relative SQLite path made absolute (the app may run elsewhere)."""
    resolved = resolve_url(url)
    database = resolved.database
    if (
        is_sqlite(resolved)
        and database
        and database != ":memory:"
        and not database.startswith("file:")
    ):
        resolved = resolved.set(database=str(Path(database).expanduser().resolve()))
    return resolved.set(drivername=resolved.get_backend_name()).render_as_string(
        hide_password=False
    )


def streamlit_command(
    app: Path,
    *,
    port: int | None = None,
    address: str | None = None,
    headless: bool | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """``python -m streamlit run APP`` with the server options given, served as a product.

    No file watcher (it would re-read the tree and flood the log with "Inotify queue
    overflowed" beside busy notebooks), no rerun on save, and the viewer toolbar (no
    developer menu). ``headless=None`` leaves it to Streamlit (headless when there is no
    display); ``extra`` may override any of these.
    """
    command = [sys.executable, "-m", "streamlit", "run", str(app)]
    if port is not None:
        command += ["--server.port", str(port)]
    if address is not None:
        command += ["--server.address", address]
    if headless is not None:
        command += ["--server.headless", "true" if headless else "false"]
    command += ["--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer"]
    command += ["--server.fileWatcherType", "none", "--server.runOnSave", "false"]
    return command + list(extra)


def app_environment(url: str | None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for the app: the database URL in ``METRICS_TOOLKIT_DATABASE_URL``.

    The URL travels through the environment, never the command line, so a password does
    not show in ``ps``.
    """
    env = dict(os.environ if base is None else base)
    env[ENV_VARS[0]] = absolute_url(url)
    return env
