"""A spool damaged at its tail before the daemon starts, as after a power loss (issue #8).

The spool holds a backlog (and has delivered its first rows). Its file is then cut short,
or a page near its end is overwritten with garbage, or its write-ahead log is torn inside
the last append. The real ``metrics-toolkit collect`` process starts on it, says what it
could not read, and delivers every intact record (each record carries markers, so the test
knows independently which records are still whole in the damaged bytes), and none of the
records delivered before the damage.
"""

from __future__ import annotations

import logging
import os
import random
import re
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from metrics_toolkit.collect.spool import Spool
from metrics_toolkit.store.ingest import SnapshotRow
from tests.faults.support import Collector, doubled, record_figures, stored_documents

pytestmark = pytest.mark.slow

HOST = "damaged"
ROWS = 700  # more leaf pages than one interior page can point to: a two-level b-tree
DELIVERED = 70  # acked before the damage: must never come back
PAGE = 4096
START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
DAMAGE = re.compile(
    r"was damaged \(.*\): kept (?P<kept>\d+) snapshot\(s\), (?P<lost>\d+) could not"
)


def backlog(padding: int) -> list[SnapshotRow]:
    return [
        (
            START + timedelta(seconds=i),
            "aggregated",
            {
                "host": HOST,
                "cpu": {"usage_percent": i % 100},
                "seq": i,
                "note": f"<row-{i:05d}>" + "x" * padding + f"<end-{i:05d}>",
            },
        )
        for i in range(ROWS)
    ]


def fill(path: Path, rows: list[SnapshotRow], *, close: bool = True) -> Spool:
    spool = Spool(path)
    for start in range(0, ROWS, 20):
        spool.append(rows[start : start + 20])
    spool.ack(entry.id for entry in spool.peek(DELIVERED))
    if close:
        spool.close()  # a clean close checkpoints the log into the file
    return spool


def whole(data: bytes, seq: int, lo: int, hi: int) -> bool:
    """Both markers of record ``seq`` lie in ``data[lo:hi]`` (the record is intact there)."""
    first = data.find(f"<row-{seq:05d}>".encode())
    last = data.find(f"<end-{seq:05d}>".encode())
    return lo <= first < hi and lo <= last < hi


