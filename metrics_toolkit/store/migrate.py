"""Schema migrations (Alembic, shipped inside the package).

``upgrade(engine)`` brings any database, new or older, to the newest revision. Commands
that open a database call :func:`ensure_schema`: a brand-new empty database is created on
the spot (zero set-up for SQLite); one at an older revision is refused with the command
that upgrades it, so a schema change never happens behind an operator's back.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from metrics_toolkit.errors import DatabaseError
from metrics_toolkit.store.db import mask_url, table_names
from metrics_toolkit.store.locks import exclusive

SCRIPT_LOCATION = "metrics_toolkit.store:migrations"


def alembic_config(engine: Engine | None = None) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if engine is not None:
        config.set_main_option(
            "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
        )
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for a database with no schema."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


#: How long a process waits for another one creating or migrating the same schema.
SCHEMA_LOCK_SECONDS = 300.0


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (default: the newest), holding the schema lock
    (several processes may start on a new database at once)."""
    with exclusive(engine, "schema", wait_seconds=SCHEMA_LOCK_SECONDS):
        _upgrade(engine, revision)


def _upgrade(engine: Engine, revision: str) -> None:
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def ensure_schema(engine: Engine) -> None:
    """Create the schema in an empty database; refuse one that needs an upgrade.

    Creation holds the schema lock (an advisory lock on PostgreSQL, a file lock beside a
    SQLite file) and looks again once it has it, so processes starting together on a new
    database create it once and all go on.
    """
    if current_revision(engine) == head_revision():
        return
    with exclusive(engine, "schema", wait_seconds=SCHEMA_LOCK_SECONDS):
        current = current_revision(engine)
        if current == head_revision():
            return
        if current is None and not (table_names(engine) - {"alembic_version"}):
            _upgrade(engine, "head")
            return
    if current is None:
        msg = (
            f"Database {mask_url(engine.url)} has tables but no metrics-toolkit schema "
            "version; point --database-url at an empty database or one made by metrics-toolkit"
        )
    else:
        msg = (
            f"Database {mask_url(engine.url)} is at schema revision {current}, this version "
            f"needs {head_revision()}: run `metrics-toolkit db upgrade`"
        )
    raise DatabaseError(msg)
