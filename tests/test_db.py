from __future__ import annotations

import pytest
from sqlalchemy import text

from metrics_toolkit.errors import DatabaseError, InvalidDatabaseURL
from metrics_toolkit.store.db import async_url, check_connection, make_engine, mask_url, resolve_url


def test_url_resolution_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("METRICS_TOOLKIT_DATABASE_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert str(resolve_url()) == "sqlite+pysqlite:///metrics.db"
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/generic")
    assert resolve_url().database == "generic"
    monkeypatch.setenv("METRICS_TOOLKIT_DATABASE_URL", "sqlite:///specific.db")
    assert resolve_url().database == "specific.db"
    assert resolve_url("postgres://u@h/explicit").database == "explicit"


def test_plain_postgresql_urls_use_psycopg3() -> None:
    assert resolve_url("postgresql://u:p@h:5432/d").drivername == "postgresql+psycopg"
    assert resolve_url("postgres://u@h/d").drivername == "postgresql+psycopg"
    assert async_url("postgresql://u@h/d").drivername == "postgresql+psycopg"
    assert async_url("sqlite:///x.db").drivername == "sqlite+aiosqlite"


@pytest.mark.parametrize(
    "url",
    ["postgresql://alice:hunter2@db.example:5432/m", "postgresql+psycopg://alice:hunter2@h/m"],
)
def test_mask_url_never_shows_password(url: str) -> None:
    masked = mask_url(url)
    assert "hunter2" not in masked
    assert "alice:***@" in masked


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("not a url", "Invalid database URL"),
        ("mysql://root:hunter2@localhost/m", "Unsupported database"),
        ("oracle://u:hunter2@h/x", "Unsupported database"),
    ],
)
def test_bad_urls_are_one_clear_error(url: str, fragment: str) -> None:
    with pytest.raises(InvalidDatabaseURL) as info:
        resolve_url(url)
    assert fragment in str(info.value)
    assert "hunter2" not in str(info.value)
    assert "\n" not in str(info.value)


def test_unreachable_postgres_is_one_line_without_password() -> None:
    engine = make_engine("postgresql://bob:hunter2@127.0.0.1:1/nothing")
    with pytest.raises(DatabaseError) as info:
        check_connection(engine)
    message = str(info.value)
    assert "127.0.0.1:1" in message and "hunter2" not in message and "\n" not in message


def test_sqlite_gets_wal_and_busy_timeout(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path}/sub/dir/m.db")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 30000
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()
