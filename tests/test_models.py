"""The seed's usage examples, run against SQLite and PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import bcrypt
import pytest
from pydantic import ValidationError
from sqlalchemy import Float, and_, cast, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from metrics_toolkit.errors import InvalidPolicy
from metrics_toolkit.store.config import upsert_config
from metrics_toolkit.store.models import ArchivePolicy, Config, MetricsSnapshot, User
from metrics_toolkit.store.schemas import ArchivePolicyResponse, UserResponse
from tests.helpers import T0, make_snapshot


def test_create_query_update_user(session: Session) -> None:
    password_hash = bcrypt.hashpw(b"admin123", bcrypt.gensalt()).decode()
    session.add(User(username="admin", password_hash=password_hash))
    session.commit()

    user = session.execute(select(User).where(User.username == "admin")).scalar_one_or_none()
    assert user is not None
    assert user.id is not None
    assert user.created_at.tzinfo is not None
    assert abs(user.created_at - datetime.now(UTC)) < timedelta(minutes=5)
    assert user.last_login is None
    assert bcrypt.checkpw(b"admin123", user.password_hash.encode())

    user.last_login = datetime.utcnow()  # the seed writes naive UTC
    session.commit()
    session.expire_all()
    reloaded = session.get(User, user.id)
    assert reloaded is not None and reloaded.last_login is not None
    assert reloaded.last_login.tzinfo == UTC
    assert abs(reloaded.last_login - datetime.now(UTC)) < timedelta(minutes=1)
    assert "admin" in repr(reloaded)


def test_username_is_unique(session: Session) -> None:
    session.add(User(username="dup", password_hash="x"))
    session.commit()
    session.add(User(username="dup", password_hash="y"))
    with pytest.raises(IntegrityError):
        session.commit()


def test_snapshot_create_and_time_range_query(session: Session) -> None:
    for minute in range(10):
        session.add(make_snapshot(T0 + timedelta(minutes=minute), cpu__usage_percent=minute))
    session.commit()
    start_time, end_time = T0 + timedelta(minutes=2), T0 + timedelta(minutes=5)
    snapshots = (
        session.execute(
            select(MetricsSnapshot)
            .where(
                and_(MetricsSnapshot.timestamp >= start_time, MetricsSnapshot.timestamp < end_time)
            )
            .order_by(MetricsSnapshot.timestamp)
        )
        .scalars()
        .all()
    )
    assert [s.timestamp for s in snapshots] == [T0 + timedelta(minutes=m) for m in (2, 3, 4)]
    assert all(s.timestamp.tzinfo == UTC for s in snapshots)
    assert snapshots[0].metric_data == {"host": "test-host", "cpu": {"usage_percent": 2}}
    assert "test-host" in repr(snapshots[0])


def test_seed_snapshot_example_with_naive_utcnow(session: Session) -> None:
    snapshot = MetricsSnapshot(
        timestamp=datetime.utcnow(),
        metric_type="aggregated",
        metric_data={"cpu": {"usage_percent": 45.2}, "memory": {"used_bytes": 8589934592}},
    )
    session.add(snapshot)
    session.commit()
    session.expire_all()
    stored = session.execute(select(MetricsSnapshot)).scalar_one()
    assert abs(stored.timestamp - datetime.now(UTC)) < timedelta(minutes=1)
    assert stored.metric_data["memory"]["used_bytes"] == 8589934592


def test_timestamps_round_trip_across_time_zones(session: Session) -> None:
    tz = datetime(2026, 3, 1, 12, 0, tzinfo=UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("America/New_York")
    )
    session.add(make_snapshot(tz, cpu__usage_percent=1.0))
    session.commit()
    session.expire_all()
    stored = session.execute(select(MetricsSnapshot)).scalar_one()
    assert stored.timestamp == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert stored.timestamp.utcoffset() == timedelta(0)


def test_jsonb_field_extraction_with_cast(session: Session) -> None:
    for minute, value in enumerate([10.5, 20.25, 30.0]):
        session.add(make_snapshot(T0 + timedelta(minutes=minute), cpu__usage_percent=value))
    session.commit()
    rows = session.execute(
        select(
            MetricsSnapshot.timestamp,
            cast(MetricsSnapshot.metric_data["cpu"]["usage_percent"], Float).label("cpu_usage"),
        )
        .where(MetricsSnapshot.timestamp >= T0 + timedelta(minutes=1))
        .order_by(MetricsSnapshot.timestamp)
    ).all()
    assert [row.cpu_usage for row in rows] == [20.25, 30.0]


def test_same_host_type_and_time_is_stored_once(session: Session) -> None:
    session.add(make_snapshot(T0, host="a", cpu__usage_percent=1))
    session.add(make_snapshot(T0, host="b", cpu__usage_percent=1))
    session.add(make_snapshot(T0, host="a", metric_type="other", cpu__usage_percent=1))
    session.commit()
    session.add(make_snapshot(T0, host="a", cpu__usage_percent=2))
    with pytest.raises(IntegrityError):
        session.commit()


def test_config_upsert_and_get(session: Session) -> None:
    upsert_config(session=session, key="retention", value={"days": 30})
    session.commit()
    first = session.execute(select(Config).where(Config.key == "retention")).scalar_one_or_none()
    assert first is not None and first.value["days"] == 30
    first_updated = first.updated_at
    time.sleep(0.01)
    upsert_config(session=session, key="retention", value={"days": 7})
    session.commit()
    session.expire_all()
    config = session.execute(select(Config).where(Config.key == "retention")).scalar_one()
    assert config.value == {"days": 7}
    assert config.updated_at > first_updated
    assert session.scalar(select(func.count()).select_from(Config)) == 1


def test_policy_create_get_update(session: Session) -> None:
    session.add(ArchivePolicy(retention_days=30, archive_enabled=True))
    session.commit()
    policy = session.execute(
        select(ArchivePolicy).order_by(ArchivePolicy.id).limit(1)
    ).scalar_one_or_none()
    assert policy is not None
    assert (policy.downsample_after_days, policy.downsample_interval) == (3, "1h")
    created, updated = policy.created_at, policy.updated_at
    assert created.tzinfo == UTC
    time.sleep(0.01)
    policy.retention_days = 14
    session.commit()
    session.refresh(policy)
    assert policy.retention_days == 14
    assert policy.updated_at > updated
    assert policy.created_at == created
    assert "retention_days=14" in repr(policy)
    ArchivePolicyResponse.model_validate(policy)


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"retention_days": 0}, "retention_days must be greater than 0"),
        ({"retention_days": 7, "downsample_after_days": 7}, "must be less than"),
        ({"downsample_after_days": -1}, "0 or more"),
        ({"downsample_interval": "7min"}, "neither divides one day"),
        ({"downsample_interval": "abc"}, "Invalid interval 'abc'"),
    ],
)
def test_invalid_policy_is_refused_before_write(
    session: Session, values: dict[str, object], fragment: str
) -> None:
    session.add(ArchivePolicy(**values))
    with pytest.raises(InvalidPolicy, match=fragment):
        session.commit()
    session.rollback()
    assert session.scalar(select(func.count()).select_from(ArchivePolicy)) == 0


def test_user_response_hides_password_hash(session: Session) -> None:
    session.add(User(username="alice", password_hash="secret-hash"))
    session.commit()
    user = session.execute(select(User).where(User.id == 1)).scalar_one()
    response = UserResponse.model_validate(user)
    assert response.username == "alice"
    assert "password_hash" not in response.model_dump()
    assert "secret-hash" not in response.model_dump_json()


def test_pydantic_validation_errors() -> None:
    with pytest.raises(ValidationError):
        UserResponse.model_validate({"id": "not-a-number", "username": "x"})
    with pytest.raises(ValidationError, match="Invalid interval"):
        ArchivePolicyResponse.model_validate(
            {
                "id": 1,
                "retention_days": 30,
                "archive_enabled": True,
                "downsample_after_days": 7,
                "downsample_interval": "7x",
                "last_archive_run": None,
                "created_at": T0,
                "updated_at": T0,
            }
        )


def test_a_rollup_row_may_share_a_raw_rows_identity(session: Session) -> None:
    session.add(make_snapshot(T0, host="a", cpu__usage_percent=1))
    rolled = make_snapshot(T0, host="a", cpu__usage_percent=1)
    rolled.metric_data = {**rolled.metric_data, "_rollup": {"interval": "1h", "samples": 1}}
    session.add(rolled)
    session.commit()
    assert session.scalar(select(func.count()).select_from(MetricsSnapshot)) == 2
