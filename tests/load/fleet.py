"""A fleet of real ``metrics-toolkit collect`` processes, for the load and fault suites.

Each member is one collector process with its own host label, spool file and log, started
through the installed console script exactly as a user would start it. The fleet starts
them all, waits until each says it is collecting (its ``-v`` log), runs for a while, stops
them with SIGTERM and reaps each with ``os.wait4``, which also gives the CPU time the
process used over its whole life (start-up included). Between :meth:`Fleet.mark` calls,
psutil reads the CPU time of the running processes: the steady-state cost of collecting.

What a member says it did comes from its exit line (``Collected N snapshot(s); wrote ...``):
``ticks`` is the number of snapshots it took, which is what the database must hold for its
host, once each.

Every member also gets ``--duration`` (the planned run plus a margin) so that a harness that
dies cannot leave collectors running; :meth:`Fleet.close` SIGKILLs any member still alive.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import psutil

#: The console script of the venv that runs the tests.
CLI = str(Path(sys.executable).with_name("metrics-toolkit"))

#: Every collector but ``processes``: that one walks every process of the machine each tick
#: (about 10 ms of CPU with a quiet machine, several times more with 50 collectors and their
#: PostgreSQL backends running), so 50 copies of it would measure ``/proc``, not the toolkit.
#: The rest together cost about 1 ms of CPU per tick and give a ~2 kB document.
LIGHT_COLLECTORS = "cpu,memory,disk,diskio,network,sensors,system"

READY_LINE = "Collecting every"
_SUMMARY = re.compile(
    r"Collected (?P<ticks>\d+) snapshot\(s\); wrote (?P<inserted>\d+) "
    r"\((?P<duplicates>\d+) already stored\); (?P<left>\d+) left in the spool"
    r"(?:; (?P<skipped>\d+) slot\(s\) skipped)?"
    r"(?:; (?P<dropped>\d+) dropped \(spool full\))?"
)


@dataclass(frozen=True)
class Summary:
    """A collector's exit line, parsed."""

    ticks: int
    inserted: int
    duplicates: int
    left_in_spool: int
    skipped_slots: int
    dropped: int

    @classmethod
    def parse(cls, text: str) -> Summary | None:
        """The last summary line in ``text``; None when there is none (the process died)."""
        found = list(_SUMMARY.finditer(text))
        if not found:
            return None
        match = found[-1]
        return cls(
            ticks=int(match["ticks"]),
            inserted=int(match["inserted"]),
            duplicates=int(match["duplicates"]),
            left_in_spool=int(match["left"]),
            skipped_slots=int(match["skipped"] or 0),
            dropped=int(match["dropped"] or 0),
        )


@dataclass(frozen=True)
class FleetConfig:
    """How to run the fleet: ``size`` collectors named ``<prefix>-000``... into one database."""

    database_url: str
    workdir: Path
    size: int
    interval: str = "1s"
    collectors: str = LIGHT_COLLECTORS
    host_prefix: str = "load"
    batch_size: int | None = None
    #: Upper bound of the run (each member's ``--duration``), a safety net only.
    max_seconds: float = 600.0
    extra_env: Mapping[str, str] = field(default_factory=dict)

    def hosts(self) -> list[str]:
        return [f"{self.host_prefix}-{index:03d}" for index in range(self.size)]


@dataclass
class MemberResult:
    """What one collector did, as it said on exit, and what it cost."""

    host: str
    returncode: int
    summary: Summary | None
    cpu_seconds: float  # user + system over the process's whole life (os.wait4)
    stdout: str
    stderr: str

    @property
    def ticks(self) -> int:
        return self.summary.ticks if self.summary else 0


class Member:
    """One ``metrics-toolkit collect`` process."""

    def __init__(self, config: FleetConfig, host: str) -> None:
        self.config = config
        self.host = host
        self.directory = config.workdir / host
        self.spool = self.directory / "spool.db"
        self.stdout_path = self.directory / "stdout.log"
        self.stderr_path = self.directory / "stderr.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.result: MemberResult | None = None

    def command(self) -> list[str]:
        config = self.config
        command = [
            CLI,
            "-v",
            "--database-url",
            config.database_url,
            "collect",
            "--interval",
            config.interval,
            "--host",
            self.host,
            "--spool",
            str(self.spool),
            "--collectors",
            config.collectors,
            "--duration",
            f"{int(config.max_seconds)}s",
        ]
        if config.batch_size is not None:
            command += ["--batch-size", str(config.batch_size)]
        return command

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.result = None
        env = {**os.environ, **self.config.extra_env}
        env.pop("METRICS_TOOLKIT_DATABASE_URL", None)  # --database-url decides
        with self.stdout_path.open("ab") as out, self.stderr_path.open("ab") as err:
            self.process = subprocess.Popen(
                self.command(), stdout=out, stderr=err, env=env, start_new_session=True
            )

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def ready(self) -> bool:
        """True once the daemon logged that it collects (settings read, spool open)."""
        return self.stderr_path.exists() and READY_LINE in self.stderr_path.read_text("utf-8")

    def cpu_seconds(self) -> float:
        """User + system CPU time so far (psutil); 0 when the process is gone."""
        try:
            times = psutil.Process(self.pid).cpu_times()
        except psutil.Error:
            return 0.0
        return float(times.user + times.system)

    def signal(self, signum: int) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def reap(self, timeout: float) -> MemberResult:
        """Wait for the process to end (SIGKILL after ``timeout``) and read what it said."""
        assert self.process is not None, "not started"
        deadline = time.monotonic() + timeout
        cpu = 0.0
        while self.process.returncode is None:
            pid, status, usage = os.wait4(self.pid, os.WNOHANG)
            if pid:
                self.process.returncode = os.waitstatus_to_exitcode(status)
                cpu = usage.ru_utime + usage.ru_stime
                break
            if time.monotonic() > deadline:
                self.signal(signal.SIGKILL)
                deadline = time.monotonic() + 10
            time.sleep(0.05)
        stdout = self.stdout_path.read_text("utf-8", errors="replace")
        stderr = self.stderr_path.read_text("utf-8", errors="replace")
        self.result = MemberResult(
            self.host, self.process.returncode, Summary.parse(stdout), cpu, stdout, stderr
        )
        return self.result


