"""Hostile input through the command line, second round (issue 15): one clear line, a
non-zero exit, nothing changed, on SQLite and PostgreSQL.

Each case below was a traceback, a silently wrong result or a leaked secret before.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from metrics_toolkit.cli import main
from metrics_toolkit.collect.collectors import COLLECTORS, resolve_names
from metrics_toolkit.collector_names import COLLECTOR_NAMES
from metrics_toolkit.errors import InvalidDatabaseURL, MetricsToolkitError
from metrics_toolkit.frames.load import load_frame
from metrics_toolkit.store.db import make_engine, mask_url, resolve_url
from metrics_toolkit.store.ingest import write_snapshots

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def run(db_url: str, *args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--database-url", db_url, *args], input=input)
    return result.exit_code, result.output


def refused(code: int, out: str, fragment: str) -> None:
    """A refusal: exit 1 or 2, one ``Error:`` line holding ``fragment``, no traceback."""
    assert code in (1, 2), out
    assert "Traceback" not in out and "Error" in out, out
    errors = [line for line in out.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, out
    assert fragment in errors[0], out


def db_state(db_url: str) -> dict[str, Any]:
    """Everything a command could change, to compare before and after a refusal."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            return {
                table: sorted(
                    map(repr, connection.execute(text(f"SELECT * FROM {table}")).all()), key=str
                )
                for table in (
                    "config",
                    "users",
                    "archive_policies",
                    "archive_runs",
                    "metrics_snapshots",
                )
            }
    finally:
        engine.dispose()


def fill(db_url: str, rows: list[tuple[datetime, str]]) -> None:
    engine = make_engine(db_url)
    try:
        write_snapshots(
            engine,
            [
                (ts, "aggregated", {"host": host, "cpu": {"usage_percent": float(i % 97)}})
                for i, (ts, host) in enumerate(rows)
            ],
        )
    finally:
        engine.dispose()


def hours(days: int, every_minutes: int = 10, hosts: tuple[str, ...] = ("h1",)) -> list[Any]:
    steps = days * 24 * 60 // every_minutes
    return [(T0 + timedelta(minutes=every_minutes * i), h) for h in hosts for i in range(steps)]


# --------------------------------------------------------------------------------------
# Policy bounds: checked when set, by the validator the archive plan uses


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--retention-days", "3000000", "--downsample-after-days", "1"], "at most 36525"),
        (["--retention-days", "99999999999999999999"], "at most 36525"),
        (["--interval", "99999999999999999999D"], "wider than 36525 days"),
        (["--interval", "1000000D"], "wider than 36525 days"),
        (["--interval", "30D"], "at most the rollup window"),
    ],
)
def test_policy_bounds_are_refused_when_set(db_url: str, args: list[str], fragment: str) -> None:
    before = db_state(db_url)
    refused(*run(db_url, "policy", "set", *args), fragment)
    assert db_state(db_url) == before
    code, out = run(db_url, "archive", "run", "--dry-run", "--now", "2026-01-05")
    assert code == 0, out


def test_a_policy_reaching_before_year_one_is_one_line(db_url: str, tmp_path: Path) -> None:
    assert run(db_url, "policy", "show")[0] == 0
    before = db_state(db_url)
    for extra in (["--dry-run"], ["--archive-path", str(tmp_path)]):
        refused(*run(db_url, "archive", "run", "--now", "0001-01-02", *extra), "before year 1")
    assert db_state(db_url) == before


# --------------------------------------------------------------------------------------
# Report ranges and output


def test_report_ranges_beyond_the_calendar_are_one_line(db_url: str, tmp_path: Path) -> None:
    fill(db_url, [(T0 + timedelta(hours=i), "h1") for i in range(3)])
    fill(db_url, [(datetime(9999, 12, 31, 23, 59, 30, tzinfo=UTC), "h1")])
    out_dir = str(tmp_path / "out")
    for args, fragment in (
        (["--start", "1900-01-01", "--end", "9999-12-31"], "between the years 1 and 9999"),
        (["--period", "1000000D"], "wider than 36525 days"),
        (["--end", "latest"], "between the years 1 and 9999"),
        (["--start", "0001-01-01", "--end", "2026-01-01"], "between the years 1 and 9999"),
    ):
        refused(*run(db_url, "report", "--format", "json", "--out", out_dir, *args), fragment)
    assert not (tmp_path / "out").exists()


