"""User accounts: bcrypt password hashes, login checks, and account management.

Functions take a ``session`` keyword and never commit: the caller owns the transaction.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

import bcrypt
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from metrics_toolkit.errors import AuthenticationFailed, UserError, UserExists, UserNotFound
from metrics_toolkit.store.models import User
from metrics_toolkit.store.password_policy import MAX_PASSWORD_BYTES, check_new_password

MAX_USERNAME_LENGTH = 50
# A valid hash of a random password: checking against it when the user does not exist
# costs the same time as a real check, so timing does not reveal which names exist.
_DUMMY_HASH = bcrypt.hashpw(b"metrics-toolkit-no-such-user", bcrypt.gensalt()).decode()


def hash_password(password: str) -> str:
    """A bcrypt hash of a new ``password`` (refused unless it follows the password policy,
    :mod:`metrics_toolkit.store.password_policy`)."""
    return bcrypt.hashpw(check_new_password(password), bcrypt.gensalt()).decode()


def check_password(password: str, password_hash: str) -> bool:
    """True when ``password`` matches the bcrypt ``password_hash``."""
    encoded = password.encode("utf-8")
    if not encoded or len(encoded) > MAX_PASSWORD_BYTES:
        return False
    try:
        return bcrypt.checkpw(encoded, password_hash.encode())
    except ValueError:  # not a bcrypt hash at all
        return False


def _validate_username(username: str) -> str:
    name = username.strip()
    if not name:
        msg = "The username must not be empty."
        raise UserError(msg)
    if len(name) > MAX_USERNAME_LENGTH:
        msg = f"The username is {len(name)} characters long; at most {MAX_USERNAME_LENGTH}."
        raise UserError(msg)
    bad = next((c for c in name if unicodedata.category(c).startswith("C")), None)
    if bad is not None:
        msg = (
            f"The username holds the control or invisible character U+{ord(bad):04X}; use "
            "letters, digits, spaces and punctuation only."
        )
        raise UserError(msg)
    return name


def get_user(*, session: Session, username: str) -> User | None:
    return session.execute(select(User).where(User.username == username)).scalar_one_or_none()


def same_name_user(*, session: Session, username: str) -> User | None:
    """The user whose name equals ``username`` regardless of case (the unique index's rule)."""
    stmt = select(User).where(func.lower(User.username) == func.lower(username))
    return session.execute(stmt.limit(1)).scalar_one_or_none()


def require_user(*, session: Session, username: str) -> User:
    """The user named ``username``; :class:`UserNotFound` (one clear line) otherwise."""
    user = get_user(session=session, username=username)
    if user is None:
        msg = f"No user named {username!r}. See `metrics-toolkit users list`."
        raise UserNotFound(msg)
    return user


def add_user(*, session: Session, username: str, password: str, admin: bool = False) -> User:
    """Create a user; :class:`UserExists` when the name is taken.

    ``admin`` makes the user an administrator (the explorer's Admin page); the first user
    of a database always is one, so an installation is never without an admin.
    """
    name = _validate_username(username)
    taken = same_name_user(session=session, username=name)
    if taken is not None:
        raise UserExists(_exists(name, taken.username))
    first = count_users(session=session) == 0
    user = User(username=name, password_hash=hash_password(password), is_admin=admin or first)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:  # another process added the same name meanwhile
        raise UserExists(_exists(name, name)) from None
    return user


def _exists(name: str, taken: str) -> str:
    if taken == name:
        return f"A user named {name!r} already exists."
    return f"A user named {taken!r} already exists; names are unique regardless of case."


def list_users(*, session: Session) -> list[User]:
    return list(session.execute(select(User).order_by(User.username)).scalars())


def count_users(*, session: Session) -> int:
    return session.execute(select(func.count(User.id))).scalar_one()


def set_password(*, session: Session, username: str, password: str) -> User:
    user = require_user(session=session, username=username)
    user.password_hash = hash_password(password)
    return user


def remove_user(*, session: Session, username: str) -> None:
    require_user(session=session, username=username)
    session.execute(delete(User).where(User.username == username))


def verify_password(
    *, session: Session, username: str, password: str, now: datetime | None = None
) -> User:
    """Check a login and record ``last_login``; :class:`AuthenticationFailed` otherwise.

    The error never says whether the name or the password was wrong.
    """
    user = get_user(session=session, username=username.strip())
    if user is None:
        check_password(password, _DUMMY_HASH)
        raise AuthenticationFailed("Wrong username or password.")
    if not check_password(password, user.password_hash):
        raise AuthenticationFailed("Wrong username or password.")
    user.last_login = now or datetime.now(UTC)
    session.flush()
    return user