@dataclass
class FleetResult:
    """The members' results plus the CPU they used between the two :meth:`Fleet.mark` calls."""

    members: list[MemberResult]
    window_seconds: float
    window_cpu_seconds: list[float]

    def by_host(self) -> dict[str, MemberResult]:
        return {member.host: member for member in self.members}

    @property
    def expected(self) -> dict[str, int]:
        """Snapshots each host's collector says it took."""
        return {member.host: member.ticks for member in self.members}

    def cpu_percent_per_collector(self) -> float:
        """Mean steady-state CPU of one collector, in percent of one core."""
        if not self.window_cpu_seconds or self.window_seconds <= 0:
            return 0.0
        mean = sum(self.window_cpu_seconds) / len(self.window_cpu_seconds)
        return 100.0 * mean / self.window_seconds

    def failures(self) -> list[str]:
        """One line per member that did not exit 0 with an empty spool."""
        lines = []
        for member in self.members:
            summary = member.summary
            if member.returncode != 0 or summary is None:
                tail = " | ".join(member.stderr.strip().splitlines()[-3:])
                lines.append(f"{member.host}: exit {member.returncode}, no summary; {tail}")
            elif summary.left_in_spool or summary.dropped:
                lines.append(f"{member.host}: {summary}")
        return lines


class Fleet:
    """Start, watch and stop the members of a :class:`FleetConfig` (a context manager)."""

    def __init__(self, config: FleetConfig) -> None:
        self.config = config
        self.members = [Member(config, host) for host in config.hosts()]
        self._mark: tuple[float, list[float]] | None = None
        self._window: tuple[float, list[float]] | None = None
        self.start_seconds = 0.0  # from the first start to every member collecting

    def __enter__(self) -> Fleet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def start(self, ready_timeout: float = 180.0) -> float:
        """Start every member and wait until all are collecting; returns the seconds it took."""
        began = time.monotonic()
        for member in self.members:
            member.start()
        waiting = list(self.members)
        while waiting:
            waiting = [m for m in waiting if not m.ready()]
            dead = [m for m in waiting if m.process is not None and m.process.poll() is not None]
            if dead:
                tail = dead[0].stderr_path.read_text("utf-8", errors="replace")[-500:]
                msg = f"collector {dead[0].host} exited before collecting: {tail}"
                raise RuntimeError(msg)
            if time.monotonic() - began > ready_timeout:
                msg = f"{len(waiting)} collector(s) not collecting after {ready_timeout:.0f} s"
                raise RuntimeError(msg)
            time.sleep(0.2)
        self.start_seconds = time.monotonic() - began
        return self.start_seconds

    def mark(self) -> None:
        """Start (first call) or end (second call) the CPU measurement window."""
        sample = (time.monotonic(), [m.cpu_seconds() for m in self.members])
        if self._mark is None:
            self._mark = sample
        else:
            self._window = sample

    def stop(self, timeout: float = 60.0) -> FleetResult:
        """SIGTERM every member, then reap each; SIGKILL those not done within ``timeout``."""
        if self._mark is not None and self._window is None:
            self.mark()
        for member in self.members:
            member.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        results = [m.reap(max(1.0, deadline - time.monotonic())) for m in self.members]
        window_seconds = 0.0
        window_cpu: list[float] = []
        if self._mark is not None and self._window is not None:
            window_seconds = self._window[0] - self._mark[0]
            window_cpu = [b - a for a, b in zip(self._mark[1], self._window[1], strict=True)]
        return FleetResult(results, window_seconds, window_cpu)

    def close(self) -> None:
        """SIGKILL and reap members still running (after a failure)."""
        for member in self.members:
            if member.alive():
                member.signal(signal.SIGKILL)
                member.reap(10.0)

    def pids(self) -> Sequence[int]:
        return [m.pid for m in self.members if m.alive()]


@contextlib.contextmanager
def running(config: FleetConfig, ready_timeout: float = 180.0) -> Iterator[Fleet]:
    """A started :class:`Fleet`, killed on the way out if the block did not stop it."""
    fleet = Fleet(config)
    try:
        fleet.start(ready_timeout)
        yield fleet
    finally:
        fleet.close()
