"""What a load run left in the database and the archive, counted per host and per timestamp.

Nothing here trusts the code under test: rows are read back with plain queries (raw rows,
the ``_rollup.samples`` of rolled-up rows) and archived raw rows straight from the Parquet
files, then compared with what each collector said it took.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url

from metrics_toolkit.archive.store import ArchiveStore
from metrics_toolkit.documents import ROLLUP_KEY
from metrics_toolkit.store.models import SNAPSHOT_RAW_SQL, SNAPSHOT_ROLLUP_SQL, MetricsSnapshot

LATENCY = ("collector", "write_latency_ms")


@dataclass(frozen=True)
class Sample:
    """One raw snapshot as stored: its host, its tick and the write latency it carries."""

    host: str
    timestamp: datetime
    latency_ms: float | None


def raw_samples(engine: Engine) -> list[Sample]:
    """Every raw (not rolled-up) snapshot in the database."""
    data = MetricsSnapshot.metric_data
    query = select(
        data["host"].as_string(), MetricsSnapshot.timestamp, data[LATENCY].as_float()
    ).where(text(SNAPSHOT_RAW_SQL[engine.dialect.name]))
    with engine.connect() as connection:
        return [Sample(h, ts, lat) for h, ts, lat in connection.execute(query)]


def rollup_buckets(engine: Engine) -> Counter[tuple[str, datetime]]:
    """Per (host, bucket start), the samples rolled-up rows stand for (``_rollup.samples``)."""
    data = MetricsSnapshot.metric_data
    query = select(
        data["host"].as_string(),
        MetricsSnapshot.timestamp,
        data[(ROLLUP_KEY, "samples")].as_integer(),
    ).where(text(SNAPSHOT_ROLLUP_SQL[engine.dialect.name]))
    buckets: Counter[tuple[str, datetime]] = Counter()
    with engine.connect() as connection:
        for host, stamp, samples in connection.execute(query):
            buckets[(host, stamp)] += int(samples)
    return buckets


def per_host(buckets: Mapping[tuple[str, datetime], int]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for (host, _), samples in buckets.items():
        totals[host] += samples
    return dict(totals)


def read_archive(root: Path) -> tuple[list[Sample], int]:
    """What the archive runner moved to the Parquet archive (committed files only).

    Returns the raw snapshots, and the number of rollup rows archived: rollup rows that a
    later run replaced by merging late rows into their bucket.
    """
    samples = []
    merged = 0
    for batch in ArchiveStore(root).iter_rows():
        for row in batch:
            doc = row.document
            if ROLLUP_KEY in doc:
                merged += 1  # not a sample of its own: its samples are in the new rollup
                continue
            latency = doc.get(LATENCY[0], {}).get(LATENCY[1])
            samples.append(Sample(doc.get("host", ""), row.timestamp, latency))
    return samples, merged


def database_bytes(engine: Engine) -> int:
    """Size of the database: ``pg_database_size`` or the SQLite file plus its WAL."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            size = connection.execute(text("SELECT pg_database_size(current_database())"))
            return int(size.scalar_one())
    database = make_url(str(engine.url)).database
    assert database, engine.url
    return sum(
        Path(database + suffix).stat().st_size
        for suffix in ("", "-wal")
        if Path(database + suffix).exists()
    )


@dataclass
class HostTally:
    """Stored against expected for one host."""

    expected: int
    stored: int = 0  # distinct ticks stored (raw rows here plus raw rows archived)
    doubled: int = 0  # extra copies of a tick
    off_grid: int = 0  # timestamps that are not whole seconds (never written by a tick)
    rolled_up: int = 0  # samples counted by rollup rows

    @property
    def missing(self) -> int:
        return max(0, self.expected - self.stored)

    @property
    def extra(self) -> int:
        return max(0, self.stored - self.expected)


@dataclass
class Tally:
    """Every host's tally; :meth:`problems` lists what is wrong, one line per host."""

    hosts: dict[str, HostTally] = field(default_factory=dict)
    unknown_hosts: Counter[str] = field(default_factory=Counter)

    @property
    def expected(self) -> int:
        return sum(t.expected for t in self.hosts.values())

    @property
    def stored(self) -> int:
        return sum(t.stored for t in self.hosts.values())

    @property
    def doubled(self) -> int:
        return sum(t.doubled for t in self.hosts.values())

    @property
    def missing(self) -> int:
        return sum(t.missing for t in self.hosts.values())

    def problems(self) -> list[str]:
        lines = [
            f"{host}: expected {t.expected}, stored {t.stored}, doubled {t.doubled}, "
            f"off grid {t.off_grid}"
            for host, t in sorted(self.hosts.items())
            if t.stored != t.expected or t.doubled or t.off_grid
        ]
        lines += [f"rows of unexpected host {h!r}: {n}" for h, n in self.unknown_hosts.items()]
        return lines


def tally(expected: Mapping[str, int], samples: Iterable[Sample]) -> Tally:
    """Compare the ticks each host took with the samples found, tick by tick."""
    result = Tally({host: HostTally(count) for host, count in expected.items()})
    seen: Counter[tuple[str, datetime]] = Counter()
    for sample in samples:
        if sample.host not in result.hosts:
            result.unknown_hosts[sample.host] += 1
            continue
        seen[(sample.host, sample.timestamp)] += 1
    for (host, stamp), copies in seen.items():
        host_tally = result.hosts[host]
        host_tally.stored += 1
        host_tally.doubled += copies - 1
        host_tally.off_grid += int(stamp.microsecond != 0)
    return result


def rollup_problems(
    expected: Mapping[str, int], raw_in_database: Sequence[Sample], rolled_up: Mapping[str, int]
) -> list[str]:
    """Hosts whose rollup samples plus remaining raw rows do not equal what they took."""
    raw = Counter(sample.host for sample in raw_in_database)
    return [
        f"{host}: {rolled_up.get(host, 0)} rolled up + {raw.get(host, 0)} raw != {count} taken"
        for host, count in sorted(expected.items())
        if rolled_up.get(host, 0) + raw.get(host, 0) != count
    ]


def bucket_problems(
    rollups: Mapping[tuple[str, datetime], int], archived: Iterable[Sample], width_seconds: int
) -> list[str]:
    """Buckets whose rollup does not count exactly the raw rows archived from it.

    Every raw row the runner rolled up was archived first, so a rollup row's ``samples``
    must equal the archived raw rows of its host in ``[start, start + width)``, whatever
    number of runs merged into it.
    """
    found: Counter[tuple[str, datetime]] = Counter()
    for sample in archived:
        epoch = int(sample.timestamp.timestamp())
        start = datetime.fromtimestamp(epoch - epoch % width_seconds, sample.timestamp.tzinfo)
        found[(sample.host, start)] += 1
    return [
        f"{host} bucket {start.isoformat()}: rollup counts {rollups.get((host, start), 0)}, "
        f"{found.get((host, start), 0)} raw rows archived"
        for host, start in sorted(set(rollups) | set(found))
        if rollups.get((host, start), 0) != found.get((host, start), 0)
    ]


def percentile(values: Sequence[float], share: float) -> float:
    """The ``share`` (0..1) quantile by the nearest-rank method; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return float(ordered[rank - 1])