def test_report_of_year_one_has_a_zero_padded_name(db_url: str, tmp_path: Path) -> None:
    code, out = run(
        db_url,
        "report",
        *("--start", "0001-06-01", "--end", "0001-06-02", "--format", "json"),
        *("--out", str(tmp_path)),
    )
    assert code == 0, out
    assert (tmp_path / "all" / "1d-00010602T0000Z.json").is_file(), out


def test_report_into_a_folder_that_cannot_be_made(db_url: str, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    refused(
        *run(db_url, "report", "--format", "json", "--out", str(blocker / "reports")),
        "Cannot write the report under",
    )
    too_long = "x" * 100_000
    refused(
        *run(db_url, "report", "--format", "json", "--out", str(tmp_path / too_long)),
        "File name too long",
    )


# --------------------------------------------------------------------------------------
# Config: only what the consumers accept


def test_collector_names_are_declared_once() -> None:
    assert tuple(COLLECTORS) == COLLECTOR_NAMES


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("collector.enabled", '["cpu","nosuch"]', "Unknown collector 'nosuch'"),
        ("collector.enabled", "[]", "Name at least one collector"),
        ("collector.enabled", "[" * 5000 + "]" * 5000, "nested too deeply"),
        ("report.thresholds", "[" * 3000 + "]" * 3000, "nested too deeply"),
        ("spool.max_rows", "99999999999999999999999999", "at most 1,000,000,000"),
        ("spool.max_rows", "1e26", "greater than 0"),
        ("collector.batch_size", "1000000", "at most 100,000"),
        ("report.output_dir", json.dumps("d" * 100_000), "at most 4096 characters"),
        ("archive.path", json.dumps("a/" + "n" * 300), "at most 255 bytes"),
        ("spool.path", json.dumps("spool\u0000.db"), "without NUL"),
    ],
)
def test_config_set_runs_the_consumers_check(
    db_url: str, key: str, value: str, fragment: str
) -> None:
    before = db_state(db_url)
    refused(*run(db_url, "config", "set", key, value), fragment)
    assert db_state(db_url) == before


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(names=st.lists(st.sampled_from([*COLLECTOR_NAMES, "nosuch", "CPU", ""]), max_size=4))
def test_config_accepts_exactly_the_collector_lists_collect_accepts(
    sqlite_url: str, names: list[str]
) -> None:
    try:
        resolve_names(names)
        accepted = True
    except MetricsToolkitError:
        accepted = False
    code, out = run(sqlite_url, "config", "set", "collector.enabled", json.dumps(names))
    assert (code == 0) == accepted, out


def test_collect_with_no_collector_is_refused(db_url: str) -> None:
    before = db_state(db_url)
    refused(*run(db_url, "collect", "--collectors", ",", "--count", "1"), "at least one collector")
    assert db_state(db_url) == before


# --------------------------------------------------------------------------------------
# Unusable SQLite paths


@pytest.mark.parametrize("tail", ["metrics.db", "deeper/metrics.db"])
def test_a_sqlite_path_under_a_regular_file_is_one_line(tmp_path: Path, tail: str) -> None:
    blocker = tmp_path / "regular-file"
    blocker.write_text("x")
    code, out = run(f"sqlite:///{blocker}/{tail}", "status")
    refused(code, out, "cannot be created")
    assert blocker.read_text() == "x"


# --------------------------------------------------------------------------------------
# The archive: damaged files, missing paths


@pytest.fixture
def archived(db_url: str, tmp_path: Path) -> Path:
    fill(db_url, hours(3, hosts=("h1", "h2")))
    args = ("--retention-days", "2", "--downsample-after-days", "1", "--interval", "1h")
    assert run(db_url, "policy", "set", *args, "--archive")[0] == 0
    root = tmp_path / "archive"
    now = (T0 + timedelta(days=3)).isoformat()
    code, out = run(db_url, "archive", "run", "--now", now, "--archive-path", str(root))
    assert code == 0, out
    return root


