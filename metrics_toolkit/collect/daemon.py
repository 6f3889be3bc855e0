"""The collection loop behind ``metrics-toolkit collect``: ticks, the spool, the database.

Every tick happens at a wall-clock multiple of the interval (``10:00:00``, ``10:00:10``...),
computed from the Unix-epoch grid each time, so ticks never drift. The snapshot's
timestamp is the tick time (UTC). A tick that runs late by more than half an interval skips
the slots it missed (logged) instead of bursting to catch up.

Each snapshot is first appended to the durable :class:`~metrics_toolkit.collect.spool.Spool`, then
the spool is replayed into the database (oldest first, in batches of ``batch_size``). When
the database is unreachable, missing, or has no schema yet, snapshots stay in the spool and
the daemon retries with exponential backoff (1 s doubling to 60 s), also between ticks;
when it is back, the schema is created if the database is empty and the spool is replayed
in order. Writes are idempotent, so a batch written but not acked (a crash) is not doubled.
Each event is one log line (``logging``), without a traceback for expected faults.

Each document carries the daemon's own state: ``collector.spool_depth_count`` (snapshots
waiting when the tick was taken), ``collector.spool_dropped_count`` (dropped because the
spool was full, cumulative) and ``collector.write_latency_ms`` (the mean time of one database
write, a batch in one transaction, during the last flush that succeeded; absent until one has).

:meth:`CollectionDaemon.request_stop` (wired to SIGTERM / SIGINT by
:func:`stop_on_signals`) ends the loop after the tick in progress; the daemon then flushes
what it can within ``final_flush_seconds`` and returns. This module knows nothing of click.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL

from metrics_toolkit.collect.collectors import Collector, resolve_names
from metrics_toolkit.collect.spool import Spool, ensure_directory, replay
from metrics_toolkit.errors import (
    DatabaseError,
    InvalidArgument,
    InvalidSnapshot,
    MetricsToolkitError,
    SpoolError,
)
from metrics_toolkit.intervals import Interval
from metrics_toolkit.signals import StopFlag, on_stop_signal
from metrics_toolkit.store import config_keys
from metrics_toolkit.store.config import get_config
from metrics_toolkit.store.db import (
    check_connection,
    describe_error,
    make_engine,
    mask_url,
    resolve_url,
    session_scope,
)
from metrics_toolkit.store.ingest import IngestResult
from metrics_toolkit.store.migrate import ensure_schema

log = logging.getLogger(__name__)

METRIC_TYPE = "aggregated"
BACKOFF_INITIAL_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 15.0  # a retry is one connection attempt: cheap, and recovery stays quick
FINAL_FLUSH_SECONDS = 10.0
# Seconds to keep free before a tick when replaying between ticks.
_TICK_MARGIN = 0.05
# Least time before a tick (capped at half the interval) to start a retry between ticks.
_RETRY_SPARE = 2.0

_DURATION = re.compile(r"^\s*(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>s|sec|min|h|H|D|d)\s*$")
_DURATION_UNITS = {"s": 1, "sec": 1, "min": 60, "h": 3600, "H": 3600, "D": 86400, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """A run length such as ``90s``, ``15min``, ``1h`` or ``2D`` (any positive amount).

    Unlike an interval it need not divide a day. Raises
    :class:`~metrics_toolkit.errors.InvalidArgument` listing the accepted forms.
    """
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None or float(match["n"]) <= 0:
        msg = (
            f"Invalid duration {text!r}: expected a positive number followed by s, min, h or D "
            "(e.g. 90s, 15min, 1h, 2D)"
        )
        raise InvalidArgument(msg)
    return timedelta(seconds=float(match["n"]) * _DURATION_UNITS[match["unit"]])


@dataclass(frozen=True)
class DaemonSettings:
    """Everything the loop needs; build it with :func:`load_settings`.

    ``count`` stops after that many snapshots, ``duration`` after the last tick that falls
    within that time from the start; with neither the loop runs until stopped.
    """

    interval: Interval
    spool_path: Path
    spool_max_rows: int = 1_000_000
    batch_size: int = 10
    collectors: tuple[str, ...] | None = None
    host: str | None = None
    count: int | None = None
    duration: timedelta | None = None
    database_url: str | URL | None = None
    backoff_initial: float = BACKOFF_INITIAL_SECONDS
    backoff_max: float = BACKOFF_MAX_SECONDS
    final_flush_seconds: float = FINAL_FLUSH_SECONDS


def _read_config(database_url: str | URL | None, keys: Sequence[str]) -> dict[str, Any]:
    """Stored values of ``keys`` when the database can be read right now, else {}."""
    engine = _engine(database_url, **_quick_connect(database_url))
    try:
        with session_scope(engine) as session:
            return {key: get_config(session=session, key=key) for key in keys}
    except (sa_exc.SQLAlchemyError, MetricsToolkitError) as error:
        log.info(
            "Config not readable from %s (%s); using defaults and command-line options",
            mask_url(engine.url),
            describe_error(error),
        )
        return {}
    finally:
        engine.dispose()


def _engine(database_url: str | URL | None, **kwargs: Any) -> Engine:
    """``make_engine``, with a SQLite directory that cannot be created as a clear error."""
    try:
        return make_engine(database_url, **kwargs)
    except OSError as error:
        msg = f"Cannot use database {mask_url(resolve_url(database_url))}: {error}"
        raise DatabaseError(msg) from None


def _quick_connect(database_url: str | URL | None) -> dict[str, Any]:
    if resolve_url(database_url).get_backend_name() == "postgresql":
        return {"connect_args": {"connect_timeout": 3}}
    return {}


def load_settings(
    database_url: str | URL | None = None,
    *,
    interval: str | Interval | None = None,
    count: int | None = None,
    duration: str | timedelta | None = None,
    host: str | None = None,
    collectors: str | Sequence[str] | None = None,
    spool_path: str | Path | None = None,
    batch_size: int | None = None,
    spool_max_rows: int | None = None,
    read_config: bool = True,
) -> DaemonSettings:
    """Settings from explicit values, then the config table, then the declared defaults.

    The config table (``collector.interval``, ``collector.enabled``, ``collector.host``,
    ``collector.batch_size``, ``spool.path``, ``spool.max_rows``) is read only when the
    database answers now; a collector must start while its database is down, so an
    unreachable database means defaults (logged), not an error. Invalid values raise
    :class:`~metrics_toolkit.errors.MetricsToolkitError` subclasses with one-line messages.
    """
    # What is wrong in the arguments is reported before any database is tried.
    resolve_url(database_url)  # a malformed URL is an error now, not a retry loop later
    if interval is not None:
        interval = Interval.parse(interval)
    if collectors is not None:
        collectors = resolve_names(collectors)
    if count is not None and duration is not None:
        raise InvalidArgument("Give --count or --duration, not both.")
    if count is not None and (isinstance(count, bool) or count < 1):
        raise InvalidArgument(f"--count must be at least 1 (got {count}).")
    span = parse_duration(duration) if isinstance(duration, str) else duration
    if span is not None and span.total_seconds() <= 0:
        raise InvalidArgument(f"The duration must be positive (got {span}).")
    wanted = {
        "collector.interval": interval,
        "collector.enabled": collectors,
        "collector.host": host,
        "collector.batch_size": batch_size,
        "spool.path": spool_path,
        "spool.max_rows": spool_max_rows,
    }
    missing = [key for key, value in wanted.items() if value is None]
    stored = _read_config(database_url, missing) if (missing and read_config) else {}
    value: dict[str, Any] = {
        key: given if given is not None else stored.get(key, config_keys.known_key(key).default)
        for key, given in wanted.items()
    }
    _positive("batch size", value["collector.batch_size"], config_keys.MAX_BATCH_SIZE)
    _positive("spool max_rows", value["spool.max_rows"], config_keys.MAX_SPOOL_ROWS)
    return DaemonSettings(
        interval=Interval.parse(value["collector.interval"]),
        spool_path=Path(value["spool.path"]).expanduser(),
        spool_max_rows=value["spool.max_rows"],
        batch_size=value["collector.batch_size"],
        collectors=resolve_names(value["collector.enabled"]),
        host=value["collector.host"],
        count=count,
        duration=span,
        database_url=database_url,
    )


def _positive(name: str, value: Any, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        msg = f"The {name} must be a whole number, at least 1 and at most {maximum:,} "
        msg += f"(got {value!r})."
        raise InvalidArgument(msg)


@dataclass
class DaemonStats:
    """What a run did: ticks taken, slots skipped, rows written, what is left."""

    ticks: int = 0
    skipped_slots: int = 0
    failed_ticks: int = 0
    written: IngestResult = field(default_factory=IngestResult)
    dropped: int = 0
    left_in_spool: int = 0
    outages: int = 0


def next_grid_point(now: float, interval: Interval) -> float:
    """The first multiple of the interval (seconds since the Unix epoch) at or after ``now``."""
    return math.ceil(now / interval.seconds) * interval.seconds


class CollectionDaemon:
    """The collection loop: one snapshot per tick into the spool, the spool into the database.

    Opening it validates everything that cannot get better by waiting (collector names,
    the spool file, the database URL) and takes an exclusive lock on the spool, so that
    two collectors never share one. Call :meth:`run`, then nothing else; or use it as a
    context manager around :meth:`run` to release the spool on errors.
    """

    def __init__(
        self,
        settings: DaemonSettings,
        *,
        collector: Collector | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self.stats = DaemonStats()
        self.collector = collector or Collector(settings.collectors, host=settings.host)
        self._lock = FileLock(f"{settings.spool_path}.lock")
        self.spool = self._open_spool()
        try:
            self.engine: Engine = _engine(settings.database_url)
        except BaseException:
            self.spool.close()
            self._lock.release()
            raise
        self._stop = StopFlag()
        self._url = mask_url(self.engine.url)
        self._schema_ready = False
        self._retry_at = 0.0  # time.monotonic() of the next database attempt
        self._backoff = settings.backoff_initial
        self._down_since: tuple[datetime, float] | None = None
        self._last_reason = ""
        self._catching_up: IngestResult | None = None
        self._write_latency_ms: float | None = None  # of the last successful flush

    def _open_spool(self) -> Spool:
        """Lock the spool first (a second collector must not touch it), then open it."""
        path = self.settings.spool_path
        ensure_directory(path)
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            msg = f"Spool {path} is in use by another collector; give this one its own --spool"
            raise SpoolError(msg) from None
        except OSError as error:
            msg = f"Cannot lock spool {path}: {error}; choose a writable path (--spool)"
            raise SpoolError(msg) from None
        try:
            return Spool(path, self.settings.spool_max_rows)
        except BaseException:
            self._lock.release()
            raise

    # --- control ------------------------------------------------------------------------

    def request_stop(self) -> None:
        """End the loop after the tick in progress (safe from a signal handler)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        """Release the spool and its lock, and the database connections."""
        self.spool.close()
        if self._lock.is_locked:
            self._lock.release()
        self.engine.dispose()
        self._stop.close()

    def __enter__(self) -> CollectionDaemon:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the loop -----------------------------------------------------------------------

    def run(self) -> DaemonStats:
        """Collect until ``count`` snapshots, the ``duration``, or a stop request.

        Returns the run's :class:`DaemonStats`; closes the spool and the engine.
        """
        settings = self.settings
        width = settings.interval.seconds
        started = self._clock()
        end = started + settings.duration.total_seconds() if settings.duration else None
        waiting = self.spool.depth()
        if waiting:
            self._catching_up = IngestResult()
        log.info(
            "Collecting every %s into %s (spool %s%s)",
            settings.interval,
            self._url,
            settings.spool_path,
            f", {waiting} snapshot(s) waiting from before" if waiting else "",
        )
        tick = next_grid_point(started, settings.interval)
        try:
            while not self.stopping:
                taken = self.stats.ticks + self.stats.failed_ticks
                if settings.count is not None and taken >= settings.count:
                    break
                if end is not None and tick > end:
                    break
                if not self._wait_until(tick):
                    break
                late = self._clock() - tick
                if late > width / 2:
                    # A slow tick, a long replay or a clock jump: skip, never burst.
                    missed = math.ceil((late - width / 2) / width)
                    self.stats.skipped_slots += missed
                    log.warning(
                        "Running %.1f s behind the tick at %s; skipping %d slot(s)",
                        late,
                        _iso(tick),
                        missed,
                    )
                    tick += missed * width
                    continue
                self._tick(tick)
                tick += width
            self._final_flush()
        finally:
            self.stats.left_in_spool = self.spool.depth()
            self.close()
        return self.stats

    def _wait_until(self, moment: float) -> bool:
        """Sleep until wall-clock ``moment``, retrying the database when due. False if stopped."""
        while True:
            remaining = moment - self._clock()
            if self.stopping:
                return False
            if remaining <= 0:
                return True
            # Retry between ticks only with time to spare: connecting and creating the
            # schema are not bounded by the deadline, and must not make the tick late.
            spare = remaining > min(0.5 * self.settings.interval.seconds, _RETRY_SPARE)
            if spare and self.spool.depth() and time.monotonic() >= self._retry_at:
                self._flush(deadline=time.monotonic() + remaining - _TICK_MARGIN)
                continue
            pause = remaining
            if spare and self.spool.depth():
                pause = min(pause, max(0.0, self._retry_at - time.monotonic()))
            if self._stop.wait(pause):
                return False

    def _tick(self, moment: float) -> None:
        stamp = datetime.fromtimestamp(moment, UTC)
        try:
            document = self.collector.collect()
            document["collector"] = {
                "spool_depth_count": self.spool.depth(),
                "spool_dropped_count": self.spool.dropped(),
            }
            if self._write_latency_ms is not None:
                document["collector"]["write_latency_ms"] = self._write_latency_ms
            self.stats.dropped += self.spool.append([(stamp, METRIC_TYPE, document)])
        except (InvalidSnapshot, SpoolError) as error:
            self.stats.failed_ticks += 1
            log.error("Tick at %s lost: %s", stamp.isoformat(), error)
            return
        except Exception:  # a collector bug must not end collection; say so loudly
            self.stats.failed_ticks += 1
            log.exception("Tick at %s lost: the collector failed", stamp.isoformat())
            return
        self.stats.ticks += 1
        if time.monotonic() >= self._retry_at:
            next_tick = moment + self.settings.interval.seconds
            until = time.monotonic() + (next_tick - self._clock())
            self._flush(deadline=until - _TICK_MARGIN)

    # --- database -----------------------------------------------------------------------

    def _flush(self, *, deadline: float | None, final: bool = False) -> None:
        """Replay the spool into the database until empty or ``deadline`` (monotonic)."""
        if not self.spool.depth():
            return
        progress = IngestResult()
        try:
            if not self._schema_ready:
                check_connection(self.engine)
                ensure_schema(self.engine)
                self._schema_ready = True
            replay(
                self.spool,
                self.engine,
                batch_size=self.settings.batch_size,
                deadline=deadline,
                into=progress,
                stop=None if final else self._stop.is_set,
            )
        except (DatabaseError, sa_exc.SQLAlchemyError) as error:
            self._record(progress)
            self._failed(error)
            return
        self._record(progress)
        if progress.batches:
            # write_snapshots times each batch from taking a connection to its commit.
            self._write_latency_ms = round(1000 * progress.seconds / progress.batches, 3)
        self._succeeded(progress)

    def _record(self, progress: IngestResult) -> None:
        self.stats.written.add(progress)
        if self._catching_up is not None:
            self._catching_up.add(progress)

    def _failed(self, error: BaseException) -> None:
        reason = (
            str(error)
            if isinstance(error, DatabaseError)
            else f"Cannot use database {self._url}: {describe_error(error)}"
        )
        now = time.monotonic()
        self._schema_ready = False
        self.engine.dispose()
        if self._down_since is None:
            self._down_since = (datetime.now(UTC), now)
            self._backoff = self.settings.backoff_initial
            self.stats.outages += 1
            log.warning(
                "%s. Spooling snapshots (%d waiting); retrying in %.0f s",
                reason,
                self.spool.depth(),
                self._backoff,
            )
        else:
            self._backoff = min(self._backoff * 2, self.settings.backoff_max)
            level = logging.WARNING if reason != self._last_reason else logging.INFO
            log.log(
                level,
                "Still failing since %s: %s (%d waiting; next retry in %.0f s)",
                _iso(self._down_since[0].timestamp()),
                reason,
                self.spool.depth(),
                self._backoff,
            )
        self._last_reason = reason
        self._retry_at = now + self._backoff

    def _succeeded(self, progress: IngestResult) -> None:
        if self._down_since is not None:
            since, began = self._down_since
            log.warning(
                "Database %s reachable again after %.1f s (down since %s); replaying %d "
                "spooled snapshot(s)",
                self._url,
                time.monotonic() - began,
                _iso(since.timestamp()),
                self.spool.depth() + progress.rows,
            )
            self._down_since = None
            if self._catching_up is None:
                self._catching_up = IngestResult()
                self._catching_up.add(progress)
        self._backoff = self.settings.backoff_initial
        self._retry_at = 0.0
        self._last_reason = ""
        if self._catching_up is not None and not self.spool.depth():
            log.warning(
                "Replayed %d snapshot(s) from the spool (%d were already stored)",
                self._catching_up.rows,
                self._catching_up.duplicates,
            )
            self._catching_up = None

    def _final_flush(self) -> None:
        if not self.spool.depth():
            return
        self._flush(deadline=time.monotonic() + self.settings.final_flush_seconds, final=True)
        left = self.spool.depth()
        if left:
            log.warning(
                "%d snapshot(s) stay in the spool %s; they are written on the next start",
                left,
                self.settings.spool_path,
            )


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")


@contextmanager
def stop_on_signals(daemon: CollectionDaemon) -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT ask ``daemon`` to stop after the current tick.

    A second signal gets the default behaviour again (SIGINT raises KeyboardInterrupt,
    SIGTERM ends the process), so a stuck flush can still be interrupted. Main thread only.
    """
    with on_stop_signal(
        daemon.request_stop, "Received %s: finishing the current tick, then flushing", log
    ):
        yield


__all__ = [
    "CollectionDaemon",
    "DaemonSettings",
    "DaemonStats",
    "load_settings",
    "next_grid_point",
    "parse_duration",
    "stop_on_signals",
]
