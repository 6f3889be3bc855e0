"""``metrics-toolkit config``: runtime settings stored in the database."""

from __future__ import annotations

import click
from rich.table import Table

from metrics_toolkit.cli.context import (
    AppContext,
    console,
    echo_json,
    format_json_value,
    json_option,
    pass_app,
)
from metrics_toolkit.store import config as config_store
from metrics_toolkit.store.config_keys import CONFIG_KEYS


@click.group("config")
def config_group() -> None:
    """Read and change runtime settings (JSON values, stored in the database)."""


@config_group.command("get")
@click.argument("key")
@pass_app
def get(app: AppContext, key: str) -> None:
    """Print the value of KEY as JSON (its default when it was never set).

    Example: metrics-toolkit config get collector.interval
    """
    with app.session() as session:
        click.echo(format_json_value(config_store.get_config(session=session, key=key)))


@config_group.command("set")
@click.argument("key")
@click.argument("value")
@pass_app
def set_(app: AppContext, key: str, value: str) -> None:
    """Store VALUE (JSON) for KEY.

    Example: metrics-toolkit config set collector.interval '"30s"'
    """
    parsed = config_store.parse_value(value)
    with app.session() as session:
        config_store.set_config(session=session, key=key, value=parsed)
    click.echo(f"{key} = {format_json_value(parsed)}")


@config_group.command("delete")
@click.argument("key")
@pass_app
def delete(app: AppContext, key: str) -> None:
    """Forget the stored value of KEY, so its default applies again.

    Example: metrics-toolkit config delete collector.interval
    """
    with app.session() as session:
        removed = config_store.delete_config(session=session, key=key)
    click.echo(f"{key}: {'reset to its default' if removed else 'was not set'}.")


@config_group.command("list")
@json_option
@pass_app
def list_(app: AppContext, as_json: bool) -> None:
    """List every key with its value and whether it was set or is the default.

    Example: metrics-toolkit config list
    """
    with app.session() as session:
        rows = config_store.list_config(session=session)
    if as_json:
        echo_json({key: value for key, value, _, _ in rows})
        return
    table = Table("key", "value", "source")
    for key, value, is_set, updated_at in rows:
        source = f"set {updated_at:%Y-%m-%d %H:%M}" if is_set and updated_at else "default"
        table.add_row(key, format_json_value(value), source)
    console().print(table)


@config_group.command("keys")
def keys() -> None:
    """Describe every known key with its default (no database needed).

    Example: metrics-toolkit config keys
    """
    table = Table("key", "default", "help")
    for entry in CONFIG_KEYS:
        table.add_row(entry.key, format_json_value(entry.default), entry.help)
    console().print(table)


COMMANDS = [config_group]
