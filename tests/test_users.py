from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from metrics_toolkit.errors import AuthenticationFailed, UserError, UserExists, UserNotFound
from metrics_toolkit.store import users


def test_add_verify_records_last_login(session: Session) -> None:
    users.add_user(session=session, username="alice", password="correct horse")
    session.commit()
    now = datetime(2026, 5, 1, 8, 30, tzinfo=UTC)
    user = users.verify_password(
        session=session, username="alice", password="correct horse", now=now
    )
    session.commit()
    session.expire_all()
    assert users.get_user(session=session, username="alice").last_login == now  # type: ignore[union-attr]
    assert user.password_hash.startswith("$2")
    assert "correct horse" not in user.password_hash


@pytest.mark.parametrize(("name", "password"), [("alice", "wrong"), ("nobody", "correct horse")])
def test_wrong_login_does_not_say_which_part(session: Session, name: str, password: str) -> None:
    users.add_user(session=session, username="alice", password="correct horse")
    with pytest.raises(AuthenticationFailed) as info:
        users.verify_password(session=session, username=name, password=password)
    assert str(info.value) == "Wrong username or password."


def test_duplicate_missing_and_bad_passwords(session: Session) -> None:
    users.add_user(session=session, username="alice", password="pw-1-long-enough")
    with pytest.raises(UserExists, match="already exists"):
        users.add_user(session=session, username="alice", password="pw-2-long-enough")
    with pytest.raises(UserNotFound, match="users list"):
        users.set_password(session=session, username="bob", password="x")
    with pytest.raises(UserError, match="empty"):
        users.add_user(session=session, username="carol", password="")
    with pytest.raises(UserError, match="72"):
        users.add_user(session=session, username="carol", password="x" * 73)
    with pytest.raises(UserError, match="username"):
        users.add_user(session=session, username="  ", password="pw-long-enough")


def test_passwd_and_remove(session: Session) -> None:
    users.add_user(session=session, username="alice", password="old-pw-long-enough")
    users.set_password(session=session, username="alice", password="new-pw-long-enough")
    users.verify_password(session=session, username="alice", password="new-pw-long-enough")
    with pytest.raises(AuthenticationFailed):
        users.verify_password(session=session, username="alice", password="old-pw-long-enough")
    assert users.count_users(session=session) == 1
    users.remove_user(session=session, username="alice")
    assert users.list_users(session=session) == []
    with pytest.raises(UserNotFound):
        users.remove_user(session=session, username="alice")
