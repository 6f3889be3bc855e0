"""The explorer's login in a real browser (issue 8): headless Chromium through Playwright.

One explorer process, one browser, in this order (the lockout comes last, since it also
locks the browser's address out for five minutes):

1. before login: the login form only, on any path; no media file is served;
2. log in, download the CSV: its URL works while the session shows it;
3. log out: the login form; a reload still shows it; the CSV's URL is gone (404);
4. five wrong passwords: each answer the same as for an unknown name, then a lockout that
   even the right password cannot pass.
"""

from __future__ import annotations

import secrets
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from metrics_toolkit.explorer.auth import MAX_FAILURES, WRONG_CREDENTIALS
from tests.test_browser import CHART, chromium, launch  # noqa: F401 - the fixture
from tests.test_explorer_cli import free_port, start_explorer, stop
from tests.test_explorer_support import PASSWORD, USER, fill

pytestmark = pytest.mark.browser
TIMEOUT = 60_000
IDLE = """() => !document.querySelector("[data-testid='stStatusWidgetRunningIcon']")
    && !document.querySelector("[data-stale='true']")"""


def _status(url: str) -> int:
    """The HTTP status of a plain GET with no cookie and no session (a stranger's request)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def _login_form_only(page: Any) -> None:
    page.get_by_role("textbox", name="Username").wait_for(timeout=TIMEOUT)
    page.get_by_role("button", name="Log in").wait_for(timeout=TIMEOUT)
    page.wait_for_timeout(500)
    page.wait_for_function(IDLE, timeout=TIMEOUT)  # the whole run is drawn
    assert page.get_by_role("textbox", name="Password").count() == 1
    assert page.locator("[data-testid='stVegaLiteChart']").count() == 0
    assert page.locator("[data-testid='stDownloadButton']").count() == 0
    assert page.locator("[data-testid='stDataFrame']").count() == 0
    assert page.get_by_text("Log out").count() == 0
    assert page.locator("[data-testid='stException']").count() == 0


def _submit(page: Any, username: str, password: str) -> None:
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def _answer(page: Any) -> str:
    """The login form's message after a submit, once the rerun has finished.

    The app waits up to a second before answering a wrong login, so give the rerun that
    long to start, then wait until Streamlit shows no running icon and no stale element.
    """
    page.wait_for_timeout(1800)
    page.wait_for_function(IDLE, timeout=TIMEOUT)
    alert = page.locator("[data-testid='stAlertContentError']")
    alert.first.wait_for(timeout=TIMEOUT)
    return str(alert.first.inner_text()).strip()


def test_login_logout_downloads_and_lockout_in_a_real_browser(
    chromium: Path,  # noqa: F811 - the fixture from test_browser
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    fill(sqlite_url, days=1, interval="5min")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_explorer(sqlite_url, port)
    try:
        with sync_api.sync_playwright() as playwright:
            browser = launch(playwright, chromium)
            try:
                context = browser.new_context(accept_downloads=True)
                page = context.new_page()
                # 1. before login, on any path
                for path in ("/", "/Admin", "/?page=Admin"):
                    page.goto(base + path, timeout=TIMEOUT)
                    _login_form_only(page)
                assert _status(f"{base}/media/{secrets.token_hex(28)}.csv") == 404

                # 2. log in (on the explorer: a link with page=Admin opens that page for an
                # admin, see test_browser) and download the CSV
                page.goto(base + "/", timeout=TIMEOUT)
                _submit(page, USER, PASSWORD)
                page.wait_for_selector(CHART, timeout=TIMEOUT)
                with page.expect_download(timeout=TIMEOUT) as info:
                    page.get_by_role("button", name="Download CSV").click()
                download = info.value
                media = download.url
                saved = tmp_path / "frame.csv"
                download.save_as(saved)
                assert saved.read_text().startswith(("timestamp", "host"))
                assert media.startswith(f"{base}/media/")
                assert _status(media) == 200  # a capability URL, while the session shows it

                # 3. log out: the form, after a reload too; the CSV is no longer served
                page.get_by_role("button", name="Log out").click()
                page.get_by_role("textbox", name="Username").wait_for(timeout=TIMEOUT)
                _login_form_only(page)
                page.reload(timeout=TIMEOUT)
                _login_form_only(page)
                assert _status(media) == 404, media

                # 4. wrong passwords: no hint which part was wrong, then a lockout
                stranger = context.new_page()
                stranger.goto(base, timeout=TIMEOUT)
                _submit(stranger, "nobody-by-this-name", "guess")
                assert _answer(stranger) == WRONG_CREDENTIALS
                stranger.close()
                page.reload(timeout=TIMEOUT)
                answers: list[str] = []
                while len(answers) < MAX_FAILURES and "Too many" not in "".join(answers):
                    _submit(page, USER, "guess")
                    answers.append(_answer(page))
                assert answers[:-1] == [WRONG_CREDENTIALS] * (len(answers) - 1), answers
                assert answers[-1].startswith(WRONG_CREDENTIALS), answers
                assert "Too many failed logins" in answers[-1], answers
                page.reload(timeout=TIMEOUT)
                _submit(page, USER, PASSWORD)  # the right password, while locked out
                assert _answer(page).startswith("Too many failed logins")
                _login_form_only(page)
            finally:
                browser.close()
    finally:
        assert stop(server) == 0
