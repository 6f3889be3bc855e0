"""``metrics-toolkit generate`` and ``collect`` from the command line: output and bad input."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from metrics_toolkit.cli import main
from metrics_toolkit.collect.generator import count_history, generate_history
from metrics_toolkit.store.db import make_engine
from metrics_toolkit.store.models import MetricsSnapshot

END = "2026-01-05T06:00:00"
END_AT = datetime(2026, 1, 5, 6, tzinfo=UTC)


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "metrics_toolkit", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_generate_writes_the_generated_history_once(db_url: str) -> None:
    args = ["--database-url", db_url, "generate", "--days", "0.02", "--hosts", "3"]
    args += ["--interval", "30s", "--seed", "7", "--end", END]
    start = END_AT - timedelta(days=0.02)
    expected = count_history(start=start, end=END_AT, interval="30s", hosts=3)
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert f"Wrote {expected:,} snapshot(s) (0 already stored) for 3 host(s)" in first.stdout
    assert "rows/s" in first.stdout and "into " in first.stdout
    assert len(first.stdout.strip().splitlines()) == 1  # the progress bar is on stderr
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert f"Wrote 0 snapshot(s) ({expected:,} already stored)" in again.stdout
    engine = make_engine(db_url)
    with Session(engine) as session:
        rows = session.scalars(
            select(MetricsSnapshot).order_by(MetricsSnapshot.timestamp, MetricsSnapshot.id)
        ).all()
    engine.dispose()
    generated = [
        row
        for chunk in generate_history(start=start, end=END_AT, interval="30s", hosts=3, seed=7)
        for row in chunk
    ]
    key = lambda r: (r[0], r[2]["host"])  # noqa: E731
    assert sorted(((s.timestamp, s.metric_type, s.metric_data) for s in rows), key=key) == sorted(
        generated, key=key
    )


def test_generate_defaults_to_ending_now(sqlite_url: str) -> None:
    result = CliRunner().invoke(
        main, ["--database-url", sqlite_url, "generate", "--days", "0.001", "--hosts", "1"]
    )
    assert result.exit_code == 0, result.output
    engine = make_engine(sqlite_url)
    with Session(engine) as session:
        latest = session.scalars(
            select(MetricsSnapshot.timestamp).order_by(MetricsSnapshot.timestamp.desc())
        ).first()
    engine.dispose()
    assert latest is not None
    assert timedelta(0) <= datetime.now(UTC) - latest < timedelta(minutes=5)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--days", "0"], "--days must be greater than 0 (got 0)"),
        (["--days", "-3"], "--days must be greater than 0"),
        (["--interval", "7min"], "Invalid interval '7min'"),
        (["--interval", "abc"], "Invalid interval 'abc'"),
        (["--end", "yesterday"], "Invalid --end 'yesterday'"),
        (["--end", "2026-13-01"], "Invalid --end '2026-13-01'"),
        (["--hosts", "0"], "--hosts must be at least 1"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
    ],
)
def test_generate_bad_input_is_one_clear_line(
    tmp_path: Path, options: list[str], message: str
) -> None:
    url = f"sqlite:///{tmp_path / 'metrics.db'}"
    result = CliRunner().invoke(main, ["--database-url", url, "generate", *options])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and message in lines[0]
    assert not (tmp_path / "metrics.db").exists()  # nothing was opened for bad input


COLLECT_BAD_INPUT = [
    (("--interval", "0s"), "Invalid interval '0s'"),
    (("--interval", "abc"), "Invalid interval 'abc'"),
    (("--spool", "{blocker}/spool.db"), "is a file, not a directory"),
    (("--spool", "/proc/no-such-dir/spool.db"), "Cannot create the spool directory"),
    (("--collectors", "cpu,gpu"), "Unknown collector 'gpu'"),
    (("--duration", "soon"), "Invalid duration 'soon'"),
    (("--count", "0"), "--count must be at least 1"),
    (("--batch-size", "0"), "The batch size must be a whole number, at least 1"),
]


def collect_args(tmp_path: Path, url: str, extra: tuple[str, ...]) -> list[str]:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    extra = tuple(part.format(blocker=blocker) for part in extra)
    spool = () if "--spool" in extra else ("--spool", str(tmp_path / "spool.db"))
    stop = () if {"--duration", "--count"} & set(extra) else ("--count", "1")
    return ["--database-url", url, "collect", *stop, *spool, *extra]


@pytest.mark.parametrize(("extra", "message"), COLLECT_BAD_INPUT)
def test_collect_bad_input_is_one_clear_line(
    tmp_path: Path, sqlite_url: str, extra: tuple[str, ...], message: str
) -> None:
    result = CliRunner().invoke(main, collect_args(tmp_path, sqlite_url, extra))
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and message in lines[0]
    assert not result.stdout


@pytest.mark.parametrize(("extra", "message"), COLLECT_BAD_INPUT[:3])
def test_collect_bad_input_in_a_real_process(
    tmp_path: Path, sqlite_url: str, extra: tuple[str, ...], message: str
) -> None:
    """As a user runs it: exit code 1, one line on stderr, no traceback."""
    result = run_cli(*collect_args(tmp_path, sqlite_url, extra), cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and message in lines[0]


def test_collect_refuses_the_metrics_database_as_its_spool(sqlite_url: str, tmp_path: Path) -> None:
    database = sqlite_url.removeprefix("sqlite:///")
    result = CliRunner().invoke(
        main, ["--database-url", sqlite_url, "collect", "--count", "1", "--spool", database]
    )
    assert result.exit_code == 1
    assert "is not a metrics-toolkit spool file" in result.stderr


def test_collect_in_process_prints_a_summary(sqlite_url: str, tmp_path: Path) -> None:
    spool = str(tmp_path / "spool.db")
    args = ["--database-url", sqlite_url, "collect", "--interval", "1s", "--count", "1"]
    result = CliRunner().invoke(main, [*args, "--collectors", "memory", "--spool", spool])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        "Collected 1 snapshot(s); wrote 1 (0 already stored); 0 left in the spool"
    )
