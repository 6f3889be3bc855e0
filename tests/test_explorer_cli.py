"""``metrics-toolkit explore``: a real Streamlit server started and stopped by the command."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from metrics_toolkit.cli import main
from metrics_toolkit.explorer import launch
from tests.test_explorer_support import fill

STARTUP_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_healthy(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            pytest.fail(f"explore exited with {process.returncode}: {output}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    pytest.fail(f"the explorer did not answer on port {port} within {STARTUP_SECONDS} s")


def start_explorer(url: str, port: int) -> subprocess.Popen[bytes]:
    """`metrics-toolkit --database-url URL explore` as a real process (also for the browser)."""
    command = [sys.executable, "-m", "metrics_toolkit", "--database-url", url]
    command += ["explore", "--port", str(port), "--headless"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("METRICS_TOOLKIT_DATABASE")}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    wait_healthy(port, process)
    return process


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def watches(pid: int) -> list[str]:
    """The inotify handles a process holds (Streamlit's file watcher opens one per server as
    soon as a browser session runs the page)."""
    found = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if "inotify" in target:
            found.append(target)
    return found


def test_explore_serves_the_app_and_stops_with_its_streamlit(sqlite_url: str) -> None:
    fill(sqlite_url, days=1, interval="15min")
    port = free_port()
    process = start_explorer(sqlite_url, port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert response.status == 200
        (child,) = psutil.Process(process.pid).children()
        assert child.cmdline()[1:4] == ["-m", "streamlit", "run"]
        assert child.cmdline()[4] == str(launch.app_path())
        assert not any("metrics.db" in part for part in child.cmdline())  # URL not on argv
        database = sqlite_url.removeprefix("sqlite:///")
        assert child.environ()["METRICS_TOOLKIT_DATABASE_URL"] == f"sqlite:///{database}"
        # Served as a product: no file watcher (see test_browser: no inotify handle once a
        # session runs the page), no developer menu.
        options = " ".join(child.cmdline())
        assert "--server.fileWatcherType none" in options
        assert "--client.toolbarMode viewer" in options
    finally:
        code = stop(process)
    assert code == 0
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_explore_refuses_a_missing_database_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "none" / "metrics.db"
    result = CliRunner().invoke(main, ["--database-url", f"sqlite:///{missing}", "explore"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "does not exist" in lines[0]
    assert not missing.parent.exists()
