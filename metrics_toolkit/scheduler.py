"""``metrics-toolkit schedule``: collection, the archive policy and reports in one process.

Jobs come from config ``schedule.jobs``: ``{name: spec}`` where a spec is a cron
expression, or an object::

    {"cron": "0 6 * * *", "job": "report", "period": "24h",
     "formats": ["html", "pdf"], "host": null, "interval": null,
     "mail_to": ["ops@example.com"]}

``job`` is ``collect``, ``archive`` or ``report``; with a bare cron string it comes from
the name (``collect``, ``archive``, ``report_daily``...). A report's ``period`` defaults
from the name too (``daily`` 24h, ``weekly`` 7d, ``monthly`` 30d, else 24h).

Cron expressions have 5 fields (minute hour day-of-month month day-of-week, as crontab;
day of week 0 or 7 is Sunday, names MON..SUN work) or 6 with a leading seconds field
(``*/10 * * * * *``: every 10 seconds). Times are UTC.

How jobs run (APScheduler 3, a background scheduler and a thread pool):

- never two runs of one job at once (``max_instances=1``, and a per-job lock shared with
  catch-up runs); a run that would overlap is skipped and logged;
- runs missed while the process was busy are coalesced into one; runs missed while it was
  down are caught up once at start, from the last run times it keeps in the state file
  (config ``schedule.state_path``); the collector is never caught up (the past cannot be
  collected);
- ``collect`` takes one snapshot through :class:`~metrics_toolkit.collect.daemon.CollectionDaemon`
  (spool, retries and idempotent writes included), timestamped at the second the job
  fired; one :class:`~metrics_toolkit.collect.collectors.Collector` lives across runs so rates are
  per second over the time between runs;
- ``archive`` is :func:`~metrics_toolkit.archive.runner.run_archive`;
- ``report`` writes :func:`~metrics_toolkit.reporting.build_report` of the period ending
  at the fire time into config ``report.output_dir`` (and refreshes its index.html); with
  ``mail_to`` it then mails it through config ``report.smtp``
  (:mod:`metrics_toolkit.reporting.mail`), trying a server that is unreachable again
  :attr:`Schedule.mail_retries` times with growing waits (``mail_backoff`` seconds, then
  3x, 9x); a failed mail fails the run (logged, one line), the files stay written and the
  other jobs carry on.

:func:`serve` runs until SIGTERM or SIGINT, then lets running jobs finish (a collector run
stops after its tick) and returns. A second signal ends the process at once. Each job
run logs one line; expected failures log one line without a traceback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc

from metrics_toolkit.errors import MetricsToolkitError
from metrics_toolkit.signals import StopFlag, on_stop_signal
from metrics_toolkit.store.job_specs import JobSpec

# The job runners import the daemon, archive and report stacks where they run them:
# validating a `schedule.jobs` value (config set) only needs the parsers here.
if TYPE_CHECKING:
    from metrics_toolkit.collect.collectors import Collector
    from metrics_toolkit.collect.daemon import CollectionDaemon, DaemonSettings
    from metrics_toolkit.reporting.model import Report

log = logging.getLogger(__name__)

#: Seconds a run may start late (the process was busy) and still run, coalesced.
MISFIRE_GRACE_SECONDS = 3600
#: Missed fire times examined at start to find the latest one (beyond: now).
_CATCH_UP_SCAN = 10_000


# --------------------------------------------------------------------------------------
# Job specs


def next_run(spec: JobSpec, now: datetime | None = None) -> datetime | None:
    """The job's next fire time after ``now`` (UTC), or None if it never fires again."""
    moment = now or datetime.now(UTC)
    fire: datetime | None = spec.trigger.get_next_fire_time(None, moment)
    return fire


def latest_missed(spec: JobSpec, last_run: datetime, now: datetime) -> datetime | None:
    """The latest fire time in ``(last_run, now]``, or None when none was missed."""
    trigger = spec.trigger
    fire = trigger.get_next_fire_time(None, last_run + timedelta(seconds=1))
    if fire is None or fire > now:
        return None
    for _ in range(_CATCH_UP_SCAN):
        following = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
        if following is None or following > now:
            return fire  # type: ignore[no-any-return]
        fire = following
    return now.replace(microsecond=0)


# --------------------------------------------------------------------------------------
# State: the last run of each job, to catch up after downtime


