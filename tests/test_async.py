"""The seed's async pattern: async engine, AsyncSessionLocal, get_db."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

import bcrypt
from sqlalchemy import Float, cast, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from metrics_toolkit.store.db import get_db
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


async def test_get_db_yields_a_working_session(
    async_session_factory: async_sessionmaker[AsyncSession],
) -> None:
    dependency = partial(get_db, async_session_factory)
    sessions = dependency()
    session = await anext(sessions)
    assert isinstance(session, AsyncSession)
    assert (await session.execute(select(User))).scalars().all() == []
    await sessions.aclose()
