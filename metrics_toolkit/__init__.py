"""metrics-toolkit: system metrics in SQLite or PostgreSQL, as frames, reports and an explorer.

The public API is re-exported here; everything else is an implementation detail. Names
whose modules need pandas (``load_frame``, ``build_report``...) are imported on first use,
so ``import metrics_toolkit`` stays light for the collector daemon.
"""

from __future__ import annotations

import importlib
from typing import Any

from metrics_toolkit.errors import MetricsToolkitError
from metrics_toolkit.intervals import Interval, parse_interval
from metrics_toolkit.store.db import make_async_engine, make_engine, make_sessionmaker, mask_url
from metrics_toolkit.store.models import ArchivePolicy, Base, Config, MetricsSnapshot, User

#: Lazily imported public names -> the module that defines them.
_LAZY = {
    "load_frame": "metrics_toolkit.frames.load",
    "list_metrics": "metrics_toolkit.frames.load",
    "list_hosts": "metrics_toolkit.frames.load",
    "time_range": "metrics_toolkit.frames.load",
    "collect_snapshot": "metrics_toolkit.collect.collectors",
    "Collector": "metrics_toolkit.collect.collectors",
    "generate_history": "metrics_toolkit.collect.generator",
    "write_snapshots": "metrics_toolkit.store.ingest",
    "run_archive": "metrics_toolkit.archive.runner",
    "build_report": "metrics_toolkit.reporting",
    "load_dask_frame": "metrics_toolkit.frames.dask",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'metrics_toolkit' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ArchivePolicy",
    "Base",
    "Collector",
    "Config",
    "Interval",
    "MetricsSnapshot",
    "MetricsToolkitError",
    "User",
    "build_report",
    "collect_snapshot",
    "generate_history",
    "list_hosts",
    "list_metrics",
    "load_dask_frame",
    "load_frame",
    "make_async_engine",
    "make_engine",
    "make_sessionmaker",
    "mask_url",
    "parse_interval",
    "run_archive",
    "time_range",
    "write_snapshots",
]
