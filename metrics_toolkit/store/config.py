"""Read and write runtime config (the ``config`` table) with typed defaults.

``set_config`` is an upsert (``INSERT ... ON CONFLICT DO UPDATE`` on both PostgreSQL and
SQLite) that refreshes ``updated_at``. Every key is checked against
:data:`metrics_toolkit.store.config_keys.CONFIG_KEYS`. Functions never commit.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from metrics_toolkit.errors import ConfigError
from metrics_toolkit.store.config_keys import CONFIG_KEYS, known_key
from metrics_toolkit.store.models import Config
from metrics_toolkit.store.sqltypes import utcnow


def parse_value(text: str) -> Any:
    """Parse a JSON value typed on the command line, with a hint for bare strings."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        msg = (
            f"Config value {_shown(text)!r} is not JSON. Quote strings ('\"5min\"'), "
            "write numbers and true/false/null bare, lists as [..], objects as {..}."
        )
        raise ConfigError(msg) from None
    except RecursionError:
        msg = "Config value is nested too deeply to be read; no config value nests that deep."
        raise ConfigError(msg) from None


def _shown(text: str) -> str:
    return text if len(text) <= 80 else text[:80] + "…"


def upsert_config(*, session: Session, key: str, value: Any) -> None:
    """Insert or update one row, whatever the key (the seed's upsert, on both backends)."""
    _check_json(key, value)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(Config).values(key=key, value=value)
    stmt = stmt.on_conflict_do_update(
        index_elements=[Config.key], set_={"value": stmt.excluded.value, "updated_at": utcnow()}
    )
    session.execute(stmt)


def _check_json(key: str, value: Any) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as error:
        msg = f"Config {key!r}: the value cannot be stored as JSON ({error})."
        raise ConfigError(msg) from None


def set_config(*, session: Session, key: str, value: Any) -> Any:
    """Validate and store ``value`` for a known ``key``; returns the value."""
    known_key(key).validate(value)
    upsert_config(session=session, key=key, value=value)
    return value


def get_config(*, session: Session, key: str) -> Any:
    """The stored value of a known ``key``, or its default."""
    entry = known_key(key)
    row = session.get(Config, key)
    return entry.default if row is None else row.value


def delete_config(*, session: Session, key: str) -> bool:
    """Forget the stored value (the default applies again). True if one was stored."""
    known_key(key)
    result = session.execute(delete(Config).where(Config.key == key))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def list_config(*, session: Session) -> list[tuple[str, Any, bool, datetime | None]]:
    """Every known key as ``(key, value, is_set, updated_at)``, plus unknown stored rows."""
    stored = {row.key: row for row in session.execute(select(Config)).scalars()}
    rows: list[tuple[str, Any, bool, datetime | None]] = []
    for entry in CONFIG_KEYS:
        row = stored.pop(entry.key, None)
        if row is None:
            rows.append((entry.key, entry.default, False, None))
        else:
            rows.append((entry.key, row.value, True, row.updated_at))
    rows.extend((key, row.value, True, row.updated_at) for key, row in sorted(stored.items()))
    return rows
