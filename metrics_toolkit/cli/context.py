"""What every command shares: the database URL, a lazily opened engine, output helpers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import click
from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from metrics_toolkit.store.db import (
    check_connection,
    make_engine,
    mask_url,
    resolve_url,
    session_scope,
)
from metrics_toolkit.store.migrate import ensure_schema


@dataclass
class AppContext:
    """Built once per invocation by the root command; passed down as ``ctx.obj``."""

    database_url: str | None = None
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def url_text(self) -> str:
        return mask_url(resolve_url(self.database_url))

    def engine(self, *, migrate: bool = True) -> Engine:
        """The engine, connected and (unless ``migrate=False``) with a current schema."""
        if self._engine is None:
            engine = make_engine(self.database_url)
            check_connection(engine)
            if migrate:
                ensure_schema(engine)
            self._engine = engine
        return self._engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block succeeds."""
        with session_scope(self.engine()) as session:
            yield session

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


pass_app = click.make_pass_decorator(AppContext)


def console() -> Console:
    # A fresh console per call so CliRunner's captured stdout is honoured.
    return Console(soft_wrap=True, highlight=False)


def err_console() -> Console:
    return Console(stderr=True, soft_wrap=True, highlight=False)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str, sort_keys=False))


def format_json_value(value: Any) -> str:
    return json.dumps(value, default=str)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