def test_damaged_archive_files_are_named_and_verify_lists_them(db_url: str, archived: Path) -> None:
    files = sorted(archived.glob("*/*/*.parquet"))
    assert len(files) >= 2
    code, out = run(db_url, "archive", "verify", "--archive-path", str(archived))
    assert code == 0 and f"{len(files)} files checked" in out and "0 damaged" in out, out
    truncated, flipped = files[0], files[1]
    truncated.write_bytes(truncated.read_bytes()[:300])
    data = bytearray(flipped.read_bytes())
    for i in range(64, len(data) // 2):  # garble the pages, keep the footer
        data[i] ^= 0x5A
    flipped.write_bytes(bytes(data))
    before = db_state(db_url)
    root = ("--archive-path", str(archived))
    refused(*run(db_url, "archive", "list", *root), str(truncated))
    refused(
        *run(db_url, "archive", "restore", "--start", "1900-01-01", "--end", "9999-12-31", *root),
        str(truncated),
    )
    assert db_state(db_url) == before
    with pytest.raises(MetricsToolkitError, match="Damaged archive file"):
        load_frame(archived, metrics=["cpu.usage_percent"], interval="1h")
    code, out = run(db_url, "archive", "verify", "--json", *root)
    assert code == 1, out
    report = json.loads(out)
    assert report["files"] == len(files)
    assert sorted(d["path"] for d in report["damaged"]) == sorted([str(truncated), str(flipped)])


def test_a_missing_archive_path_is_an_error(db_url: str, tmp_path: Path) -> None:
    missing = ("--archive-path", str(tmp_path / "no-such-archive"))
    before = db_state(db_url)
    refused(*run(db_url, "archive", "list", *missing), "No archive at")
    refused(
        *run(
            db_url, "archive", "restore", "--start", "2026-01-01", "--end", "2026-01-02", *missing
        ),
        "No archive at",
    )
    refused(*run(db_url, "archive", "verify", *missing), "No archive at")
    assert db_state(db_url) == before


# --------------------------------------------------------------------------------------
# Accounts


def add(db_url: str, name: str, password: str = "a long passphrase") -> tuple[int, str]:
    return run(db_url, "users", "add", name, "--password-stdin", input=password + "\n")


def test_user_names_are_unique_regardless_of_case(db_url: str) -> None:
    assert add(db_url, "alice")[0] == 0
    before = db_state(db_url)
    for name in ("ALICE", "Alice", " alice "):
        refused(*add(db_url, name), "already exists")
    assert db_state(db_url) == before


@pytest.mark.parametrize(
    ("name", "password", "fragment"),
    [
        ("tab\tname", "a long passphrase", "U+0009"),
        ("bell\x07", "a long passphrase", "U+0007"),
        ("zero\u200bwidth", "a long passphrase", "U+200B"),
        ("bob", "x", "at least 8"),
        ("bob", "1234567", "at least 8"),
        ("bob", "password", "most common"),
        ("bob", "Qwertyuiop", "most common"),
    ],
)
def test_bad_names_and_weak_passwords_are_refused(
    db_url: str, name: str, password: str, fragment: str
) -> None:
    before = db_state(db_url)
    refused(*add(db_url, name, password), fragment)
    assert db_state(db_url) == before


def test_passwd_follows_the_same_policy(db_url: str) -> None:
    assert add(db_url, "carol")[0] == 0
    before = db_state(db_url)
    refused(
        *run(db_url, "users", "passwd", "carol", "--password-stdin", input="short\n"),
        "at least 8",
    )
    assert db_state(db_url) == before


def test_removing_a_missing_user_says_so_before_asking(db_url: str) -> None:
    code, out = run(db_url, "users", "remove", "nosuch", input="")
    refused(code, out, "No user named 'nosuch'")
    assert "Delete user" not in out


# --------------------------------------------------------------------------------------
# Secrets in URLs

SECRET_CHARS = "XYZ0123456789@:/?#!%&=+ ;[]"


@settings(max_examples=300, deadline=None)
@given(password=st.text(alphabet=SECRET_CHARS, min_size=1, max_size=24).map(lambda p: "X" + p))
def test_mask_url_never_shows_any_part_of_a_password(password: str) -> None:
    # No character of the rest of the URL is in XYZ or a digit: any of them in the output
    # would be a piece of the password.
    for url in (f"postgresql://user:{password}@host/db", f"postgresql://user:{password}@host"):
        masked = [mask_url(url)]
        try:
            masked.append(mask_url(resolve_url(url)))  # the URL object an engine gets
        except InvalidDatabaseURL as error:
            masked.append(str(error).split(": ", 1)[0])
        for shown in masked:
            assert not set(shown) & set("XYZ0123456789"), (url, shown)


def test_a_password_with_an_unescaped_at_never_reaches_the_message() -> None:
    code, out = run("postgresql://root:SECRET@PW@127.0.0.1:1/db", "status")
    refused(code, out, "write an '@' inside the user name or password as %40")
    assert "SECRET" not in out and "PW" not in out
