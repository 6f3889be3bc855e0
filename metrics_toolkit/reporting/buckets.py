"""The report's bucket frames live in :mod:`metrics_toolkit.analysis.buckets` (re-exported)."""

from metrics_toolkit.analysis.buckets import (
    ROW,
    SECONDS,
    STATS,
    merge,
    metrics_of,
    samples,
    with_widths,
)

__all__ = ["ROW", "SECONDS", "STATS", "merge", "metrics_of", "samples", "with_widths"]
