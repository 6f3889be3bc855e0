"""A private PostgreSQL cluster that a test may stop, restart and kill.

The shared server on port 5432 serves other people and must never be stopped; fault tests
create their own cluster with ``initdb`` in a temporary directory, on a free port, and
control it with ``pg_ctl``. ``initdb`` refuses to run as root, so as root every command
runs as the ``postgres`` OS user (``runuser``); the directory is given to that user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tests.conftest import recreate_database

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
OS_USER = "postgres"


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding initdb and pg_ctl."""
    candidates = [
        Path(found)
        for found in glob.glob(PG_BIN_GLOB)
        if Path(found, "initdb").exists() and Path(found, "pg_ctl").exists()
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda path: int(path.parent.name.split(".")[0]))


def missing_reason() -> str | None:
    """Why a private cluster cannot be made here, or None when it can."""
    if find_bindir() is None:
        return f"PostgreSQL server binaries not found ({PG_BIN_GLOB}/initdb, pg_ctl)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(OS_USER)
        except KeyError:
            return f"running as root and there is no {OS_USER!r} OS user to run initdb as"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing (initdb refuses root)"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateCluster:
    """``initdb`` + ``pg_ctl`` on a free port; trust authentication, user ``postgres``."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="mt-faults-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self._as_root = os.geteuid() == 0
        if self._as_root:
            user = pwd.getpwnam(OS_USER)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self.root.chmod(0o700)

    # --- commands -----------------------------------------------------------------------

    def _run(self, program: str, *args: str, timeout: float = 120) -> str:
        command: Sequence[str] = [str(self.bindir / program), *args]
        if self._as_root:
            command = ["runuser", "-u", OS_USER, "--", *command]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=self.root, check=False
        )
        if done.returncode != 0:
            msg = f"{program} {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}"
            raise RuntimeError(msg)
        return done.stdout

    def init(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        )
        settings = (
            f"port = {self.port}\n"
            "listen_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{self.root}'\n"
            "fsync = off\n"  # a test cluster: speed over crash safety of the server itself
            "max_connections = 100\n"
            "shared_buffers = 32MB\n"
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(settings)

    def _ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", *args)

    def start(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        self._ctl("stop", "-m", "fast")

    def restart(self) -> None:
        self._ctl("restart", "-m", "fast")

    def is_running(self) -> bool:
        try:
            self._run("pg_ctl", "-D", str(self.data), "status")
        except RuntimeError:
            return False
        return True

    # --- databases ----------------------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def recreate_database(self, name: str) -> str:
        """Drop and create ``name``; its URL."""
        recreate_database(self.url(name))
        return self.url(name)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def destroy(self) -> None:
        if self.data.exists() and self.is_running():
            self._run("pg_ctl", "-D", str(self.data), "stop", "-m", "immediate")
        shutil.rmtree(self.root, ignore_errors=True)
