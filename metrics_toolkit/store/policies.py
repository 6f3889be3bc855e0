"""The active archive policy: read it (creating the default), change it, validate it.

The active policy is the first ``archive_policies`` row by id, as in the seed. Functions
take a session and never commit.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from metrics_toolkit.store.models import ArchivePolicy, validate_policy_values


def get_active_policy(*, session: Session, create: bool = True) -> ArchivePolicy | None:
    """The first policy by id; with ``create``, a default one is added when none exists."""
    policy = session.execute(
        select(ArchivePolicy).order_by(ArchivePolicy.id).limit(1)
    ).scalar_one_or_none()
    if policy is None and create:
        policy = ArchivePolicy()
        session.add(policy)
        session.flush()
        session.refresh(policy)
    return policy


def update_policy(
    *,
    session: Session,
    retention_days: int | None = None,
    downsample_after_days: int | None = None,
    downsample_interval: str | None = None,
    archive_enabled: bool | None = None,
) -> ArchivePolicy:
    """Change the active policy; the new values are validated together before any write."""
    policy = get_active_policy(session=session)
    assert policy is not None
    new_retention = policy.retention_days if retention_days is None else retention_days
    new_after = (
        policy.downsample_after_days if downsample_after_days is None else downsample_after_days
    )
    new_interval = (
        policy.downsample_interval if downsample_interval is None else downsample_interval
    )
    validate_policy_values(
        retention_days=new_retention,
        downsample_after_days=new_after,
        downsample_interval=new_interval,
    )
    policy.retention_days = new_retention
    policy.downsample_after_days = new_after
    policy.downsample_interval = new_interval
    if archive_enabled is not None:
        policy.archive_enabled = archive_enabled
    session.flush()
    session.refresh(policy)
    return policy
