"""``metrics-toolkit report`` and ``schedule --list`` through click's CliRunner, on SQLite files."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pypdf import PdfReader

from metrics_toolkit.cli import main
from metrics_toolkit.collect.generator import generate_history
from metrics_toolkit.store.db import make_engine
from metrics_toolkit.store.ingest import write_snapshots

END = datetime(2026, 4, 1, 12, tzinfo=UTC)


@pytest.fixture
def filled_url(sqlite_url: str) -> str:
    engine = make_engine(sqlite_url)
    write_snapshots(
        engine,
        generate_history(start=END - timedelta(hours=6), end=END, interval="60s", hosts=1),
    )
    engine.dispose()
    return sqlite_url


def _run(url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--database-url", url, *args], catch_exceptions=False)


def test_report_writes_every_format_and_prints_the_paths(filled_url: str, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    result = _run(
        filled_url, "report", "--period", "6h", "--end", END.isoformat(), "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    printed = result.stdout.split()
    assert printed == [
        str(out / "all" / f"6h-20260401T1200Z.{ext}") for ext in ("html", "pdf", "json")
    ]
    data = json.loads(Path(printed[2]).read_text())
    assert data["hosts"] == ["web-1"] and data["summary"]
    assert len(PdfReader(printed[1]).pages) >= 3
    index = (out / "index.html").read_text()
    assert "all/6h-20260401T1200Z.pdf" in index


def test_report_for_one_host_with_start_end_and_interval(filled_url: str, tmp_path: Path) -> None:
    start = (END - timedelta(hours=3)).isoformat()
    result = _run(
        filled_url,
        "report",
        "--start",
        start,
        "--end",
        END.isoformat(),
        "--host",
        "web-1",
        "--format",
        "json",
        "--interval",
        "30min",
        "--out",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    data = json.loads(Path(result.stdout.strip()).read_text())
    assert (data["host"], data["period"], data["interval"]) == ("web-1", "3h", "30min")


def test_an_empty_range_is_a_short_report_and_a_warning(filled_url: str, tmp_path: Path) -> None:
    result = _run(
        filled_url, "report", "--end", "2020-01-01", "--format", "json", "--out", str(tmp_path)
    )
    assert result.exit_code == 0
    assert "Warning: No aggregated data" in result.stderr
    assert json.loads(Path(result.stdout.strip()).read_text())["empty"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "docx"], "Unknown report format 'docx'"),
        (["--period", "7x"], "Invalid interval '7x'"),
        (["--interval", "7min"], "neither divides one day"),
        (["--start", "2026-04-02", "--end", "2026-04-01"], "must end after it starts"),
        (["--start", "yesterday"], "Invalid start 'yesterday'"),
    ],
)
def test_bad_arguments_give_one_clear_line(
    filled_url: str, tmp_path: Path, args: list[str], message: str
) -> None:
    result = _run(filled_url, "report", "--out", str(tmp_path), *args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "all").exists()


def test_report_output_dir_comes_from_config(
    filled_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "from-config"
    assert (
        _run(filled_url, "config", "set", "report.output_dir", json.dumps(str(target))).exit_code
        == 0
    )
    result = _run(
        filled_url, "report", "--period", "1h", "--end", END.isoformat(), "--format", "json"
    )
    assert result.exit_code == 0, result.output
    assert Path(result.stdout.strip()).parent == target / "all"


def test_schedule_list_shows_jobs_and_next_runs(sqlite_url: str) -> None:
    jobs = {
        "collect": "*/10 * * * * *",
        "report_weekly": {"cron": "0 7 * * MON", "job": "report", "period": "7d"},
    }
    assert _run(sqlite_url, "config", "set", "schedule.jobs", json.dumps(jobs)).exit_code == 0
    result = _run(sqlite_url, "schedule", "--list", "--json")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["collect"]["job"] == "collect"
    weekly = datetime.fromisoformat(rows["report_weekly"]["next_run"])
    assert weekly.weekday() == 0 and (weekly.hour, weekly.minute) == (7, 0)
    assert weekly > datetime.now(UTC)
    table = _run(sqlite_url, "schedule", "--list")
    assert "report_weekly" in table.stdout and "0 7 * * MON" in table.stdout


@pytest.mark.parametrize(
    ("jobs", "message"),
    [
        ({"collect": "* * *"}, "Invalid cron expression"),
        ({"nightly": "0 1 * * *"}, "set 'job' to one of collect, archive, report"),
        ({"report_x": {"cron": "0 1 * * *", "formats": ["doc"]}}, "'formats' must be a list"),
        ({"report_x": {"cron": "0 1 * * 9"}}, "unknown day of week '9'"),
    ],
)
def test_bad_schedules_are_refused_by_config_set(
    sqlite_url: str, jobs: dict[str, object], message: str
) -> None:
    result = _run(sqlite_url, "config", "set", "schedule.jobs", json.dumps(jobs))
    assert result.exit_code != 0 and message in result.output


def test_bad_thresholds_are_refused_by_config_set(sqlite_url: str) -> None:
    bad = {"cpu.usage_percent": {"above": 90, "for": "forever"}}
    result = _run(sqlite_url, "config", "set", "report.thresholds", json.dumps(bad))
    assert result.exit_code != 0 and "'for'" in result.output
