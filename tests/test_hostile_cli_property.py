"""Every command, driven with generated hostile arguments (issue 15).

Whatever the arguments: no traceback, exit code 0, 1 or 2, and when the exit is not 0 the
database is exactly as before. ``collect`` and ``generate`` are left out (they run for as
long as their valid arguments say; their refusals have their own tests), as is ``explore``
(it starts a server) and ``schedule`` (it runs forever).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metrics_toolkit.cli import main
from metrics_toolkit.store.config_keys import KEYS
from tests.test_hostile_cli import db_state

WORDS = [
    "",
    " ",
    "-1",
    "0",
    "1",
    "7",
    "99999999999999999999",
    "-99999999999999999999",
    "1e309",
    "nan",
    "inf",
    "1000000D",
    "99999999999999999999D",
    "36526D",
    "0s",
    "7min",
    "1h",
    "auto",
    "1x",
    "0001-01-01",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59",
    "9999-12-31T23:59:59-14:00",
    "10000-01-01",
    "1900-01-01",
    "2026-01-01",
    "2026-02-30",
    "latest",
    "now",
    "\x00",
    "\t",
    "a\nb",
    "'",
    '"',
    "%s",
    "{}",
    "[]",
    "null",
    "true",
    '"x"',
    '["cpu","nosuch"]',
    "[" * 3000,
    "[" * 3000 + "]" * 3000,
    "x" * 5000,
    "regular-file/sub",
    "../../..",
    "html,pdf,json,xml",
    ",",
]

hostile = st.one_of(st.sampled_from(WORDS), st.text(max_size=20))
#: Each option type is drawn mostly from its own edge cases, so few examples reach them.
number = st.one_of(
    st.sampled_from(["-1", "0", "1", "2", "3000000", "36526", "99999999999999999999", "1e309"]),
    st.integers(-(10**30), 10**30).map(str),
    st.floats().map(str),
    hostile,
)
moment = st.one_of(
    st.sampled_from(
        [
            "0001-01-01",
            "0001-01-02T00:00:00+14:00",
            "1900-01-01",
            "2026-01-01",
            "9999-12-31T23:59:59",
            "9999-12-31T23:59:59-14:00",
            "latest",
        ]
    ),
    hostile,
)
width = st.one_of(
    st.sampled_from(["0s", "7min", "1h", "30D", "36525D", "1000000D", "99999999999999999999D"]),
    hostile,
)
place = st.one_of(
    st.sampled_from(["regular-file/sub", "x" * 300, "a/" * 3000, "no-such-dir", "\x00"]),
    hostile,
)
key = st.one_of(st.sampled_from(sorted(KEYS)), hostile)
json_value = st.one_of(
    hostile,
    st.recursive(
        st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=8,
    ).map(json.dumps),
)


def optional(flag: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    return st.one_of(st.just([]), values.map(lambda v: [flag, v]))


def joined(*parts: st.SearchStrategy[list[str]]) -> st.SearchStrategy[list[str]]:
    return st.tuples(*parts).map(lambda lists: [a for part in lists for a in part])


fixed = st.just
Command = tuple[list[str], str | None]


def plain(*args: st.SearchStrategy[list[str]]) -> st.SearchStrategy[Command]:
    return st.tuples(joined(*args), st.none())


def word(values: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    return values.map(lambda v: [v])


COMMANDS: dict[str, st.SearchStrategy[Command]] = {
    "read": st.tuples(
        st.sampled_from(
            [
                ["status"],
                ["db", "current"],
                ["policy", "show"],
                ["users", "list"],
                ["config", "list"],
                ["config", "keys"],
            ]
        ),
        st.none(),
    ),
    "users add": st.tuples(
        joined(fixed(["users", "add"]), word(hostile), fixed(["--password-stdin"])), hostile
    ),
    "users passwd": st.tuples(
        joined(fixed(["users", "passwd"]), word(hostile), fixed(["--password-stdin"])), hostile
    ),
    "users remove": st.tuples(joined(fixed(["users", "remove"]), word(hostile)), hostile),
    "config get": plain(fixed(["config", "get"]), word(key)),
    "config set": plain(fixed(["config", "set"]), word(key), word(json_value)),
    "config delete": plain(fixed(["config", "delete"]), word(key)),
    "policy set": plain(
        fixed(["policy", "set"]),
        optional("--retention-days", number),
        optional("--downsample-after-days", number),
        optional("--interval", width),
    ),
    "archive run": plain(
        fixed(["archive", "run"]),
        optional("--now", moment),
        st.sampled_from([["--dry-run"], ["--dry-run", "--json"], ["--json"], []]),
        optional("--wait", number),
        optional("--archive-path", place),
    ),
    "archive status": plain(fixed(["archive", "status"]), optional("--limit", number)),
    "archive list": plain(fixed(["archive", "list"]), optional("--archive-path", place)),
    "archive verify": plain(fixed(["archive", "verify"]), optional("--archive-path", place)),
    "archive restore": plain(
        fixed(["archive", "restore", "--start"]),
        word(moment),
        fixed(["--end"]),
        word(moment),
        optional("--archive-path", place),
        optional("--metric-type", hostile),
    ),
    "report": plain(
        fixed(["report"]),
        optional("--start", moment),
        optional("--end", moment),
        optional("--period", width),
        optional("--interval", width),
        optional("--host", hostile),
        optional("--format", st.sampled_from(["json", "html", "xml", ",", ""])),
        optional("--out", place),
    ),
}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Relative paths of the generated arguments land here; one of them is a file."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "regular-file").write_text("in the way")
    return tmp_path


@pytest.mark.parametrize("name", sorted(COMMANDS))
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_command_gives_a_traceback_or_changes_anything_it_refuses(
    sqlite_url: str, workdir: Path, name: str, data: st.DataObject
) -> None:
    args, stdin = data.draw(COMMANDS[name])
    before = db_state(sqlite_url)
    result = CliRunner().invoke(
        main,
        ["--database-url", sqlite_url, *args],
        input=None if stdin is None else stdin + "\n",
    )
    shown: Any = (args, result.output[-2000:])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        shown,
        repr(result.exception),
    )
    assert "Traceback" not in result.output, shown
    assert result.exit_code in (0, 1, 2), shown
    if result.exit_code != 0:
        assert db_state(sqlite_url) == before, shown


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tail=hostile)
def test_hostile_database_paths_are_one_line(workdir: Path, tail: str) -> None:
    result = CliRunner().invoke(main, ["--database-url", f"sqlite:///{workdir}/{tail}", "status"])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        tail,
        repr(result.exception),
    )
    assert result.exit_code in (0, 1, 2), (tail, result.output)
