"""The scheduler: job specs and cron parsing, catch-up after downtime, no overlap, and a real
``metrics-toolkit schedule`` process whose jobs fire and that stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from metrics_toolkit.errors import ConfigError
from metrics_toolkit.scheduler import Schedule, latest_missed, next_run, read_state
from metrics_toolkit.store.config import set_config
from metrics_toolkit.store.config_keys import KEYS
from metrics_toolkit.store.db import make_engine
from metrics_toolkit.store.job_specs import JobSpec, cron_trigger, parse_jobs
from metrics_toolkit.store.models import ArchiveRun, MetricsSnapshot

NOW = datetime(2026, 1, 7, 12, 0, 30, tzinfo=UTC)  # a Wednesday


def test_the_default_jobs_parse() -> None:
    jobs = {job.name: job for job in parse_jobs(KEYS["schedule.jobs"].default)}
    assert {name: job.kind for name, job in jobs.items()} == {
        "collect": "collect",
        "archive": "archive",
        "report_daily": "report",
        "report_weekly": "report",
    }
    assert (jobs["report_daily"].period, jobs["report_weekly"].period) == ("24h", "7d")
    assert jobs["report_weekly"].formats == ("html", "pdf", "json")


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("0 6 * * *", datetime(2026, 1, 8, 6, 0, tzinfo=UTC)),
        ("0 7 * * MON", datetime(2026, 1, 12, 7, 0, tzinfo=UTC)),
        ("0 7 * * 1", datetime(2026, 1, 12, 7, 0, tzinfo=UTC)),  # crontab: 1 is Monday
        ("0 7 * * 0", datetime(2026, 1, 11, 7, 0, tzinfo=UTC)),  # 0 and 7 are Sunday
        ("0 7 * * 7", datetime(2026, 1, 11, 7, 0, tzinfo=UTC)),
        ("0 9 * * 1-5", datetime(2026, 1, 8, 9, 0, tzinfo=UTC)),
        ("30 * * * *", datetime(2026, 1, 7, 12, 30, tzinfo=UTC)),
        ("*/10 * * * * *", datetime(2026, 1, 7, 12, 0, 30, tzinfo=UTC)),
        ("15 */5 * * * *", datetime(2026, 1, 7, 12, 5, 15, tzinfo=UTC)),
    ],
)
def test_cron_expressions_mean_what_crontab_means(cron: str, expected: datetime) -> None:
    assert next_run(JobSpec("j", "report", cron), NOW) == expected


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("* * * *", "expected 5 fields"),
        ("60 * * * *", "higher than the maximum"),
        ("0 6 * * 8", "unknown day of week '8'"),
        ("0 6 * * FRI-MON", "runs backwards"),
        ("0 6 * * */0", "bad step"),
    ],
)
def test_bad_cron_expressions_are_refused(cron: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        cron_trigger(cron)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "must be an object"),
        ({"weird": "0 6 * * *"}, "set 'job' to one of"),
        ({"report": {"cron": "0 6 * * *", "period": "7x"}}, "Invalid interval '7x'"),
        ({"report": {"cron": "0 6 * * *", "colour": "red"}}, "unknown field(s) colour"),
        ({"report": {"cron": "0 6 * * *", "host": 5}}, "'host' must be a host label"),
        ({"archive": {"job": "archive"}}, "an object with 'cron'"),
    ],
)
def test_bad_job_specs_are_refused(value: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_jobs(value)
    assert message in str(info.value)


def test_latest_missed_run() -> None:
    daily = JobSpec("report_daily", "report", "0 6 * * *")
    last = datetime(2026, 1, 3, 6, 0, tzinfo=UTC)
    assert latest_missed(daily, last, NOW) == datetime(2026, 1, 7, 6, 0, tzinfo=UTC)
    assert latest_missed(daily, datetime(2026, 1, 7, 6, 0, tzinfo=UTC), NOW) is None
    every_second = JobSpec("c", "archive", "* * * * * *")
    # More fire times than the scan looks at: the latest one is "now".
    assert latest_missed(every_second, NOW - timedelta(days=2), NOW) == NOW.replace(microsecond=0)


def _wait(condition: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


def test_a_run_missed_while_down_is_caught_up_once(sqlite_url: str, tmp_path: Path) -> None:
    engine = make_engine(sqlite_url)
    state = tmp_path / "state.json"
    now = datetime.now(UTC)
    state.write_text(json.dumps({"report_daily": (now - timedelta(days=3)).isoformat()}))
    job = parse_jobs({"report_daily": {"cron": "0 6 * * *", "formats": ["json"]}})[0]
    schedule = Schedule(engine=engine, jobs=[job], output_dir=tmp_path / "out", state_path=state)
    schedule.start()
    try:
        assert _wait(lambda: schedule.runs.get("report_daily") == 1, 60)
    finally:
        schedule.stop()
        engine.dispose()
    missed = latest_missed(job, now - timedelta(days=3), now)
    assert missed is not None and missed.hour == 6
    assert read_state(state)["report_daily"] == missed
    written = list((tmp_path / "out" / "all").glob("*.json"))
    assert [p.name for p in written] == [f"24h-{missed:%Y%m%dT%H%MZ}.json"]
    assert json.loads(written[0].read_text())["end"] == missed.isoformat()


def test_a_job_never_overlaps_itself(sqlite_url: str, tmp_path: Path) -> None:
    engine = make_engine(sqlite_url)
    job = parse_jobs({"report_x": {"cron": "0 6 * * *", "formats": ["json"]}})[0]
    schedule = Schedule(engine=engine, jobs=[job], output_dir=tmp_path, state_path=tmp_path / "s")
    lock = schedule._locks.setdefault(job.name, threading.Lock())
    with lock:  # a run in progress
        assert schedule.run_job(job) is False
    assert schedule.run_job(job) is True
    assert schedule.runs == {"report_x": 1}
    engine.dispose()


@pytest.mark.slow
def test_a_real_scheduler_process_runs_its_jobs_and_stops_on_sigterm(
    sqlite_url: str, tmp_path: Path
) -> None:
    jobs = {
        "collect": "* * * * * *",
        "archive": "*/3 * * * * *",
        "report_fast": {
            "cron": "*/2 * * * * *",
            "job": "report",
            "period": "1h",
            "formats": ["json"],
        },
    }
    engine = make_engine(sqlite_url)
    with Session(engine) as session:
        set_config(session=session, key="schedule.jobs", value=jobs)
        set_config(session=session, key="schedule.state_path", value=str(tmp_path / "state.json"))
        set_config(session=session, key="archive.path", value=str(tmp_path / "archive"))
        session.commit()
    env = {**os.environ, "METRICS_TOOLKIT_DATABASE_URL": sqlite_url}
    cli = [sys.executable, "-m", "metrics_toolkit"]
    out = tmp_path / "reports"
    process = subprocess.Popen(
        [*cli, "schedule", "--out", str(out), "--spool", str(tmp_path / "spool.db")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def fired() -> bool:
        with engine.connect() as connection:
            snapshots = connection.execute(select(func.count(MetricsSnapshot.id))).scalar_one()
            runs = connection.execute(select(func.count(ArchiveRun.id))).scalar_one()
        return snapshots >= 3 and runs >= 1 and bool(list(out.glob("all/*.json")))

    try:
        assert _wait(fired, 60), "the jobs did not all fire"
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "Scheduler stopped" in stdout and "Traceback" not in stderr
    assert "Job collect done" in stderr and "Job report_fast done" in stderr
    with engine.connect() as connection:
        stamps = connection.execute(select(MetricsSnapshot.timestamp)).scalars().all()
    engine.dispose()
    assert len(set(stamps)) == len(stamps)
    assert all(ts.microsecond == 0 for ts in stamps)  # taken at the second the job fired
    assert "report_fast" in read_state(tmp_path / "state.json")
