"""Column types and SQL functions shared by the models and the migrations.

Kept apart from ``models.py`` so that migration scripts can import them without importing
the (changing) model classes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

from metrics_toolkit.intervals import as_utc

#: JSON on SQLite (and elsewhere), JSONB on PostgreSQL.
JSONDocument = JSON().with_variant(JSONB(), "postgresql")


def sqlite_timestamp(value: datetime) -> str:
    """The text SQLAlchemy's SQLite ``DateTime`` stores: naive UTC with microseconds (what
    :class:`UTCDateTime` writes and reads back), for statements that bypass the ORM."""
    return as_utc(value).replace(tzinfo=None).isoformat(" ", "microseconds")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    PostgreSQL stores ``timestamptz``. SQLite has no time zones, so values are stored as
    UTC text and come back with ``tzinfo=UTC``. A naive datetime is taken to be UTC (the
    seed's ``datetime.utcnow()`` examples write naive UTC values); an aware one is
    converted to UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            msg = f"expected a datetime, got {type(value).__name__}: {value!r}"
            raise TypeError(msg)
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if not isinstance(value, datetime):
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class utcnow(FunctionElement[datetime]):
    """The current time as a UTC timestamp, with sub-second precision on every backend.

    ``func.now()`` becomes ``CURRENT_TIMESTAMP`` on SQLite, which has one-second
    resolution: an ``updated_at`` set twice in the same second would not advance.
    """

    type = UTCDateTime()
    inherit_cache = True


@compiles(utcnow)
def _utcnow_default(element: utcnow, compiler: SQLCompiler, **kw: Any) -> str:
    return "CURRENT_TIMESTAMP"


@compiles(utcnow, "postgresql")
def _utcnow_postgresql(element: utcnow, compiler: SQLCompiler, **kw: Any) -> str:
    # statement_timestamp(), not now(): now() is frozen at the start of the transaction.
    return "statement_timestamp()"


@compiles(utcnow, "sqlite")
def _utcnow_sqlite(element: utcnow, compiler: SQLCompiler, **kw: Any) -> str:
    # Same text layout SQLAlchemy uses for SQLite datetimes, so values sort and parse alike.
    return "strftime('%Y-%m-%d %H:%M:%f', 'now')"
