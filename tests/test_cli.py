"""The command line, through click's CliRunner, against real databases."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from metrics_toolkit.cli import main


def run(db_url: str, *args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--database-url", db_url, *args], input=input)
    return result.exit_code, result.output


def test_users_lifecycle(db_url: str) -> None:
    code, out = run(db_url, "users", "add", "alice", "--password-stdin", input="s3cret-pass\n")
    assert code == 0, out
    assert "Created user 'alice'" in out
    code, out = run(db_url, "users", "add", "alice", "--password-stdin", input="other\n")
    assert code == 1 and "already exists" in out
    code, out = run(db_url, "users", "list", "--json")
    assert code == 0
    listed = json.loads(out)
    assert [u["username"] for u in listed] == ["alice"]
    assert "password_hash" not in listed[0]
    code, out = run(db_url, "users", "passwd", "alice", input="new-pass\nnew-pass\n")
    assert code == 0, out
    code, out = run(db_url, "users", "remove", "alice", "--yes")
    assert code == 0 and "Removed" in out
    code, out = run(db_url, "users", "remove", "alice", "--yes")
    assert code == 1 and "No user named 'alice'" in out


def test_config_commands(db_url: str) -> None:
    assert run(db_url, "config", "get", "collector.interval") == (0, '"10s"\n')
    code, out = run(db_url, "config", "set", "collector.interval", '"30s"')
    assert code == 0, out
    assert run(db_url, "config", "get", "collector.interval") == (0, '"30s"\n')
    code, out = run(db_url, "config", "list", "--json")
    assert json.loads(out)["collector.interval"] == "30s"
    code, out = run(db_url, "config", "set", "collector.interval", "30s")
    assert code == 1 and "not JSON" in out
    code, out = run(db_url, "config", "set", "nope", "1")
    assert code == 1 and "Unknown config key 'nope'" in out
    code, out = run(db_url, "config", "delete", "collector.interval")
    assert code == 0 and "reset to its default" in out


def test_policy_show_and_set(db_url: str) -> None:
    code, out = run(db_url, "policy", "show", "--json")
    assert code == 0
    assert json.loads(out)["retention_days"] == 30
    code, out = run(
        db_url,
        "policy",
        "set",
        "--retention-days",
        "60",
        "--downsample-after-days",
        "7",
        "--interval",
        "5min",
        "--no-archive",
    )
    assert code == 0, out
    shown = json.loads(run(db_url, "policy", "show", "--json")[1])
    assert (shown["retention_days"], shown["downsample_after_days"]) == (60, 7)
    assert (shown["downsample_interval"], shown["archive_enabled"]) == ("5min", False)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--retention-days", "5", "--downsample-after-days", "5"], "must be less than"),
        (["--interval", "7min"], "neither divides one day"),
        (["--interval", "1x"], "Invalid interval '1x'"),
        (["--retention-days", "0"], "0 is not in the range"),
    ],
)
def test_policy_set_rejects_bad_values(db_url: str, args: list[str], fragment: str) -> None:
    code, out = run(db_url, "policy", "set", *args)
    assert code != 0
    assert fragment in out
    assert "Traceback" not in out
    shown = json.loads(run(db_url, "policy", "show", "--json")[1])
    assert shown["retention_days"] == 30  # nothing changed


def test_status_and_db_commands(db_url: str) -> None:
    code, out = run(db_url, "db", "upgrade")
    assert code == 0 and "already at revision" in out
    code, out = run(db_url, "db", "current")
    assert code == 0 and "up to date" in out
    code, out = run(db_url, "status", "--json")
    assert code == 0
    assert json.loads(out)["snapshots"] == 0


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("postgresql://bob:hunter2@127.0.0.1:1/none", "Cannot use database"),
        ("mysql://bob:hunter2@localhost/x", "Unsupported database"),
        ("::::", "Invalid database URL"),
    ],
)
def test_bad_database_is_one_line_in_a_real_process(url: str, fragment: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "metrics_toolkit", "--database-url", url, "status"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0] and "hunter2" not in lines[0]


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["frobnicate"])
    assert result.exit_code == 2
    assert "No such command 'frobnicate'" in result.output


def test_fresh_sqlite_needs_no_setup(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path}/new/metrics.db"
    code, out = run(url, "status")
    assert code == 0, out
    assert "schema revision: 0001" in out or "schema revision" in out
