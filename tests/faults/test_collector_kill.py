"""A collector killed with SIGKILL mid-batch, then restarted on the same spool (issue #8).

The collector starts with a large backlog in its spool (as after a long outage) and is
killed while it replays it: once at a fault point (a batch committed to the database but
not yet acked in the spool: ``METRICS_TOOLKIT_SPOOL_FAULT``), and once at random moments.
Restarted on the same spool it loses nothing beyond the tick in flight at the kill (a tick
is durable once in the spool) and doubles nothing.
"""

from __future__ import annotations

import os
import random
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import pairwise
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from metrics_toolkit.archive.runner import run_archive
from metrics_toolkit.collect.spool import FAULT_ENV, Spool
from metrics_toolkit.store.db import make_engine
from metrics_toolkit.store.policies import update_policy
from tests.conftest import empty_postgres
from tests.faults.support import (
    Collector,
    Identity,
    doubled,
    record_figures,
    spool_identities,
    stored_count,
    stored_documents,
    stored_identities,
    wait_for,
)

pytestmark = pytest.mark.slow

HOST = "killed"
BACKLOG_START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
SEED = int(os.environ.get("METRICS_TOOLKIT_FAULT_SEED", str(random.randrange(10**6))))


def fill_backlog(path: Path, count: int) -> set[Identity]:
    """``count`` snapshots of HOST, one a second from a day ago, waiting in the spool."""
    rows = [
        (
            BACKLOG_START + timedelta(seconds=i),
            "aggregated",
            {"host": HOST, "cpu": {"usage_percent": i % 100}, "backlog": {"seq": i}},
        )
        for i in range(count)
    ]
    with Spool(path) as spool:
        for start in range(0, count, 5000):
            spool.append(rows[start : start + 5000])
    return {(HOST, ts) for ts, _, _ in rows}


def ticks_of(identities: set[Identity]) -> list[datetime]:
    return sorted(ts for host, ts in identities if ts > BACKLOG_START + timedelta(hours=12))


def reached(url: str, rows: int) -> bool:
    return stored_count(url) >= rows


def check_after_restart(
    url: str, before: set[Identity], backlog: set[Identity], restarted: Collector
) -> list[Identity]:
    """Everything spooled or stored at the kill is stored exactly once after the restart."""
    assert backlog <= before, "the kill lost backlog rows"
    after = stored_identities(url)
    assert not doubled(after), "a snapshot was stored twice"
    summary = restarted.summary()
    assert summary["left"] == 0
    assert set(after) >= before
    assert len(after) == len(before) + summary["ticks"]
    assert len(ticks_of(set(after))) == len(ticks_of(before)) + summary["ticks"]
    return after


@pytest.mark.parametrize("batch", [5])
def test_killed_after_a_batch_committed_before_its_ack(
    db_url: str, tmp_path: Path, batch: int
) -> None:
    spool = tmp_path / "spool.db"
    backlog = fill_backlog(spool, 4000)
    first = Collector(
        db_url,
        HOST,
        spool,
        extra=("--batch-size", "250"),
        env={FAULT_ENV: f"after_write@{batch}"},
    ).start()
    assert first.wait(timeout=120) == -9, first.err
    before = set(stored_identities(db_url))
    assert len(before) == batch * 250  # the batch in flight is stored, not acked
    waiting = spool_identities(spool)
    own = ticks_of(set(waiting))  # ticks taken before the kill wait behind the backlog
    assert len(waiting) == 4000 - (batch - 1) * 250 + len(own)
    assert [b - a for a, b in pairwise(own)] == [timedelta(seconds=1)] * (len(own) - 1)
    restarted = Collector(db_url, HOST, spool, extra=("--count", "2", "--batch-size", "250"))
    assert restarted.start().wait(timeout=120) == 0, restarted.err
    check_after_restart(db_url, before | set(waiting), backlog, restarted)
    # The unacked batch was written again and skipped as already stored: counted, not doubled.
    assert f"({250} were already stored)" in restarted.err, restarted.err
    assert "Traceback" not in first.err + restarted.err


@pytest.mark.postgres
def test_killed_at_random_moments_while_replaying(postgres_url: str, tmp_path: Path) -> None:
    empty_postgres(postgres_url)
    rng = random.Random(SEED)
    spool = tmp_path / "spool.db"
    backlog = fill_backlog(spool, 30_000)
    kills = []
    for round_ in range(3):
        member = Collector(postgres_url, HOST, spool, extra=("--batch-size", "100")).start()
        # Kill at a random point of the replay: after a random number of further rows.
        done_before = stored_count(postgres_url)
        target = done_before + rng.randrange(200, max(201, (len(backlog) - done_before) // 2))
        wait_for(partial(reached, postgres_url, target), 60, "the replay")
        member.kill()
        assert member.process is not None and member.process.returncode == -9
        stored = set(stored_identities(postgres_url))
        spooled = spool_identities(spool)
        kills.append({"round": round_, "stored": len(stored), "spooled": len(spooled)})
        assert spooled, "the kill came after the replay"
        assert not doubled(spooled)
        assert backlog <= stored | set(spooled), "a kill lost backlog rows"
    before = stored | set(spooled)
    restarted = Collector(postgres_url, HOST, spool, extra=("--count", "3", "--batch-size", "500"))
    began = time.monotonic()
    assert restarted.start().wait(timeout=180) == 0, restarted.err
    after = check_after_restart(postgres_url, before, backlog, restarted)
    record_figures(
        "collector_sigkill",
        seed=SEED,
        backlog=len(backlog),
        kills=kills,
        stored_after_restart=len(after),
        expected=len(before) + restarted.summary()["ticks"],
        final_run_seconds=round(time.monotonic() - began, 1),
    )


@pytest.mark.xfail(
    strict=True,
    reason="known gap: a batch written but not acked, whose rows are rolled up before the "
    "collector restarts, is replayed as new raw rows (the identity index skips rollups), "
    "so the next archive run counts those samples twice",
)
def test_a_batch_rolled_up_before_its_replay_is_not_counted_twice(
    sqlite_url: str, tmp_path: Path
) -> None:
    spool = tmp_path / "spool.db"
    fill_backlog(spool, 100)
    first = Collector(
        sqlite_url, HOST, spool, extra=("--batch-size", "50"), env={FAULT_ENV: "after_write@1"}
    ).start()
    assert first.wait(timeout=120) == -9, first.err
    engine = make_engine(sqlite_url)
    with Session(engine) as session, session.begin():  # everything older than now: 1 h buckets
        update_policy(
            session=session,
            retention_days=30,
            downsample_after_days=0,
            downsample_interval="1h",
            archive_enabled=False,
        )
    run_archive(engine, now=datetime.now(UTC) - timedelta(hours=1))  # the written batch
    restarted = Collector(sqlite_url, HOST, spool, extra=("--count", "1", "--batch-size", "50"))
    assert restarted.start().wait(timeout=120) == 0, restarted.err
    run_archive(engine, now=datetime.now(UTC) - timedelta(hours=1))
    engine.dispose()
    samples = sum(
        doc["_rollup"]["samples"] for _, doc in stored_documents(sqlite_url) if "_rollup" in doc
    )
    assert samples == 100  # the backlog, each sample once
