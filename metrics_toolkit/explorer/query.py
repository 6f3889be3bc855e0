"""What the explorer's sidebar asks for, as one hashable query.

:class:`ViewQuery` is the cache key of the app's data loader, so everything that changes
the data is in it and nothing else is. Preset ranges end on a boundary of their bucket
width (at least a whole minute), at or before now: the end of the last complete bucket,
never in the future; reruns until the next boundary hit the cache instead of querying again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from metrics_toolkit.errors import InvalidArgument, InvalidInterval
from metrics_toolkit.frames.contract import DEFAULT_POINT_BUDGET, MetricInfo, choose_interval
from metrics_toolkit.intervals import Interval, bucket_start

#: Time range presets, newest data last.
PRESETS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
CUSTOM = "custom"
RANGE_CHOICES = (*PRESETS, CUSTOM)
DEFAULT_RANGE = "24h"
AUTO = "auto"

MEAN = "mean"
BAND = "mean with min-max band"
MAX = "max"
P95 = "p95"
#: What a chart line shows per bucket. ``p95`` needs raw samples (see ``view.build_view``).
AGGREGATES = (MEAN, BAND, MAX, P95)

#: Headline metrics selected when the explorer opens (those present in the data). Few on
#: purpose: on PostgreSQL each metric costs one JSON extraction per row of the range.
DEFAULT_METRICS = (
    "cpu.usage_percent",
    "memory.usage_percent",
    "disk.max_usage_percent",
    "network.bytes_recv_per_s",
)


@dataclass(frozen=True)
class ViewQuery:
    """One explorer view: hosts, ``[start, end)`` in UTC, metric paths and bucket width.

    ``hosts`` empty means every host, one host filters to it, several restrict to them.
    ``pooled`` says how several hosts are drawn: True pools them into the same buckets
    (one line), False keeps them apart (one line per host, as the explorer shows by
    default); None pools when ``hosts`` is empty and keeps several named hosts apart.
    """

    start: datetime
    end: datetime
    metrics: tuple[str, ...]
    hosts: tuple[str, ...] = ()
    interval: str = AUTO
    point_budget: int = DEFAULT_POINT_BUDGET
    pooled: bool | None = None

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            if getattr(self, name).tzinfo is None:
                msg = f"ViewQuery.{name} must be timezone-aware UTC (got a naive datetime)."
                raise InvalidArgument(msg)
        if self.end <= self.start:
            msg = f"The range ends ({self.end:%Y-%m-%d %H:%M}) before it starts."
            raise InvalidArgument(msg)

    @property
    def host(self) -> str | None:
        """The one host to filter on in the database, or None (all, or several)."""
        return self.hosts[0] if len(self.hosts) == 1 else None

    @property
    def by_host(self) -> bool:
        """True when the hosts are shown side by side (one line per host)."""
        if self.host is not None:
            return False
        return not self.pooled if self.pooled is not None else len(self.hosts) > 1


def preset_step(span: timedelta, point_budget: int = DEFAULT_POINT_BUDGET) -> timedelta:
    """How far a preset's range moves at a time: its auto bucket width, at least a minute.

    Ending a 30-day view on a 2-hour boundary keeps its buckets whole and its cache key
    (and so its query) the same for two hours; the cache's TTL bounds the staleness.
    """
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    width = choose_interval(epoch, epoch + span, point_budget=point_budget).timedelta
    return max(width, timedelta(minutes=1))


def resolve_range(
    choice: str,
    *,
    now: datetime | None = None,
    custom: tuple[date, date] | None = None,
    point_budget: int = DEFAULT_POINT_BUDGET,
) -> tuple[datetime, datetime]:
    """``[start, end)`` in UTC for a preset (``"24h"``...) or ``"custom"`` whole UTC days.

    Never in the future: a preset ends at the last multiple of :func:`preset_step` at or
    before ``now`` (the end of the last complete bucket: the current minute for ``1h``,
    5 minutes for ``24h``, 2 hours for ``30d``). A custom range ``(first_day, last_day)``
    includes both days, cut at the current minute when it reaches past ``now``.
    """
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    if choice in PRESETS:
        span = PRESETS[choice]
        end = bucket_start(moment, preset_step(span, point_budget))
        return end - span, end
    if choice != CUSTOM:
        msg = f"Unknown time range {choice!r}: choose from {', '.join(RANGE_CHOICES)}."
        raise InvalidArgument(msg)
    if custom is None or len(custom) != 2:
        msg = "A custom range needs a first and a last day."
        raise InvalidArgument(msg)
    first, last = sorted(custom)
    start = datetime.combine(first, time.min, tzinfo=UTC)
    end = datetime.combine(last, time.min, tzinfo=UTC) + timedelta(days=1)
    current = bucket_start(moment, timedelta(minutes=1))
    return start, min(end, current) if current > start else end


def normalize_interval(text: str | None) -> str:
    """``"auto"`` or the canonical spelling of a rollup-rule width (``"60min"`` -> ``"1h"``).

    Raises :class:`InvalidInterval` whose message lists the accepted forms.
    """
    cleaned = (text or "").strip()
    if not cleaned or cleaned.lower() == AUTO:
        return AUTO
    try:
        return str(Interval.parse(cleaned))
    except InvalidInterval as error:
        raise InvalidInterval(f"{error} Or leave it as 'auto'.") from None


def stats_for(kind: str) -> tuple[str, ...]:
    """The statistics the explorer loads for a metric of catalog ``kind``."""
    return ("increase", "max_rate") if kind == "counter" else ("mean", "min", "max", "count")


def metric_label(info: MetricInfo) -> str:
    """Menu text for a metric: ``cpu › usage_percent (%)``."""  # noqa: RUF002
    rest = info.path[len(info.area) + 1 :] if info.path.startswith(info.area + ".") else info.path
    unit = {"percent": "%", "": "", "load": "load"}.get(info.unit, info.unit)
    extra = ", counter" if info.kind == "counter" else ""
    suffix = f" ({unit}{extra})" if unit or extra else ""
    return f"{info.area} › {rest}{suffix}"


def areas(infos: Iterable[MetricInfo]) -> list[str]:
    """The areas (first path segments) present, in the order of the catalog's collectors."""
    order = ("cpu", "memory", "swap", "disk", "diskio", "network", "processes", "sensors")
    found = {info.area for info in infos}
    return sorted(found, key=lambda a: (order.index(a) if a in order else len(order), a))


def default_metrics(infos: Sequence[MetricInfo]) -> list[str]:
    """The headline metrics present; the first few metrics when none of them is."""
    present = {info.path for info in infos}
    chosen = [path for path in DEFAULT_METRICS if path in present]
    return chosen or [info.path for info in infos[:3]]
