"""The explorer's admin page as plain functions: policy, archive dry run, config, users.

``read_policy`` is :func:`metrics_toolkit.store.policies.read_policy` (the default policy is
stored when there is none).

Each function opens its own short transaction on ``engine``; validation errors are the
library's (:class:`~metrics_toolkit.errors.InvalidPolicy`,
:class:`~metrics_toolkit.errors.ConfigError`), raised before anything is written.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from metrics_toolkit.archive.runner import dry_run
from metrics_toolkit.store.config import list_config, parse_value, set_config
from metrics_toolkit.store.config_keys import KEYS
from metrics_toolkit.store.db import session_scope
from metrics_toolkit.store.policies import PolicySettings, update_policy
from metrics_toolkit.store.policies import read_policy as read_policy
from metrics_toolkit.store.users import list_users


def save_policy(
    engine: Engine,
    *,
    retention_days: int,
    downsample_after_days: int,
    downsample_interval: str,
    archive_enabled: bool,
) -> PolicySettings:
    """Validate and store the policy; :class:`InvalidPolicy` lists every problem found."""
    with session_scope(engine) as session:
        policy = update_policy(
            session=session,
            retention_days=int(retention_days),
            downsample_after_days=int(downsample_after_days),
            downsample_interval=downsample_interval.strip(),
            archive_enabled=bool(archive_enabled),
        )
        return PolicySettings.of(policy)


def plan_table(
    engine: Engine, *, now: datetime | None = None
) -> tuple[dict[str, Any], pd.DataFrame]:
    """What ``archive run`` would do at ``now``: the plan's boundaries and one row per action."""
    plan, actions = dry_run(engine, now=now)
    summary = {
        "now": plan.now,
        "rolled up before": plan.downsample_before,
        "deleted before": plan.delete_before,
        "interval": str(plan.interval),
        "archive": plan.archive,
    }
    table = pd.DataFrame(
        [(a.action, a.start, a.end, a.rows) for a in actions],
        columns=["action", "start", "end", "rows"],
    )
    return summary, table


def config_table(engine: Engine) -> pd.DataFrame:
    """Every known key (and any unknown stored one): value as JSON, whether set, help."""
    with session_scope(engine) as session:
        rows = list_config(session=session)
    return pd.DataFrame(
        [
            (
                key,
                json.dumps(value),
                "stored" if is_set else "default",
                updated,
                KEYS[key].help if key in KEYS else "(unknown key)",
            )
            for key, value, is_set, updated in rows
        ],
        columns=["key", "value", "source", "updated_at", "help"],
    )


def save_config(engine: Engine, key: str, text: str) -> Any:
    """Parse ``text`` as JSON and store it for ``key``; :class:`ConfigError` when invalid."""
    value = parse_value(text)
    with session_scope(engine) as session:
        return set_config(session=session, key=key, value=value)


def users_table(engine: Engine) -> pd.DataFrame:
    """User names, admin flags, creation and last login times (never the password hash)."""
    with session_scope(engine) as session:
        users = list_users(session=session)
        return pd.DataFrame(
            [(u.username, u.is_admin, u.created_at, u.last_login) for u in users],
            columns=["username", "admin", "created_at", "last_login"],
        )
