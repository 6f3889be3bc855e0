"""``metrics-toolkit users``: accounts for the explorer."""

from __future__ import annotations

import sys

import click
from rich.table import Table

from metrics_toolkit.cli.context import AppContext, console, echo_json, json_option, pass_app
from metrics_toolkit.store import users
from metrics_toolkit.store.schemas import UserResponse


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise click.ClickException("--password-stdin given but standard input is empty.")
        return line.rstrip("\r\n")
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


password_stdin = click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)


@click.group("users")
def users_group() -> None:
    """Manage the accounts that may log in to the explorer."""


@users_group.command("add")
@click.argument("username")
@password_stdin
@click.option(
    "--admin", is_flag=True, help="May open the explorer's Admin page (the first user always may)."
)
@pass_app
def add(app: AppContext, username: str, password_stdin: bool, admin: bool) -> None:
    """Create a user; the password is prompted for (or read from stdin).

    The first user created is an admin; later ones only with --admin.

    Example: echo 's3cret-pass' | metrics-toolkit users add alice --password-stdin --admin
    """
    password = _read_password(password_stdin)
    with app.session() as session:
        user = users.add_user(session=session, username=username, password=password, admin=admin)
        role = " (admin)" if user.is_admin else ""
        click.echo(f"Created user {user.username!r}{role}.")


@users_group.command("list")
@json_option
@pass_app
def list_(app: AppContext, as_json: bool) -> None:
    """List users: whether they are admins, their creation and last login times.

    Example: metrics-toolkit users list --json
    """
    with app.session() as session:
        rows = [UserResponse.model_validate(u) for u in users.list_users(session=session)]
    if as_json:
        echo_json([row.model_dump(mode="json") for row in rows])
        return
    if not rows:
        click.echo("No users yet. Create one with: metrics-toolkit users add NAME")
        return
    table = Table("username", "admin", "created (UTC)", "last login (UTC)")
    for row in rows:
        last = row.last_login.strftime("%Y-%m-%d %H:%M:%S") if row.last_login else "never"
        created = row.created_at.strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(row.username, "yes" if row.is_admin else "no", created, last)
    console().print(table)


@users_group.command("passwd")
@click.argument("username")
@password_stdin
@pass_app
def passwd(app: AppContext, username: str, password_stdin: bool) -> None:
    """Set a new password for a user.

    Example: metrics-toolkit users passwd alice
    """
    with app.session() as session:
        users.set_password(
            session=session, username=username, password=_read_password(password_stdin)
        )
    click.echo(f"Password changed for {username!r}.")


@users_group.command("remove")
@click.argument("username")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def remove(app: AppContext, username: str, yes: bool) -> None:
    """Delete a user.

    Example: metrics-toolkit users remove alice --yes
    """
    if not yes:
        with app.session() as session:
            users.require_user(session=session, username=username)
        click.confirm(f"Delete user {username!r}?", abort=True)
    with app.session() as session:
        users.remove_user(session=session, username=username)
    click.echo(f"Removed user {username!r}.")


COMMANDS = [users_group]
