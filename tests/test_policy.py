from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from metrics_toolkit.archive.plan import chunks, plan
from metrics_toolkit.errors import InvalidPolicy

NOW = datetime(2026, 3, 10, 14, 37, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("after", "retention", "interval", "downsample_before", "delete_before"),
    [
        (7, 30, "1h", datetime(2026, 3, 3, 14, 0, tzinfo=UTC), NOW - timedelta(days=30)),
        (3, 30, "5min", datetime(2026, 3, 7, 14, 35, tzinfo=UTC), NOW - timedelta(days=30)),
        (0, 1, "1D", datetime(2026, 3, 10, tzinfo=UTC), NOW - timedelta(days=1)),
        (1, 90, "10s", datetime(2026, 3, 9, 14, 37, 10, tzinfo=UTC), NOW - timedelta(days=90)),
    ],
)
def test_plan_timeline(
    after: int, retention: int, interval: str, downsample_before: datetime, delete_before: datetime
) -> None:
    p = plan(
        now=NOW,
        retention_days=retention,
        downsample_after_days=after,
        downsample_interval=interval,
        archive_enabled=True,
    )
    assert p.downsample_before == downsample_before
    assert p.delete_before == delete_before
    assert p.delete_before < p.downsample_before <= p.now


def test_plan_refuses_invalid_policy() -> None:
    with pytest.raises(InvalidPolicy, match="must be less than"):
        plan(
            now=NOW,
            retention_days=5,
            downsample_after_days=5,
            downsample_interval="1h",
            archive_enabled=True,
        )
    with pytest.raises(InvalidPolicy, match="Invalid interval"):
        plan(
            now=NOW,
            retention_days=5,
            downsample_after_days=1,
            downsample_interval="7min",
            archive_enabled=True,
        )


def test_naive_now_is_utc() -> None:
    p = plan(
        now=NOW.replace(tzinfo=None),
        retention_days=30,
        downsample_after_days=7,
        downsample_interval="1h",
        archive_enabled=False,
    )
    assert p.now == NOW and not p.archive


def test_chunks_are_aligned_and_cover_the_range() -> None:
    start = datetime(2026, 1, 1, 13, 0, tzinfo=UTC)
    end = datetime(2026, 1, 4, 6, 0, tzinfo=UTC)
    got = list(chunks(start, end, timedelta(days=1)))
    assert got[0] == (start, datetime(2026, 1, 2, tzinfo=UTC))
    assert got[-1] == (datetime(2026, 1, 4, tzinfo=UTC), end)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(got))
    assert list(chunks(end, start, timedelta(days=1))) == []
