"""The explorer's login under attack (issue 8), driven by AppTest on a real SQLite database.

Complements ``tests/test_explorer_app.py`` (wrong name vs wrong password, lockout, logout):
the lockout must look the same for names that do not exist, an unknown name must cost a
password check too (no timing hint), nothing the session may hold unlocks a page before
login, and logging out forgets everything the session held.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from metrics_toolkit.explorer.auth import (
    MAX_FAILURES,
    WRONG_CREDENTIALS,
    LoginThrottle,
    attempt_login,
)
from metrics_toolkit.store.db import make_engine
from tests.test_explorer_support import PASSWORD, USER, fill

APP = Path(__file__).resolve().parent.parent / "streamlit_app.py"


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    st.cache_data.clear()
    st.cache_resource.clear()  # the login throttle lives there
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def filled_url(sqlite_url: str) -> str:
    fill(sqlite_url, days=1)
    return sqlite_url


def _app(url: str, monkeypatch: pytest.MonkeyPatch, **state: Any) -> AppTest:
    monkeypatch.setenv("METRICS_TOOLKIT_DATABASE_URL", url)
    at = AppTest.from_file(str(APP), default_timeout=60)
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def _log_in(at: AppTest, username: str, password: str) -> AppTest:
    next(f for f in at.text_input if f.label == "Username").set_value(username)
    next(f for f in at.text_input if f.label == "Password").set_value(password)
    next(b for b in at.button if b.label == "Log in").click()
    return at.run()


def _only_the_login_form(at: AppTest) -> None:
    assert not at.exception
    assert [f.label for f in at.text_input] == ["Username", "Password"]
    assert [b.label for b in at.button] == ["Log in"]
    for kind in ("vega_lite_chart", "dataframe", "download_button", "json", "subheader"):
        assert not list(at.get(kind)), kind
    assert not list(at.sidebar.radio) and not list(at.sidebar.multiselect)
    assert not [t for t in at.title if t.value != "metrics-toolkit explorer"]


def _errors(at: AppTest) -> list[str]:
    return [str(e.value) for e in at.error]


def test_a_lockout_looks_the_same_for_names_that_do_not_exist(
    filled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, list[list[str]]] = {}
    for name in (USER, "nobody-by-this-name"):
        st.cache_resource.clear()  # a fresh throttle for each series
        at = _app(filled_url, monkeypatch)
        seen[name] = [_errors(_log_in(at, name, "guess")) for _ in range(MAX_FAILURES + 1)]
        _only_the_login_form(at)
    known, unknown = seen[USER], seen["nobody-by-this-name"]
    assert known == unknown
    assert known[0] == [WRONG_CREDENTIALS]
    assert "Too many failed logins" in known[MAX_FAILURES - 1][0]
    assert known[MAX_FAILURES][0].startswith("Too many failed logins")  # not even checked


def test_an_unknown_name_costs_a_password_check_too(filled_url: str) -> None:
    engine = make_engine(filled_url)
    slept: list[float] = []

    def timed(name: str) -> float:
        throttle = LoginThrottle()  # no lockout across samples
        started = time.perf_counter()
        outcome = attempt_login(
            engine=engine, throttle=throttle, username=name, password="guess", sleep=slept.append
        )
        assert outcome.message == WRONG_CREDENTIALS
        return time.perf_counter() - started

    try:
        timed(USER)  # warm the connection pool
        known = statistics.median(timed(USER) for _ in range(3))
        unknown = statistics.median(timed("nobody") for _ in range(3))
    finally:
        engine.dispose()
    assert set(slept) == {LoginThrottle().delay_step}  # the same delay for both
    # bcrypt runs against a dummy hash for unknown names: both take a hash's time
    assert unknown > 0.4 * known and known > 0.4 * unknown, (known, unknown)


@pytest.mark.parametrize(
    "state",
    [
        {"page": "Admin"},
        {"user": ""},
        {"user": None},
        {"user": ["alice"]},
        {"metrics": ["cpu.usage_percent"], "areas": ["cpu"], "hosts": ["web-1"]},
        {"plan": ({"now": 0}, None), "report": (None, None), "raw_limit": 20},
    ],
    ids=["admin-page", "empty-user", "none-user", "list-user", "selection", "stored-results"],
)
def test_no_page_opens_without_login_whatever_the_session_holds(
    filled_url: str, monkeypatch: pytest.MonkeyPatch, state: dict[str, Any]
) -> None:
    _only_the_login_form(_app(filled_url, monkeypatch, **state))


def test_logout_forgets_everything_and_the_pages_close(
    filled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _log_in(_app(filled_url, monkeypatch), USER, PASSWORD)
    assert list(at.get("vega_lite_chart"))
    at.sidebar.radio(key="page").set_value("Admin").run()
    assert "Archive policy" in [s.value for s in at.subheader]
    next(b for b in at.button if b.label == "Log out").click()
    at.run()
    _only_the_login_form(at)
    assert "user" not in at.session_state
    for key in ("page", "metrics", "hosts", "report", "plan"):
        assert key not in at.session_state, key
    # asking for the admin page again, without logging in, still shows the login form
    at.session_state["page"] = "Admin"
    _only_the_login_form(at.run())