def read_state(path: Path) -> dict[str, datetime]:
    """``{job name: last scheduled run}`` from the state file ({} when absent or unreadable)."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    out = {}
    if isinstance(raw, dict):
        for name, text in raw.items():
            with contextlib.suppress(TypeError, ValueError):
                out[str(name)] = datetime.fromisoformat(text).astimezone(UTC)
    return out


def _write_state(path: Path, state: Mapping[str, datetime]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps({k: v.isoformat() for k, v in sorted(state.items())}))
    os.replace(temporary, path)


# --------------------------------------------------------------------------------------
# Running


@dataclass
class Schedule:
    """The configured jobs and what they need; :meth:`start` runs them in the background.

    ``collector`` settings (from :func:`metrics_toolkit.collect.daemon.load_settings`) are needed
    only when a ``collect`` job exists.
    """

    engine: Engine
    jobs: list[JobSpec]
    output_dir: Path
    state_path: Path
    archive_path: Path | None = None
    collector_settings: DaemonSettings | None = None
    mail_retries: int = 3
    mail_backoff: float = 10.0
    _stop_event: threading.Event = field(default_factory=threading.Event, repr=False)
    _scheduler: BackgroundScheduler | None = field(default=None, repr=False)
    _locks: dict[str, threading.Lock] = field(default_factory=dict, repr=False)
    _state_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _collector: Collector | None = field(default=None, repr=False)
    _daemon: CollectionDaemon | None = field(default=None, repr=False)
    _stopping: bool = False
    runs: dict[str, int] = field(default_factory=dict)

    def start(self, *, catch_up: bool = True, now: datetime | None = None) -> None:
        """Start the background scheduler; with ``catch_up``, run missed jobs once now."""
        scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={
                "max_instances": 1,
                "coalesce": True,
                "misfire_grace_time": MISFIRE_GRACE_SECONDS,
            },
        )
        for spec in self.jobs:
            self._locks[spec.name] = threading.Lock()
            scheduler.add_job(self.run_job, spec.trigger, args=[spec], id=spec.name, name=spec.name)
        if catch_up:
            moment = now or datetime.now(UTC)
            state = read_state(self.state_path)
            for spec in self.jobs:
                last = state.get(spec.name)
                missed = (
                    latest_missed(spec, last, moment) if last and spec.kind != "collect" else None
                )
                if missed is not None:
                    log.info("Job %s missed its run at %s; running it once now", spec.name, missed)
                    scheduler.add_job(
                        self.run_job,
                        "date",
                        run_date=moment,
                        args=[spec],
                        kwargs={"scheduled": missed},
                        id=f"{spec.name}:catch-up",
                    )
        self._scheduler = scheduler
        scheduler.start()
        for spec in self.jobs:
            log.info("Job %s (%s): next run %s", spec.name, spec.cron, next_run(spec))

    def stop(self, *, wait: bool = True) -> None:
        """Stop scheduling; a running collector stops after its tick; others finish."""
        self._stopping = True
        self._stop_event.set()  # a mail waiting to try again gives up
        daemon = self._daemon
        if daemon is not None:
            daemon.request_stop()
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=wait)

    def run_job(self, spec: JobSpec, scheduled: datetime | None = None) -> bool:
        """Run one job now (the scheduler calls this); False when skipped or failed.

        ``scheduled``: the fire time it stands for (default: now, floored to the cron's
        resolution); a report covers the period ending then.
        """
        lock = self._locks.setdefault(spec.name, threading.Lock())
        if self._stopping or not lock.acquire(blocking=False):
            log.warning("Job %s skipped: its previous run is still going", spec.name)
            return False
        try:
            if scheduled is None:
                now = time.time()
                scheduled = datetime.fromtimestamp(now - now % spec.resolution, UTC)
            started = time.perf_counter()
            try:
                outcome = self._runner(spec.kind)(spec, scheduled)
            except (MetricsToolkitError, sa_exc.SQLAlchemyError, OSError) as error:
                log.error("Job %s failed: %s", spec.name, _one_line(error))
                return False
            except Exception:  # a bug must not end the scheduler; say so loudly
                log.exception("Job %s failed unexpectedly", spec.name)
                return False
            log.info("Job %s done in %.1f s: %s", spec.name, time.perf_counter() - started, outcome)
            self.runs[spec.name] = self.runs.get(spec.name, 0) + 1
            if spec.kind != "collect":
                self._remember(spec.name, scheduled)
            return True
        finally:
            lock.release()

    def _runner(self, kind: str) -> Callable[[JobSpec, datetime], str]:
        return {"collect": self._collect, "archive": self._archive, "report": self._report}[kind]

    def _remember(self, name: str, scheduled: datetime) -> None:
        with self._state_lock:
            state = read_state(self.state_path)
            state[name] = max(scheduled, state.get(name, scheduled))
            try:
                _write_state(self.state_path, state)
            except OSError as error:
                log.warning("Cannot record the run of %s in %s: %s", name, self.state_path, error)

    def _collect(self, spec: JobSpec, scheduled: datetime) -> str:
        from metrics_toolkit.collect.collectors import Collector
        from metrics_toolkit.collect.daemon import CollectionDaemon

        settings = self.collector_settings
        if settings is None:
            raise MetricsToolkitError("The collect job needs collector settings.")
        if self._collector is None:
            self._collector = Collector(settings.collectors, host=settings.host)
        # The daemon ticks on a 1 s grid; its clock is held at the whole second the job
        # started for the first half second, so the tick (and the snapshot's timestamp) is
        # that second rather than the next one.
        anchor = float(math.floor(time.time()))

        def clock() -> float:
            return max(anchor, time.time() - 0.5)

        daemon = CollectionDaemon(
            replace(settings, count=1, duration=None), collector=self._collector, clock=clock
        )
        self._daemon = daemon
        try:
            stats = daemon.run()
        finally:
            self._daemon = None
        if stats.failed_ticks:
            raise MetricsToolkitError("the snapshot could not be taken (see the log above)")
        return (
            f"{stats.ticks} snapshot(s), {stats.written.inserted} written, "
            f"{stats.left_in_spool} waiting in the spool"
        )

    def _archive(self, spec: JobSpec, scheduled: datetime) -> str:
        from metrics_toolkit.archive.runner import run_archive

        result = run_archive(self.engine, archive_path=self.archive_path)
        return (
            f"{result.total('rows_replaced'):,} rows rolled up, "
            f"{result.total('rows_deleted'):,} deleted, "
            f"{result.total('rows_archived'):,} archived, "
            f"{result.tiers.buckets if result.tiers else 0:,} tier buckets refreshed"
        )

    def _report(self, spec: JobSpec, scheduled: datetime) -> str:
        from metrics_toolkit.reporting import build_report
        from metrics_toolkit.reporting.files import write_report

        report = build_report(
            self.engine, period=spec.period, end=scheduled, host=spec.host, interval=spec.interval
        )
        paths = write_report(report, self.output_dir, formats=spec.formats)
        warning = f" ({report.warnings[0]})" if report.warnings else ""
        mailed = self._mail(spec, report, paths) if spec.mail_to else ""
        return ", ".join(str(p) for p in paths) + warning + mailed

    def _mail(self, spec: JobSpec, report: Report, paths: list[Path]) -> str:
        from sqlalchemy.orm import Session

        from metrics_toolkit.reporting.mail import MailError, mail_report
        from metrics_toolkit.store.config import get_config
        from metrics_toolkit.store.smtp_settings import parse_smtp

        with Session(self.engine) as session:
            smtp = parse_smtp(get_config(session=session, key="report.smtp"))
        try:
            attempts = mail_report(
                report,
                spec.mail_to,
                smtp,
                paths,
                retries=self.mail_retries,
                backoff=self.mail_backoff,
                wait=self._stop_event.wait,
            )
        except MailError as error:
            written = ", ".join(str(p) for p in paths)
            raise MailError(f"{error} (report written: {written})", transient=False) from None
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        return f"; mailed to {', '.join(spec.mail_to)}{tries}"


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def serve(schedule: Schedule, *, until: Callable[[], bool] | None = None) -> None:
    """Run ``schedule`` until SIGTERM/SIGINT (or ``until()`` is true), then stop cleanly.

    Main thread only (signal handlers).
    """
    stop = StopFlag()
    message = "Received %s: stopping after the running jobs"
    try:
        with on_stop_signal(stop.set, message, log):
            schedule.start()
            try:
                # A signal wakes the wait at once; ``until`` is polled every 0.2 s.
                while not stop.wait(0.2) and not (until is not None and until()):
                    pass
            finally:
                schedule.stop(wait=True)
    finally:
        stop.close()
    log.info("Scheduler stopped")


__all__ = ["Schedule", "latest_missed", "next_run", "read_state", "serve"]
