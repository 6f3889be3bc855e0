"""``metrics-toolkit policy``: the archive policy (downsampling and retention)."""

from __future__ import annotations

import click

from metrics_toolkit.cli.context import AppContext, echo_json, json_option, pass_app
from metrics_toolkit.store import policies
from metrics_toolkit.store.models import ArchivePolicy
from metrics_toolkit.store.schemas import ArchivePolicyResponse


def describe_policy(policy: ArchivePolicy) -> str:
    last = (
        policy.last_archive_run.strftime("%Y-%m-%d %H:%M:%S UTC")
        if policy.last_archive_run
        else "never"
    )
    archive = "on" if policy.archive_enabled else "off"
    return (
        f"Raw data for {policy.downsample_after_days} days, then rolled up to "
        f"{policy.downsample_interval} buckets; deleted after {policy.retention_days} days.\n"
        f"Archive before replace/delete: {archive}. Last archive run: {last}."
    )


@click.group("policy")
def policy_group() -> None:
    """Show or change the archive policy (downsampling and retention)."""


@policy_group.command("show")
@json_option
@pass_app
def show(app: AppContext, as_json: bool) -> None:
    """Show the active archive policy (created with defaults when absent).

    Example: metrics-toolkit policy show
    """
    with app.session() as session:
        policy = policies.get_active_policy(session=session)
        assert policy is not None
        if as_json:
            echo_json(ArchivePolicyResponse.model_validate(policy).model_dump(mode="json"))
        else:
            click.echo(describe_policy(policy))


@policy_group.command("set")
@click.option("--retention-days", type=click.IntRange(min=1), help="Delete data older than this.")
@click.option(
    "--downsample-after-days", type=click.IntRange(min=0), help="Roll up data older than this."
)
@click.option("--interval", "downsample_interval", help="Rollup bucket width, e.g. 5min, 1h, 1D.")
@click.option("--archive/--no-archive", default=None, help="Archive rows before they go.")
@pass_app
def set_(
    app: AppContext,
    retention_days: int | None,
    downsample_after_days: int | None,
    downsample_interval: str | None,
    archive: bool | None,
) -> None:
    """Change the active archive policy; values are checked together before saving.

    Example: metrics-toolkit policy set --retention-days 30 --downsample-after-days 7 --interval 1h
    """
    with app.session() as session:
        policy = policies.update_policy(
            session=session,
            retention_days=retention_days,
            downsample_after_days=downsample_after_days,
            downsample_interval=downsample_interval,
            archive_enabled=archive,
        )
        click.echo(describe_policy(policy))


COMMANDS = [policy_group]
