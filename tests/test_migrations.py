"""Migrations produce exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

import warnings

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from metrics_toolkit.errors import DatabaseError
from metrics_toolkit.store import migrate
from metrics_toolkit.store.db import make_engine
from metrics_toolkit.store.models import Base

EXPRESSION_INDEX = "uq_metrics_snapshots_identity"
PARTIAL_INDEXES = {EXPRESSION_INDEX, "ix_metrics_snapshots_rollups", "uq_users_username_lower"}


def _skip_expression_index(obj: object, name: str | None, type_: str, *args: object) -> bool:
    # Expression and partial indexes are compared by _index_sql below: alembic cannot
    # reflect them on SQLite, and PostgreSQL normalises their text.
    return not (type_ == "index" and name in PARTIAL_INDEXES)


def _index_sql(engine: Engine, name: str = EXPRESSION_INDEX) -> str:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            sql = "SELECT sql FROM sqlite_master WHERE type='index' AND name=:n"
        else:
            sql = "SELECT indexdef FROM pg_indexes WHERE indexname=:n"
        return str(connection.execute(text(sql), {"n": name}).scalar_one())


def test_migrated_schema_equals_models(engine: Engine) -> None:
    assert migrate.current_revision(engine) == migrate.head_revision()
    with engine.connect() as connection, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "skipped unsupported reflection of expression index"
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_object": _skip_expression_index,
            },
        )
        assert compare_metadata(context, Base.metadata) == []
    rollups_sql = _index_sql(engine, "ix_metrics_snapshots_rollups").lower()
    assert "_rollup" in rollups_sql and "timestamp" in rollups_sql and "where" in rollups_sql
    index_sql = _index_sql(engine).lower()
    assert "unique" in index_sql and "metric_type" in index_sql and "host" in index_sql
    assert "_rollup" in index_sql  # partial: raw rows only
    users_sql = _index_sql(engine, "uq_users_username_lower").lower()
    assert "unique" in users_sql and "lower(" in users_sql and "username" in users_sql

    inspector = inspect(engine)
    checks = {c["name"] for c in inspector.get_check_constraints("archive_policies")}
    assert checks == {
        "ck_archive_policies_retention_positive",
        "ck_archive_policies_downsample_before_retention",
    }
    defaults = {c["name"]: c["default"] for c in inspector.get_columns("users")}
    assert defaults["created_at"] is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the lower(username) index: an expression index
        assert {ix["name"] for ix in inspector.get_indexes("users")} >= {"ix_users_username"}


def test_upgrade_from_empty_and_downgrade_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path}/fresh.db")
    assert migrate.current_revision(engine) is None
    migrate.ensure_schema(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    migrate.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(engine)
    assert {"users", "metrics_snapshots", "config", "archive_policies"} <= set(
        inspect(engine).get_table_names()
    )
    engine.dispose()


def test_ensure_schema_refuses_foreign_or_old_databases(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path}/foreign.db")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE unrelated (id integer)"))
    with pytest.raises(DatabaseError, match="has tables but no metrics-toolkit schema"):
        migrate.ensure_schema(engine)
    engine.dispose()

    old = make_engine(f"sqlite:///{tmp_path}/old.db")
    migrate.upgrade(old)
    with old.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num='0000_old'"))
    with pytest.raises(DatabaseError, match="metrics-toolkit db upgrade"):
        migrate.ensure_schema(old)
    old.dispose()
