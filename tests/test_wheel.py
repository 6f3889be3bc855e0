"""The built wheel, installed alone into a fresh virtualenv, is a working metrics-toolkit.

Nothing of the checkout is visible to the installed copy: the wheel is built from a copy of
the sources, the virtualenv lives in ``tmp_path`` and the commands run there with no
``PYTHONPATH``. pip resolves every dependency from what ``pyproject.toml`` declares (its
cache makes a repeated run fast), so a missing runtime dependency fails here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.test_explorer_cli import free_port, stop, wait_healthy

REPO = Path(__file__).resolve().parents[1]
INSTALL_SECONDS = 900


def run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=INSTALL_SECONDS
    )
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def clean_environment() -> dict[str, str]:
    """This process's environment without anything pointing at the checkout or a database."""
    return {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "VIRTUAL_ENV"} and not key.startswith("METRICS_TOOLKIT")
    }


def build_wheel(tmp_path: Path, env: dict[str, str]) -> Path:
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(
        REPO / "metrics_toolkit",
        source / "metrics_toolkit",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    dist = tmp_path / "dist"
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(source)],
        tmp_path,
        env,
    )
    (wheel,) = dist.glob("metrics_toolkit-*.whl")
    return wheel


@pytest.mark.slow
@pytest.mark.timeout(INSTALL_SECONDS * 2)
def test_the_wheel_installs_and_serves_the_explorer(tmp_path: Path) -> None:
    env = clean_environment()
    wheel = build_wheel(tmp_path, env)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert "metrics_toolkit/explorer/app.py" in names
    assert "metrics_toolkit/store/migrations/env.py" in names
    assert "metrics_toolkit/store/migrations/script.py.mako" in names
    assert {n for n in names if n.startswith("metrics_toolkit/store/migrations/versions/0")}

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    python = venv / "bin" / "python"
    run([str(python), "-m", "pip", "install", "-q", str(wheel)], tmp_path, env)
    installed = run(
        [str(python), "-c", "import metrics_toolkit; print(metrics_toolkit.__file__)"],
        tmp_path,
        env,
    )
    assert Path(installed.strip()).is_relative_to(venv), installed

    command = str(venv / "bin" / "metrics-toolkit")
    database = f"sqlite:///{tmp_path / 'fresh' / 'metrics.db'}"
    run([command, "--database-url", database, "db", "upgrade"], tmp_path, env)
    port = free_port()
    process = subprocess.Popen(
        [command, "--database-url", database, "explore", "--port", str(port), "--headless"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_healthy(port, process)
    finally:
        code = stop(process)
    assert code == 0
