"""Helpers of the fault suite: collector processes, spool and database read-outs."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from metrics_toolkit.store.db import make_engine
from metrics_toolkit.store.models import MetricsSnapshot

Identity = tuple[str, datetime]  # (host, timestamp): one snapshot (metric_type is constant)
_COLLECTED = re.compile(
    r"Collected (?P<ticks>\d+) snapshot\(s\); wrote (?P<inserted>\d+) \((?P<dups>\d+) already "
    r"stored\); (?P<left>\d+) left in the spool(?:; (?P<skipped>\d+) slot\(s\) skipped)?"
)


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "metrics_toolkit", *args]


@dataclass
class Collector:
    """One ``metrics-toolkit collect`` process with its own host label and spool."""

    url: str
    host: str
    spool: Path
    interval: str = "1s"
    extra: tuple[str, ...] = ()
    env: Mapping[str, str] | None = None
    verbose: bool = False  # -v: INFO lines too (the repeated "still failing" ones)
    process: subprocess.Popen[str] | None = None
    out: str = ""
    err: str = ""
    log_path: Path | None = field(default=None, init=False)

    def start(self) -> Collector:
        self.log_path = self.spool.with_suffix(".log")
        args = ("--database-url", self.url, *(["-v"] if self.verbose else []))
        args += ("collect", "--interval", self.interval)
        own = ("--host", self.host, "--spool", str(self.spool), "--collectors", "cpu,memory")
        self._stderr = self.log_path.open("w")
        self.process = subprocess.Popen(
            cli(*args, *own, *self.extra),
            cwd=self.spool.parent,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env={**os.environ, **(self.env or {})},
        )
        return self

    def log(self) -> str:
        assert self.log_path is not None
        return self.log_path.read_text()

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, wait; the exit code (stdout and the log kept in ``out``/``err``)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float = 60) -> int:
        assert self.process is not None
        self.out, _ = self.process.communicate(timeout=timeout)
        self._stderr.close()
        self.err = self.log()
        return int(self.process.returncode)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.wait()

    def summary(self) -> dict[str, int]:
        """The counts of the final ``Collected N snapshot(s); wrote ...`` line."""
        match = _COLLECTED.search(self.out)
        assert match, f"no summary line in {self.out!r} / {self.err[-2000:]!r}"
        return {key: int(value or 0) for key, value in match.groupdict().items()}


def spool_depth(path: Path) -> int:
    """Rows waiting in a spool that a live daemon may own (read-only peek; -1 if unreadable)."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as connection:
            return int(connection.execute("SELECT count(*) FROM spool").fetchone()[0])
    except sqlite3.Error:
        return -1


def spool_identities(path: Path) -> list[Identity]:
    """(host, timestamp) of every row in a spool file nobody owns now."""
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT timestamp, metric_data FROM spool ORDER BY id").fetchall()
    connection.close()
    return [
        (json.loads(doc)["host"], datetime.fromisoformat(ts).astimezone(UTC)) for ts, doc in rows
    ]


def stored_documents(url: str) -> list[tuple[datetime, dict[str, Any]]]:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            stmt = select(MetricsSnapshot.timestamp, MetricsSnapshot.metric_data).order_by(
                MetricsSnapshot.timestamp, MetricsSnapshot.id
            )
            return [(ts, doc) for ts, doc in session.execute(stmt)]
    finally:
        engine.dispose()


def stored_identities(url: str) -> list[Identity]:
    """(host, timestamp) of every raw (not rolled-up) snapshot in the database."""
    return [(doc["host"], ts) for ts, doc in stored_documents(url) if "_rollup" not in doc]


def doubled(identities: list[Identity]) -> list[Identity]:
    return [key for key, n in Counter(identities).items() if n > 1]


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll until ``condition()``; the seconds it took. Fails after ``timeout``."""
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < timeout, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.1)
    return time.monotonic() - began


FIGURES_ENV = "METRICS_TOOLKIT_FAULT_FIGURES"


def record_figures(test: str, **values: Any) -> None:
    """Append measured figures as one JSON line to the file named by
    ``METRICS_TOOLKIT_FAULT_FIGURES`` (when set): the numbers the closing note quotes."""
    target = os.environ.get(FIGURES_ENV)
    if not target:
        return
    with Path(target).open("a") as handle:
        handle.write(json.dumps({"test": test, **values}, default=str) + "\n")


def stored_count(url: str) -> int:
    """Rows in the snapshot table (0 while it cannot be read)."""
    from sqlalchemy import func

    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return int(session.scalar(select(func.count(MetricsSnapshot.id))) or 0)
    except Exception:  # a server restarting, a schema not there yet
        return 0
    finally:
        engine.dispose()
