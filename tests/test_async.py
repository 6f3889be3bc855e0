"""The seed's async pattern: async engine, AsyncSessionLocal, get_db."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bcrypt
import httpx
import pytest
from fastapi import Depends, FastAPI
from sqlalchemy import Float, cast, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from metrics_toolkit.store import db
from metrics_toolkit.store.db import make_engine
from metrics_toolkit.store.models import ArchivePolicy, MetricsSnapshot, User


async def test_async_user_snapshot_and_policy(
    async_session_factory: async_sessionmaker[AsyncSession],
) -> None:
    AsyncSessionLocal = async_session_factory
    async with AsyncSessionLocal() as session:
        password_hash = bcrypt.hashpw(b"admin123", bcrypt.gensalt()).decode()
        session.add(User(username="admin", password_hash=password_hash))
        session.add(
            MetricsSnapshot(
                timestamp=datetime.now(UTC),
                metric_type="aggregated",
                metric_data={"host": "h", "cpu": {"usage_percent": 45.2}},
            )
        )
        session.add(ArchivePolicy(retention_days=30, archive_enabled=True))
        await session.commit()

    async with AsyncSessionLocal() as session:
        result = await session.execute(select(User).where(User.username == "admin"))
        user = result.scalar_one_or_none()
        assert user is not None and user.created_at.tzinfo == UTC
        user.last_login = datetime.now(UTC)
        await session.commit()
        assert user.last_login is not None

        result = await session.execute(
            select(
                MetricsSnapshot.timestamp,
                cast(MetricsSnapshot.metric_data["cpu"]["usage_percent"], Float).label("cpu"),
            ).where(MetricsSnapshot.timestamp >= datetime.now(UTC) - timedelta(hours=1))
        )
        rows = result.all()
        assert [row.cpu for row in rows] == [45.2]
        assert rows[0].timestamp.tzinfo == UTC

        policy = (
            await session.execute(select(ArchivePolicy).order_by(ArchivePolicy.id).limit(1))
        ).scalar_one()
        before = policy.updated_at
        policy.retention_days = 7
        await session.commit()
        await session.refresh(policy)
        assert policy.retention_days == 7 and policy.updated_at > before


async def test_get_db_is_the_seeds_dependency_through_a_real_fastapi_app(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seed's own usage, ``Depends(get_db)`` with no argument, served by FastAPI: the
    session comes from the module-level ``AsyncSessionLocal`` of the configured URL."""
    monkeypatch.setenv("METRICS_TOOLKIT_DATABASE_URL", db_url)
    await db.dispose_default_engine()
    app = FastAPI()

    @app.get("/api/users")
    async def get_users(session: AsyncSession = Depends(db.get_db)) -> list[str]:  # noqa: B008
        result = await session.execute(select(User).order_by(User.username))
        return [user.username for user in result.scalars().all()]

    @app.post("/api/users/{name}")
    async def add_user(name: str, session: AsyncSession = Depends(db.get_db)) -> int:  # noqa: B008
        session.add(User(username=name, password_hash="x"))
        await session.commit()
        return len((await session.execute(select(User))).scalars().all())

    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://seed") as client:
            assert (await client.get("/api/users")).json() == []
            assert (await client.post("/api/users/bob")).json() == 1
            assert (await client.post("/api/users/alice")).json() == 2
            assert (await client.get("/api/users")).json() == ["alice", "bob"]
        assert isinstance(db.engine, AsyncEngine)
        assert db.engine.url.database == make_url(db_url).database
        assert db.AsyncSessionLocal.kw["bind"] is db.engine
    finally:
        await db.dispose_default_engine()
    # The rows went to the configured database, not somewhere else.
    engine = make_engine(db_url)
    with engine.connect() as connection:
        names = connection.execute(select(User.username)).scalars().all()
    engine.dispose()
    assert sorted(names) == ["alice", "bob"]


def test_importing_the_db_module_opens_no_connection(tmp_path: Path) -> None:
    """``engine`` and ``AsyncSessionLocal`` exist as names but connect only when used: with
    a URL naming a closed port, importing and even touching ``engine`` succeeds."""
    env = {**os.environ, "METRICS_TOOLKIT_DATABASE_URL": "postgresql://u:secret@127.0.0.1:1/x"}
    code = (
        "import metrics_toolkit.store.db as db\n"
        "assert not db._defaults\n"
        "print(db.mask_url(db.engine.url), type(db.AsyncSessionLocal).__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["postgresql://u:***@127.0.0.1:1/x", "async_sessionmaker"]
