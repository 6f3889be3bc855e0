"""Turn what a caller hands us (engine, connection, session, URL) into a connection."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from metrics_toolkit.store.db import check_connection, make_engine

#: Anything ``load_frame`` and friends accept as a database.
Source = Engine | Connection | Session | str | URL


@contextmanager
def connect(source: Source | Any) -> Iterator[Connection]:
    """A connection for ``source``; an engine made from a URL is disposed afterwards.

    A ``Connection`` or ``Session`` is used as it is, inside the caller's transaction.
    """
    if isinstance(source, Connection):
        yield source
    elif isinstance(source, Session):
        yield source.connection()
    elif isinstance(source, Engine):
        with source.connect() as connection:
            yield connection
    elif isinstance(source, str | URL):
        engine = make_engine(source)
        try:
            check_connection(engine)
            with engine.connect() as connection:
                yield connection
        finally:
            engine.dispose()
    else:
        msg = (
            f"Cannot read metrics from {type(source).__name__}: pass a SQLAlchemy Engine, "
            "Connection, Session or a database URL string"
        )
        raise TypeError(msg)
