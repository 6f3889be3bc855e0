"""Explorer logins that survive a page reload: signed, expiring session tokens.

After a successful login the page stores a token in a browser cookie (``SameSite=Strict``,
no ``Max-Age``: it ends when the browser closes); a reload sends it back and
:func:`verify_token` turns it into the user name again, without asking for the password.

A token is ``name.expiry.signature``: the user name (base64url), the expiry (Unix seconds)
and an HMAC-SHA256 over both and the user's current password hash, keyed with a secret
the server process draws at start (:func:`new_secret`) and never stores. So a token

- never contains the password, nor anything from which to recover it;
- cannot be forged or extended without the secret (changing the name or the expiry breaks
  the signature);
- expires after :data:`SESSION_HOURS` whatever the cookie says;
- dies when the user's password changes or the user is removed (the hash no longer
  matches), when the user logs out (the server remembers the revoked token), and when the
  explorer restarts (a new secret).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

COOKIE = "metrics_toolkit_session"
SESSION_HOURS = 12


def new_secret() -> bytes:
    """A fresh random key for one server process."""
    return secrets.token_bytes(32)


def _signature(secret: bytes, name: str, expiry: int, password_hash: str) -> str:
    message = f"{name}.{expiry}.{password_hash}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def issue_token(
    secret: bytes,
    username: str,
    password_hash: str,
    *,
    now: datetime | None = None,
    lifetime: timedelta = timedelta(hours=SESSION_HOURS),
) -> str:
    """A token for ``username`` valid for ``lifetime`` from ``now``."""
    name = base64.urlsafe_b64encode(username.encode()).decode().rstrip("=")
    expiry = int(((now or datetime.now(UTC)) + lifetime).timestamp())
    return f"{name}.{expiry}.{_signature(secret, name, expiry, password_hash)}"


def verify_token(
    secret: bytes,
    token: str | None,
    password_hash_of: Callable[[str], str | None],
    *,
    now: datetime | None = None,
) -> str | None:
    """The user name a valid, unexpired ``token`` was issued for; None otherwise.

    ``password_hash_of(name)`` gives the user's current password hash (None when there is
    no such user): a token stops working when it changes.
    """
    parts = (token or "").split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    name, expiry_text, signature = parts
    expiry = int(expiry_text)
    if expiry <= (now or datetime.now(UTC)).timestamp():
        return None
    try:
        username = base64.urlsafe_b64decode(name + "=" * (-len(name) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    password_hash = password_hash_of(username)
    if password_hash is None:
        return None
    expected = _signature(secret, name, expiry, password_hash)
    return username if hmac.compare_digest(expected, signature) else None


class Revoked:
    """Tokens logged out of, refused until the server process ends (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: set[str] = set()

    def add(self, token: str) -> None:
        with self._lock:
            self._tokens.add(token)

    def __contains__(self, token: object) -> bool:
        with self._lock:
            return token in self._tokens


def cookie_script(token: str | None) -> str:
    """A ``<script>`` storing ``token`` in the session cookie, or deleting it (None).

    ``token`` is made of base64url, digits, dots and hex only, so it needs no quoting.
    """
    if token is None:
        value = f"{COOKIE}=; Max-Age=0; Path=/; SameSite=Strict"
    else:
        if not all(c.isalnum() or c in "-_." for c in token):
            msg = "A session token holds only base64url characters, digits and dots."
            raise ValueError(msg)
        value = f"{COOKIE}={token}; Path=/; SameSite=Strict"
    secure = "(location.protocol === 'https:' ? '; Secure' : '')"
    return f"<script>document.cookie = '{value}' + {secure};</script>"
