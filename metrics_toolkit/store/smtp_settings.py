"""Config ``report.smtp``: where mailed reports go out, parsed and validated.

The value is a JSON object::

    {"host": "smtp.example.com", "port": 587, "from": "metrics@example.com",
     "starttls": true, "ssl": false, "username": "metrics"}

Missing fields take the defaults of :data:`DEFAULT_SMTP`. The password is never part of
the value: it comes only from the environment variable :data:`PASSWORD_ENV`, is never
stored and never printed. ``config set report.smtp`` validates with :func:`parse_smtp`;
:mod:`metrics_toolkit.reporting.mail` sends with the settings it returns.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from metrics_toolkit.errors import ConfigError

PASSWORD_ENV = "METRICS_TOOLKIT_SMTP_PASSWORD"

DEFAULT_SMTP: dict[str, Any] = {
    "host": "localhost",
    "port": 25,
    "from": "metrics-toolkit@localhost",
    "starttls": False,
    "ssl": False,
    "username": None,
}


@dataclass(frozen=True)
class SmtpSettings:
    """A parsed ``report.smtp`` value (no password: see :meth:`password`)."""

    host: str
    port: int
    sender: str
    starttls: bool = False
    ssl: bool = False
    username: str | None = None

    @property
    def where(self) -> str:
        """``host:port``, for messages."""
        return f"{self.host}:{self.port}"

    def password(self) -> str | None:
        """The login password from :data:`PASSWORD_ENV` (None when no login is configured).

        Raises :class:`~metrics_toolkit.errors.ConfigError` when a username is set and the
        variable is not.
        """
        if self.username is None:
            return None
        secret = os.environ.get(PASSWORD_ENV)
        if not secret:
            raise ConfigError(
                f"Config 'report.smtp' names the user {self.username!r}: set the password in "
                f"the environment variable {PASSWORD_ENV}."
            )
        return secret


def parse_smtp(value: Any) -> SmtpSettings:
    """The settings of a ``report.smtp`` value; a clear ConfigError naming what is wrong."""
    where = "Config 'report.smtp'"
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be an object like {DEFAULT_SMTP} (got {value!r}).")
    if "password" in value:
        raise ConfigError(
            f"{where}: the password is never stored; set it in the environment variable "
            f"{PASSWORD_ENV}."
        )
    unknown = sorted(set(value) - set(DEFAULT_SMTP))
    if unknown:
        raise ConfigError(
            f"{where}: unknown field(s) {', '.join(map(str, unknown))}; use {sorted(DEFAULT_SMTP)}."
        )
    merged = {**DEFAULT_SMTP, **value}
    host, port, sender = merged["host"], merged["port"], merged["from"]
    if not isinstance(host, str) or not host.strip() or any(c.isspace() for c in host):
        raise ConfigError(f"{where}: 'host' must be a host name or address (got {host!r}).")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError(f"{where}: 'port' must be a port number 1-65535 (got {port!r}).")
    if not is_address(sender):
        raise ConfigError(f"{where}: 'from' must be a mail address (got {sender!r}).")
    for flag in ("starttls", "ssl"):
        if not isinstance(merged[flag], bool):
            raise ConfigError(f"{where}: {flag!r} must be true or false (got {merged[flag]!r}).")
    if merged["starttls"] and merged["ssl"]:
        raise ConfigError(
            f"{where}: choose 'starttls' (plain connection upgraded, port 587) or 'ssl' "
            "(TLS from the start, port 465), not both."
        )
    username = merged["username"]
    if username is not None and (not isinstance(username, str) or not username):
        raise ConfigError(f"{where}: 'username' must be a user name or null (got {username!r}).")
    return SmtpSettings(
        host=host,
        port=port,
        sender=sender,
        starttls=merged["starttls"],
        ssl=merged["ssl"],
        username=username,
    )


def is_address(value: Any) -> bool:
    """True for a plausible single mail address (``user@domain``, no spaces or commas)."""
    if not isinstance(value, str):
        return False
    local, at, domain = value.rpartition("@")
    bad = set(" \t\r\n,;<>\"'()")
    return bool(at and local and domain) and not (set(value) & bad)


def parse_recipients(value: Any, where: str) -> tuple[str, ...]:
    """Mail addresses from ``"a@x,b@y"`` or a list of strings; ConfigError if one is bad."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ConfigError(f"{where} must be a list of mail addresses (got {value!r}).")
    out = tuple(
        dict.fromkeys(str(item).strip() if isinstance(item, str) else item for item in items)
    )
    bad = [item for item in out if not is_address(item)]
    if bad or not out:
        shown = repr(bad[0]) if bad else "(none)"
        raise ConfigError(f"{where}: {shown} is not a mail address (use name@domain).")
    return tuple(str(item) for item in out)


__all__ = [
    "DEFAULT_SMTP",
    "PASSWORD_ENV",
    "SmtpSettings",
    "is_address",
    "parse_recipients",
    "parse_smtp",
]
