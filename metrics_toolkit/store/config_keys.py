"""Every runtime config key the toolkit knows, declared once as (key, default, help).

This one table supplies the defaults, validates ``config set``, prints
``metrics-toolkit config keys`` and is checked by a docs test. Values are JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from metrics_toolkit.collector_names import COLLECTOR_NAMES, check_collector_names
from metrics_toolkit.errors import ConfigError, InvalidInterval, UnknownCollector, UnknownConfigKey
from metrics_toolkit.intervals import Interval
from metrics_toolkit.store.job_specs import parse_jobs
from metrics_toolkit.store.smtp_settings import DEFAULT_SMTP, parse_smtp
from metrics_toolkit.store.threshold_rules import parse_rules

Validator = Callable[[Any], None]


def _fail(key: str, expected: str, value: Any) -> ConfigError:
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:80] + "…"
    return ConfigError(f"Config {key!r} must be {expected} (got {shown}).")


def _optional_string(key: str) -> Validator:
    def check(value: Any) -> None:
        if value is not None and (not isinstance(value, str) or not value):
            raise _fail(key, "a non-empty string or null", value)

    return check


#: Upper bounds of the counts a user can set (the collector daemon checks the same ones).
MAX_BATCH_SIZE = 100_000
MAX_SPOOL_ROWS = 1_000_000_000
#: Longest path accepted for a file or directory key, and longest name in it (Linux limits).
MAX_PATH_CHARS = 4096
MAX_NAME_BYTES = 255
#: Longest look-ahead of a report's "Running out" section (forecasts reach ten years at most).
MAX_FORECAST_DAYS = 3653


def _bounded_int(maximum: int) -> Callable[[str], Validator]:
    def make(key: str) -> Validator:
        def check(value: Any) -> None:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= maximum:
                raise _fail(key, f"a whole number greater than 0 and at most {maximum:,}", value)

        return check

    return make


def _path(key: str) -> Validator:
    def check(value: Any) -> None:
        if not isinstance(value, str) or not value or "\0" in value:
            raise _fail(key, "a non-empty path without NUL characters", value)
        too_long = len(value) > MAX_PATH_CHARS or any(
            len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES for part in value.split("/")
        )
        if too_long:
            shown = value if len(value) <= 80 else value[:80] + "…"
            msg = (
                f"Config {key!r} must be a path of at most {MAX_PATH_CHARS} characters, each "
                f"name in it at most {MAX_NAME_BYTES} bytes (got {shown!r}, {len(value):,} "
                "characters)."
            )
            raise ConfigError(msg)

    return check


def _collector_names(key: str) -> Validator:
    def check(value: Any) -> None:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise _fail(key, "a list of strings naming collectors", value)
        try:
            check_collector_names(value)
        except UnknownCollector as error:
            raise ConfigError(f"Config {key!r}: {error}") from None

    return check


def _interval(key: str) -> Validator:
    def check(value: Any) -> None:
        try:
            Interval.parse(value)
        except InvalidInterval as error:
            raise ConfigError(f"Config {key!r}: {error}") from None

    return check


def _number_map(key: str) -> Validator:
    def check(value: Any) -> None:
        if not isinstance(value, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()
        ):
            raise _fail(key, "an object of numbers", value)

    return check


def _string_map(key: str) -> Validator:
    def check(value: Any) -> None:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise _fail(key, "an object of strings", value)

    return check


def _thresholds(key: str) -> Validator:
    def check(value: Any) -> None:
        try:
            parse_rules(value)
        except ConfigError as error:
            msg = f"Config {key!r} must be an object of numbers or rules ({error})"
            raise ConfigError(msg) from None

    return check


def _smtp(key: str) -> Validator:
    def check(value: Any) -> None:
        parse_smtp(value)

    return check


def _schedule_jobs(key: str) -> Validator:
    def check(value: Any) -> None:
        parse_jobs(value)

    return check


@dataclass(frozen=True)
class ConfigKey:
    """One known config key: its default, a one-line help, and its validator."""

    key: str
    default: Any
    help: str
    validate: Validator


def _key(key: str, default: Any, help: str, make: Callable[[str], Validator]) -> ConfigKey:
    return ConfigKey(key, default, help, make(key))


CONFIG_KEYS: tuple[ConfigKey, ...] = (
    _key(
        "collector.interval", "10s", "Seconds between collection ticks (rollup syntax).", _interval
    ),
    _key(
        "collector.enabled",
        list(COLLECTOR_NAMES),
        "Collectors to run, by name.",
        _collector_names,
    ),
    _key(
        "collector.host", None, "Host label for snapshots (null: the hostname).", _optional_string
    ),
    _key(
        "collector.batch_size",
        10,
        "Snapshots written per database batch.",
        _bounded_int(MAX_BATCH_SIZE),
    ),
    _key("spool.path", "spool.db", "Local spool file for snapshots the database refused.", _path),
    _key(
        "spool.max_rows",
        1_000_000,
        "Most snapshots the spool keeps before dropping.",
        _bounded_int(MAX_SPOOL_ROWS),
    ),
    _key("archive.path", "archive", "Directory (or fsspec URL) of the Parquet archive.", _path),
    _key("report.output_dir", "reports", "Where reports are written.", _path),
    _key(
        "report.thresholds",
        {
            "cpu.usage_percent": {"above": 90.0, "for": "5min"},
            "memory.usage_percent": {"above": 90.0, "for": "5min"},
            "disk.mounts.*.usage_percent": {"above": 85.0},
        },
        "Breach rules per metric path ('*' matches one segment): a threshold, or "
        '{"above": N, "for": "5min"} for a sustained breach.',
        _thresholds,
    ),
    _key(
        "report.smtp",
        DEFAULT_SMTP,
        "Mail server for `report --mail-to` and scheduled reports with mail_to: host, port, "
        "from, starttls, ssl, username (the password only from METRICS_TOOLKIT_SMTP_PASSWORD).",
        _smtp,
    ),
    _key(
        "report.forecast_limits",
        {},
        "Forecast limits per metric path ('*' matches one segment), beside the default 100 "
        "for disk.mounts.*.usage_percent and memory.usage_percent.",
        _number_map,
    ),
    _key(
        "report.forecast_days",
        30,
        'A report\'s "Running out" section lists forecasts reaching their limit within this '
        "many days.",
        _bounded_int(MAX_FORECAST_DAYS),
    ),
    _key(
        "schedule.jobs",
        {
            "collect": "* * * * *",
            "archive": "30 * * * *",
            "report_daily": {"cron": "0 6 * * *", "job": "report", "period": "24h"},
            "report_weekly": {"cron": "0 7 * * MON", "job": "report", "period": "7d"},
        },
        "Jobs of `metrics-toolkit schedule`: name -> cron expression, or an object with "
        "cron, job (collect, archive, report) and report options.",
        _schedule_jobs,
    ),
    _key(
        "schedule.state_path",
        "schedule-state.json",
        "File where `metrics-toolkit schedule` records each job's last run (catch-up after "
        "downtime).",
        _path,
    ),
)

KEYS: dict[str, ConfigKey] = {entry.key: entry for entry in CONFIG_KEYS}

# Keys that were renamed or removed, with what to use instead.
OBSOLETE_KEYS: dict[str, str] = {
    "retention": "the archive policy: `metrics-toolkit policy set --retention-days N`",
}


def known_key(key: str) -> ConfigKey:
    """The declaration of ``key``; a clear :class:`~metrics_toolkit.errors.UnknownConfigKey`."""
    if key in KEYS:
        return KEYS[key]
    if key in OBSOLETE_KEYS:
        raise UnknownConfigKey(f"Config key {key!r} is no longer used; use {OBSOLETE_KEYS[key]}.")
    raise UnknownConfigKey(f"Unknown config key {key!r}. Known keys: {', '.join(sorted(KEYS))}.")
