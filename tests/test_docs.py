"""Docs stay honest: every command has help with an example, every config key is documented."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from metrics_toolkit.cli import main
from metrics_toolkit.store.config_keys import CONFIG_KEYS

ROOT = Path(__file__).resolve().parent.parent


CTX = click.Context(main)


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for name in group.list_commands(CTX):
        command = group.get_command(CTX, name)
        assert command is not None, f"{name} is listed but cannot be loaded"
        path = (*prefix, name)
        found.append(path)
        if isinstance(command, click.Group):
            found.extend(_commands(command, path))
    return found


@pytest.mark.parametrize("path", _commands(main), ids=" ".join)
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    command: click.Command | None = main
    for name in path:
        assert isinstance(command, click.Group)
        command = command.get_command(CTX, name)
    assert command is not None
    assert command.help, f"{' '.join(path)} has no help text"
    if not isinstance(command, click.Group):
        assert "Example:" in command.help, f"{' '.join(path)} help has no Example: line"


def test_top_level_help_lists_groups() -> None:
    result = CliRunner().invoke(main, ["--help"])
    for name in main.list_commands(CTX):
        assert name in result.output


def test_light_commands_do_not_import_pandas() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from metrics_toolkit.cli import main; "
        "main.get_command(None, 'collect'); main.get_command(None, 'users'); "
        "print('pandas' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("entry", CONFIG_KEYS, ids=lambda e: e.key)
def test_config_keys_are_documented(entry: object) -> None:
    readme = (ROOT / "README.md").read_text()
    assert f"`{entry.key}`" in readme, f"README does not document config key {entry.key}"  # type: ignore[attr-defined]


def test_public_api_names_resolve() -> None:
    import metrics_toolkit

    for name in metrics_toolkit.__all__:
        assert getattr(metrics_toolkit, name) is not None, name
    from metrics_toolkit.frames.load import load_frame

    assert metrics_toolkit.load_frame is load_frame
