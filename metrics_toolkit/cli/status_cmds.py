"""``metrics-toolkit status``: what is in the database."""

from __future__ import annotations

import click
from sqlalchemy import func, select

from metrics_toolkit.cli.context import AppContext, echo_json, json_option, pass_app
from metrics_toolkit.cli.policy_cmds import describe_policy
from metrics_toolkit.store import migrate, policies
from metrics_toolkit.store.models import Config, MetricsSnapshot, User


@click.command("status")
@json_option
@pass_app
def status(app: AppContext, as_json: bool) -> None:
    """Summarise the database: schema, snapshots, users, config and policy.

    Example: metrics-toolkit status
    """
    engine = app.engine()
    with app.session() as session:
        count, first, last = session.execute(
            select(
                func.count(MetricsSnapshot.id),
                func.min(MetricsSnapshot.timestamp),
                func.max(MetricsSnapshot.timestamp),
            )
        ).one()
        n_users = session.scalar(select(func.count(User.id)))
        n_config = session.scalar(select(func.count()).select_from(Config))
        policy = policies.get_active_policy(session=session)
        assert policy is not None
        summary = {
            "database": app.url_text,
            "backend": engine.dialect.name,
            "schema_revision": migrate.current_revision(engine),
            "snapshots": count,
            "first_snapshot": first,
            "last_snapshot": last,
            "users": n_users,
            "config_keys_set": n_config,
        }
        policy_text = describe_policy(policy)
    if as_json:
        echo_json(summary)
        return
    for key, value in summary.items():
        click.echo(f"{key.replace('_', ' '):>16}: {value if value is not None else '-'}")
    click.echo(policy_text)


COMMANDS = [status]
