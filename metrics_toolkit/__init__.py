"""metrics-toolkit: system metrics in SQLite or PostgreSQL, as frames, reports and an explorer.

The public API is re-exported here; everything else is an implementation detail.
"""

from __future__ import annotations

from metrics_toolkit.db import make_async_engine, make_engine, make_sessionmaker, mask_url
from metrics_toolkit.errors import MetricsToolkitError
from metrics_toolkit.intervals import Interval, parse_interval
from metrics_toolkit.models import ArchivePolicy, Base, Config, MetricsSnapshot, User

__all__ = [
    "ArchivePolicy",
    "Base",
    "Config",
    "Interval",
    "MetricsSnapshot",
    "MetricsToolkitError",
    "User",
    "make_async_engine",
    "make_engine",
    "make_sessionmaker",
    "mask_url",
    "parse_interval",
]