def truncate(path: Path, fraction: float) -> set[int]:
    """Cut the file at a page boundary; the records still whole in what is left."""
    data = path.read_bytes()
    cut = int(len(data) // PAGE * fraction) * PAGE
    path.write_bytes(data[:cut])
    return {seq for seq in range(DELIVERED, ROWS) if whole(data, seq, 0, cut)}


def garble(path: Path, rng: random.Random) -> set[int]:
    """Overwrite one page near the end that holds a record; the records not in it."""
    data = bytearray(path.read_bytes())
    victim = int(ROWS * 0.85)
    page = data.find(f"<row-{victim:05d}>".encode()) // PAGE
    data[page * PAGE : (page + 1) * PAGE] = rng.randbytes(PAGE)
    path.write_bytes(bytes(data))
    lo, hi = page * PAGE, (page + 1) * PAGE
    original = bytes(data)
    return {
        seq
        for seq in range(DELIVERED, ROWS)
        if whole(original, seq, 0, lo) or whole(original, seq, hi, len(original))
    }


@pytest.mark.parametrize(
    ("damage", "padding"),
    [("truncated", 3000), ("truncated", 10_000), ("garbled", 3000), ("torn-wal", 3000)],
)
def test_the_daemon_keeps_every_intact_record(
    sqlite_url: str, tmp_path: Path, damage: str, padding: int
) -> None:
    # The damage is in the spool, whatever the database: SQLite keeps this suite quick.
    db_url = sqlite_url
    seed = int(os.environ.get("METRICS_TOOLKIT_FAULT_SEED", random.randrange(10**6)))
    rng = random.Random(seed)
    rows = backlog(padding)
    path = tmp_path / "spool.db"
    if damage == "torn-wal":
        # A power loss during an append: the file and its log as they were, the log cut
        # inside the frames of that last append (and garbage after it).
        live = fill(tmp_path / "live" / "spool.db", rows, close=False)
        before = Path(f"{live.path}-wal").stat().st_size
        live.append([(START + timedelta(seconds=ROWS), "aggregated", {"host": HOST, "seq": ROWS})])
        wal = Path(f"{live.path}-wal").read_bytes()
        shutil.copyfile(live.path, path)
        cut = rng.randrange(before + 1, len(wal))
        Path(f"{path}-wal").write_bytes(wal[:cut] + rng.randbytes(rng.randrange(0, 3 * PAGE)))
        live.close()
        intact = set(range(DELIVERED, ROWS))
    else:
        fill(path, rows)
        intact = truncate(path, 0.75) if damage == "truncated" else garble(path, rng)
    assert (intact and len(intact) < ROWS - DELIVERED) or damage == "torn-wal"

    daemon = Collector(db_url, HOST, path, extra=("--count", "2", "--batch-size", "100"))
    assert daemon.start().wait(timeout=120) == 0, daemon.err
    assert "Traceback" not in daemon.err
    documents = stored_documents(db_url)
    assert not doubled([(doc["host"], ts) for ts, doc in documents])
    delivered = {doc["seq"] for _, doc in documents if "seq" in doc}
    ticks = [doc for _, doc in documents if "seq" not in doc]
    assert len(ticks) == 2 and daemon.summary()["ticks"] == 2
    assert delivered == intact, (sorted(intact - delivered)[:10], sorted(delivered - intact)[:10])
    for ts, doc in documents:
        if "seq" in doc:
            assert (ts, "aggregated", doc) == rows[doc["seq"]]  # byte for byte the original
    said = DAMAGE.search(daemon.err)
    if damage == "torn-wal":
        assert said is None  # SQLite drops the unfinished append itself; nothing was lost
    else:
        assert said, daemon.err
        assert int(said["kept"]) == len(intact)
        assert int(said["lost"]) == ROWS - DELIVERED - len(intact)
        assert list(tmp_path.glob("spool.db.corrupt-*")), "the damaged file is not kept"
    record_figures(
        "spool_damage",
        damage=damage,
        record_bytes=padding,
        seed=seed,
        waiting=ROWS - DELIVERED,
        intact=len(intact),
        delivered=len(delivered),
        reported_lost=int(said["lost"]) if said else 0,
    )


def test_rows_in_the_log_of_a_damaged_file_are_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The root page of the spool table destroyed while the write-ahead log holds the newest
    appends: SQLite reaches no row through the table, yet every row is kept, from the leaf
    pages of the file and of the log (which SQLite folds into the file first)."""
    rows = backlog(3000) + [
        (START + timedelta(seconds=ROWS + i), "aggregated", {"host": HOST, "seq": ROWS + i})
        for i in range(30)
    ]
    fill(tmp_path / "live" / "spool.db", rows[:ROWS])  # closed: all of it in the file
    live = Spool(tmp_path / "live" / "spool.db")
    live.append(rows[ROWS:])  # these are only in the log
    with sqlite3.connect(live.path) as connection:  # (live is open: no checkpoint at close)
        root = connection.execute("SELECT rootpage FROM sqlite_master WHERE name = 'spool'")
        page = int(root.fetchone()[0])
    connection.close()
    path = tmp_path / "spool.db"
    shutil.copyfile(live.path, path)
    shutil.copyfile(f"{live.path}-wal", f"{path}-wal")
    live.close()
    with path.open("r+b") as handle:  # the interior root page: no row lives there
        handle.seek((page - 1) * PAGE)
        handle.write(random.Random(page).randbytes(PAGE))
    with (
        caplog.at_level(logging.WARNING, logger="metrics_toolkit.collect.spool"),
        Spool(path) as spool,
    ):
        assert spool.recovery is not None
        kept = [entry.row for entry in spool.peek(10_000)]
        assert [row[2]["seq"] for row in kept] == list(range(DELIVERED, ROWS + 30))
        assert kept == rows[DELIVERED:]
        assert spool.recovery.lost == 0
    (said,) = [r.getMessage() for r in caplog.records if "was damaged" in r.getMessage()]
    assert "\n" not in said and "kept 660 snapshot(s), 0 could not be read" in said
