"""Explorer login: password checks with a growing delay and a lockout after repeated failures.

One :class:`LoginThrottle` is shared by every browser session of a server process (the app
keeps it in ``st.cache_resource``), so opening a new tab does not reset the count. Failures
are counted per *key*: the app passes the username and, when Streamlit knows it, the
client address, and a login is refused while any of its keys is locked. A locked key is
refused without checking the password at all, so a lockout cannot be brute-forced, and
every refusal says the same thing whether the name or the password was wrong.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from metrics_toolkit.errors import AuthenticationFailed
from metrics_toolkit.store.db import session_scope
from metrics_toolkit.store.users import count_users, get_user, verify_password

WRONG_CREDENTIALS = "Wrong username or password."
MAX_FAILURES = 5  # consecutive failures before a key is locked
LOCKOUT_SECONDS = 300.0
DELAY_STEP_SECONDS = 0.25  # first failure; doubles with each further one
MAX_DELAY_SECONDS = 1.0
FORGET_AFTER_SECONDS = 900.0  # failures older than this no longer count


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0
    locked_until: float = 0.0


class LoginThrottle:
    """Counts failed logins per key; thread-safe (Streamlit runs sessions in threads).

    :param max_failures: consecutive failures that lock a key for ``lockout_seconds``.
    :param delay_step: seconds to wait after the first failure; each further failure doubles
        it, up to ``max_delay``. The wait happens before the answer is shown, for wrong
        names and wrong passwords alike.
    :param clock: a monotonic clock in seconds (injectable for tests).
    """

    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILURES,
        lockout_seconds: float = LOCKOUT_SECONDS,
        delay_step: float = DELAY_STEP_SECONDS,
        max_delay: float = MAX_DELAY_SECONDS,
        forget_after: float = FORGET_AFTER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_failures < 1:
            msg = f"max_failures must be at least 1 (got {max_failures})"
            raise ValueError(msg)
        self.max_failures = max_failures
        self.lockout_seconds = lockout_seconds
        self.delay_step = delay_step
        self.max_delay = max_delay
        self.forget_after = forget_after
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, _Failures] = {}

    @staticmethod
    def _normal(key: str) -> str:
        return key.strip().casefold()

    def _current(self, key: str, now: float) -> _Failures | None:
        record = self._failures.get(self._normal(key))
        if record is None:
            return None
        if now >= record.locked_until and now - record.last > self.forget_after:
            del self._failures[self._normal(key)]
            return None
        return record

    def locked_for(self, keys: Iterable[str]) -> float:
        """Seconds until every key in ``keys`` may try again (0 when none is locked)."""
        now = self._clock()
        with self._lock:
            waits = [
                record.locked_until - now
                for key in keys
                if (record := self._current(key, now)) is not None
            ]
        return max([0.0, *waits])

    def failure(self, keys: Iterable[str]) -> float:
        """Record one failed attempt for every key; returns the delay to apply (seconds)."""
        now = self._clock()
        worst = 0
        with self._lock:
            for key in keys:
                record = self._current(key, now) or self._failures.setdefault(
                    self._normal(key), _Failures()
                )
                record.count += 1
                record.last = now
                if record.count >= self.max_failures:
                    record.locked_until = now + self.lockout_seconds
                    record.count = 0  # after the lockout, a fresh series of attempts
                worst = max(worst, record.count or self.max_failures)
        return min(self.delay_step * 2 ** (worst - 1), self.max_delay) if worst else 0.0

    def success(self, keys: Iterable[str]) -> None:
        """Forget the failures of every key after a successful login."""
        with self._lock:
            for key in keys:
                self._failures.pop(self._normal(key), None)


@dataclass(frozen=True)
class LoginOutcome:
    """What a login attempt gave: the user name on success, else a message to show."""

    username: str | None
    message: str
    last_login: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.username is not None


def attempt_login(
    *,
    engine: Engine,
    throttle: LoginThrottle,
    username: str,
    password: str,
    client: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> LoginOutcome:
    """Check a login against the ``users`` table, throttled; records ``last_login`` on success.

    The message never says whether the name or the password was wrong. While the name (or
    the ``client`` address) is locked out, the password is not even checked.
    """
    name = username.strip()
    if not name or not password:
        return LoginOutcome(None, "Enter a username and a password.")
    keys = [f"user:{name}"] + ([f"client:{client}"] if client else [])
    locked = throttle.locked_for(keys)
    if locked > 0:
        return LoginOutcome(None, _locked_message(locked))
    try:
        with session_scope(engine) as session:
            user = verify_password(session=session, username=name, password=password)
            found, last_login = user.username, user.last_login
    except AuthenticationFailed:
        sleep(throttle.failure(keys))
        locked = throttle.locked_for(keys)
        message = WRONG_CREDENTIALS + (f" {_locked_message(locked)}" if locked > 0 else "")
        return LoginOutcome(None, message)
    throttle.success(keys)
    return LoginOutcome(found, f"Logged in as {found}.", last_login)


@dataclass(frozen=True)
class Account:
    """What the explorer needs to know of a logged-in user on every page view."""

    username: str
    is_admin: bool
    password_hash: str


def account(engine: Engine, username: str) -> Account | None:
    """The user's current role and password hash; None when the user no longer exists."""
    with session_scope(engine) as session:
        user = get_user(session=session, username=username)
        if user is None:
            return None
        return Account(user.username, bool(user.is_admin), user.password_hash)


def users_exist(engine: Engine) -> bool:
    """True when at least one user can log in (the explorer stays closed otherwise)."""
    with session_scope(engine) as session:
        return count_users(session=session) > 0


def _locked_message(seconds: float) -> str:
    return f"Too many failed logins: try again in {math.ceil(seconds)} s."
