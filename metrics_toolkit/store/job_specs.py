"""Job specs of ``schedule.jobs``: parsed and validated without the scheduler's machinery.

:mod:`metrics_toolkit.scheduler` runs these jobs; ``config set schedule.jobs`` validates
with the same parser (:func:`parse_jobs`), so a value the scheduler would refuse is never
stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from metrics_toolkit.errors import ConfigError, MetricsToolkitError
from metrics_toolkit.intervals import Interval
from metrics_toolkit.store.smtp_settings import parse_recipients

JOB_KINDS = ("collect", "archive", "report")


REPORT_FORMATS = ("html", "pdf", "json")


_PERIOD_BY_NAME = (("daily", "24h"), ("weekly", "7d"), ("monthly", "30d"))


_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


_CRON_FORMS = (
    "5 fields (minute hour day-of-month month day-of-week, e.g. '0 6 * * *') or 6 with "
    "leading seconds (e.g. '*/10 * * * * *')"
)


@dataclass(frozen=True)
class JobSpec:
    """One configured job: its name, kind, cron expression and report options."""

    name: str
    kind: str
    cron: str
    period: str = "24h"
    formats: tuple[str, ...] = REPORT_FORMATS
    host: str | None = None
    interval: str | None = None
    mail_to: tuple[str, ...] = ()

    @property
    def trigger(self) -> CronTrigger:
        return cron_trigger(self.cron)

    @property
    def resolution(self) -> int:
        """Seconds between possible fire times: 1 with a seconds field, else 60."""
        return 1 if len(self.cron.split()) == 6 else 60

    def describe(self) -> str:
        """What the job does, in a few words (for ``schedule --list``)."""
        if self.kind == "report":
            who = self.host if self.host is not None else "all hosts"
            mailed = f", mailed to {', '.join(self.mail_to)}" if self.mail_to else ""
            return f"report of the last {self.period}, {who}, {', '.join(self.formats)}{mailed}"
        if self.kind == "collect":
            return "one snapshot"
        return "apply the archive policy"


def _weekdays(field_text: str) -> str:
    """A crontab day-of-week field (0 or 7 = Sunday) as APScheduler weekday names.

    APScheduler 3 numbers days from Monday = 0; names are unambiguous, so numbers are
    translated to names (``1-5`` -> ``mon,tue,wed,thu,fri``).
    """
    if field_text in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field_text.lower().split(","):
        body, _, step_text = part.partition("/")
        if step_text and not (step_text.isdigit() and int(step_text) > 0):
            raise ValueError(f"bad step in day of week {part!r}")
        step = int(step_text) if step_text else 1
        if body == "*":
            lo, hi = 0, 6
        else:
            first, _, last = body.partition("-")
            lo = _weekday(first)
            hi = _weekday(last) if last else (6 if step_text else lo)
        if hi < lo:
            raise ValueError(f"day of week range {body!r} runs backwards")
        days.update(d % 7 for d in range(lo, hi + 1, step))
    return ",".join(_WEEKDAYS[d] for d in sorted(days))


def _weekday(token: str) -> int:
    token = token.strip()
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token)
    if token[:3] in _WEEKDAYS and len(token) >= 3:
        return _WEEKDAYS.index(token[:3])
    raise ValueError(f"unknown day of week {token!r} (use 0-7 or MON..SUN)")


def cron_trigger(expression: str) -> CronTrigger:
    """An APScheduler trigger (UTC) for a 5- or 6-field cron expression.

    Raises :class:`~metrics_toolkit.errors.ConfigError` naming what is wrong.
    """
    fields = expression.split() if isinstance(expression, str) else []
    if len(fields) not in (5, 6):
        raise ConfigError(f"Invalid cron expression {expression!r}: expected {_CRON_FORMS}.")
    second = fields[0] if len(fields) == 6 else "0"
    minute, hour, day, month, weekday = fields[-5:]
    try:
        return CronTrigger(
            second=second,
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=_weekdays(weekday),
            timezone=UTC,
        )
    except ValueError as error:
        msg = f"Invalid cron expression {expression!r}: {error}; expected {_CRON_FORMS}."
        raise ConfigError(msg) from None


def _kind_from_name(name: str) -> str | None:
    return next((kind for kind in JOB_KINDS if name.startswith(kind)), None)


def parse_jobs(value: Any) -> list[JobSpec]:
    """The job specs of a ``schedule.jobs`` config value, validated (see module docstring)."""
    if not isinstance(value, Mapping):
        raise ConfigError(
            "Config 'schedule.jobs' must be an object of name -> cron expression or job "
            f"object (got {value!r})."
        )
    return [_parse_job(str(name), spec) for name, spec in value.items()]


def _parse_job(name: str, spec: Any) -> JobSpec:
    where = f"schedule.jobs[{name!r}]"
    if isinstance(spec, str):
        spec = {"cron": spec}
    if not isinstance(spec, Mapping) or not isinstance(spec.get("cron"), str):
        raise ConfigError(f"{where} must be a cron expression or an object with 'cron'.")
    allowed = {"cron", "job", "period", "formats", "host", "interval", "mail_to"}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; use {sorted(allowed)}.")
    kind = spec.get("job") or _kind_from_name(name)
    if kind not in JOB_KINDS:
        raise ConfigError(
            f"{where}: set 'job' to one of {', '.join(JOB_KINDS)} (or start the name with one)."
        )
    try:
        cron_trigger(spec["cron"])
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None
    default_period = next((p for word, p in _PERIOD_BY_NAME if word in name), "24h")
    period = spec.get("period", default_period)
    formats = spec.get("formats", list(REPORT_FORMATS))
    host = spec.get("host")
    interval = spec.get("interval")
    _check_report_options(where, period, formats, host, interval)
    mail_to: tuple[str, ...] = ()
    if spec.get("mail_to") is not None:
        if kind != "report":
            raise ConfigError(f"{where}: 'mail_to' is for report jobs only.")
        mail_to = parse_recipients(spec["mail_to"], f"{where}['mail_to']")
    return JobSpec(name, kind, spec["cron"], period, tuple(formats), host, interval, mail_to)


def _check_report_options(where: str, period: Any, formats: Any, host: Any, interval: Any) -> None:
    try:
        Interval.parse(period)
        if interval is not None:
            Interval.parse(interval)
    except MetricsToolkitError as error:
        raise ConfigError(f"{where}: {error}") from None
    if (
        not isinstance(formats, list | tuple)
        or not formats
        or any(f not in REPORT_FORMATS for f in formats)
    ):
        raise ConfigError(
            f"{where}: 'formats' must be a list from {', '.join(REPORT_FORMATS)} (got {formats!r})."
        )
    if host is not None and not isinstance(host, str):
        raise ConfigError(f"{where}: 'host' must be a host label or null (got {host!r}).")


__all__ = ["JOB_KINDS", "REPORT_FORMATS", "JobSpec", "cron_trigger", "parse_jobs"]
