"""Exceptions raised by metrics_toolkit.

Every error the toolkit raises on purpose derives from :class:`MetricsToolkitError`, so a
shell (the CLI, the explorer) can catch that one class and show ``str(error)`` as a single
line. Messages say what was wrong and what would be valid.
"""

from __future__ import annotations


class MetricsToolkitError(Exception):
    """Base class of every error the toolkit raises on purpose."""


class InvalidInterval(MetricsToolkitError, ValueError):
    """An interval string the rollup rule does not accept."""


class InvalidPolicy(MetricsToolkitError, ValueError):
    """Archive policy values that cannot work together."""


class InvalidSnapshot(MetricsToolkitError, ValueError):
    """A snapshot document that does not have the expected shape."""


class DatabaseError(MetricsToolkitError):
    """The database could not be reached or used."""


class InvalidDatabaseURL(DatabaseError, ValueError):
    """A database URL that cannot be parsed or names an unsupported backend."""


class ConfigError(MetricsToolkitError):
    """A runtime config key or value that is not valid."""


class UnknownConfigKey(ConfigError, KeyError):
    """A config key that the toolkit does not know."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class UserError(MetricsToolkitError):
    """A problem with a user account."""


class UserExists(UserError):
    """A user with that name already exists."""


class UserNotFound(UserError):
    """No user has that name."""


class AuthenticationFailed(UserError):
    """Username or password is wrong (deliberately not saying which)."""


class UnknownCollector(MetricsToolkitError, ValueError):
    """A collector name that is not registered."""


class UnknownMetric(MetricsToolkitError, ValueError):
    """A metric path that is not valid or not present."""


class InvalidArgument(MetricsToolkitError, ValueError):
    """An argument outside what a function accepts (a naive datetime, a count below 1...)."""


class SpoolError(MetricsToolkitError):
    """The collector's local spool file cannot be opened or used."""


class ReportNotWritten(MetricsToolkitError):
    """A report file or its index could not be written (a folder that cannot be written...)."""
