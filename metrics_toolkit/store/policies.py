"""The active archive policy: read it (creating the default), change it, validate it.

The active policy is the first ``archive_policies`` row by id, as in the seed. Functions
take a session and never commit, except :func:`read_policy`, which opens its own.

The policy has two shapes: the ORM row (:class:`~metrics_toolkit.store.models.ArchivePolicy`,
bound to a session) and :class:`PolicySettings`, the same values detached from any session:
what the report header, the explorer's admin page and the archive run's record use. The
JSON output of ``policy show`` is the pydantic ``store.schemas.ArchivePolicyResponse`` of
the row (it adds the id and the row's times).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, overload

from sqlalchemy import Connection, Engine, select
from sqlalchemy.orm import Session

from metrics_toolkit.intervals import as_utc
from metrics_toolkit.store.models import ArchivePolicy, validate_policy_values


@dataclass(frozen=True)
class PolicySettings:
    """The archive policy's settings and last run, detached from any session (times UTC)."""

    retention_days: int
    downsample_after_days: int
    downsample_interval: str
    archive_enabled: bool
    last_archive_run: datetime | None = None

    @classmethod
    def of(cls, policy: ArchivePolicy) -> PolicySettings:
        last = policy.last_archive_run
        return cls(
            retention_days=policy.retention_days,
            downsample_after_days=policy.downsample_after_days,
            downsample_interval=policy.downsample_interval,
            archive_enabled=policy.archive_enabled,
            last_archive_run=None if last is None else as_utc(last),
        )

    def settings(self) -> dict[str, Any]:
        """The four settings (without the last run), as ``archive.plan.plan`` takes them."""
        return {
            "retention_days": self.retention_days,
            "downsample_after_days": self.downsample_after_days,
            "downsample_interval": self.downsample_interval,
            "archive_enabled": self.archive_enabled,
        }


@overload
def read_policy(bind: Engine | Connection, *, create: Literal[True] = ...) -> PolicySettings: ...
@overload
def read_policy(bind: Engine | Connection, *, create: bool) -> PolicySettings | None: ...
def read_policy(bind: Engine | Connection, *, create: bool = True) -> PolicySettings | None:
    """The active policy, read in a short session of its own on ``bind``.

    With ``create`` (the explorer), the default policy is stored when there is none, so the
    result is never None; without (a report), nothing is written and None means "never set".
    On a connection already in a transaction, the read joins it and commits nothing.
    """
    with Session(bind=bind) as session:
        policy = get_active_policy(session=session, create=create)
        found = None if policy is None else PolicySettings.of(policy)
        if create:
            session.commit()
    return found


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
