"""The explorer in a real browser: headless Chromium logs in and waits for the charts.

Starts ``metrics-toolkit explore`` on a free port against a small generated SQLite
database, logs in through the form with Playwright driving ``/usr/bin/chromium``, waits
for the charts, and saves a screenshot (also copied to /tmp/explorer-screenshot.png for
people to look at). Fails if the login or the charts do not appear.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.test_explorer_cli import free_port, start_explorer, stop
from tests.test_explorer_support import PASSWORD, USER, fill

CHROMIUM = Path("/usr/bin/chromium")
SHARED_SCREENSHOT = Path("/tmp/explorer-screenshot.png")
CHART = "[data-testid='stVegaLiteChart'] canvas, [data-testid='stVegaLiteChart'] svg"

pytestmark = pytest.mark.browser


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: install Debian's chromium (see .ci/run)."
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


def test_login_and_charts_in_a_real_browser(
    chromium: Path, sqlite_url: str, tmp_path: Path
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    fill(sqlite_url, days=2, interval="5min")
    port = free_port()
    server = start_explorer(sqlite_url, port)
    screenshot = tmp_path / "explorer.png"
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(chromium),
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1300})
                page.goto(f"http://127.0.0.1:{port}/", timeout=60_000)
                page.get_by_role("textbox", name="Username").fill(USER, timeout=60_000)
                page.get_by_role("textbox", name="Password").fill(PASSWORD)
                page.get_by_role("button", name="Log in").click()
                page.wait_for_selector(CHART, timeout=60_000)
                page.get_by_text("Summary", exact=True).wait_for(timeout=30_000)
                page.wait_for_timeout(1500)  # let Vega finish drawing before the picture
                page.screenshot(path=str(screenshot))
                assert page.get_by_text(f"Logged in as {USER}").count() == 1
                assert page.locator("[data-testid='stVegaLiteChart']").count() >= 1
                assert page.get_by_text("Wrong username or password").count() == 0
                assert page.locator("[data-testid='stException']").count() == 0
            finally:
                browser.close()
    finally:
        assert stop(server) == 0
    assert screenshot.stat().st_size > 20_000  # a drawn page, not a blank one
    shutil.copyfile(screenshot, SHARED_SCREENSHOT)
