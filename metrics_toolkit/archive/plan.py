"""Pure archive-policy decisions: which time ranges are kept, rolled up or deleted at *now*.

No I/O: :mod:`metrics_toolkit.archive.runner` applies these decisions to a database.

Timeline, read relative to ``now``:

- ``[downsample_before, now)``: raw rows, untouched (``downsample_before`` is
  ``now - downsample_after_days``, aligned *down* to the rollup interval, so a bucket is
  rolled up only once it is complete);
- ``[delete_before, downsample_before)``: rolled up to ``interval``;
- ``[-inf, delete_before)``: deleted (``delete_before = now - retention_days``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from metrics_toolkit.errors import InvalidPolicy
from metrics_toolkit.intervals import SECONDS_PER_DAY, Interval, bucket_start
from metrics_toolkit.store.models import validate_policy_values


@dataclass(frozen=True)
class Plan:
    """What the policy means at ``now``."""

    now: datetime
    interval: Interval
    downsample_before: datetime
    delete_before: datetime
    archive: bool

    @property
    def chunk(self) -> timedelta:
        """Rows are processed in chunks of whole buckets: one day, or one bucket if wider."""
        return timedelta(seconds=max(SECONDS_PER_DAY, self.interval.seconds))


def plan(
    *,
    now: datetime,
    retention_days: int,
    downsample_after_days: int,
    downsample_interval: str,
    archive_enabled: bool,
) -> Plan:
    """The plan of a policy at ``now``; invalid values raise :class:`InvalidPolicy`."""
    validate_policy_values(
        retention_days=retention_days,
        downsample_after_days=downsample_after_days,
        downsample_interval=downsample_interval,
    )
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    interval = Interval.parse(downsample_interval)
    try:
        downsample_before = bucket_start(now - timedelta(days=downsample_after_days), interval)
        delete_before = now - timedelta(days=retention_days)
    except OverflowError:
        msg = (
            f"Invalid archive policy at {now:%Y-%m-%d %H:%M} UTC: {retention_days} days of "
            "retention reach before year 1; use a later --now or a shorter retention."
        )
        raise InvalidPolicy(msg) from None
    return Plan(now, interval, downsample_before, delete_before, archive_enabled)


def chunks(start: datetime, end: datetime, size: timedelta) -> Iterator[tuple[datetime, datetime]]:
    """Epoch-aligned ``[lo, hi)`` chunks of ``size`` covering ``[start, end)``, oldest first."""
    if start >= end:
        return
    step = Interval.parse(size)
    lo = bucket_start(start, step)
    while lo < end:
        hi = lo + size
        yield max(lo, start), min(hi, end)
        lo = hi
