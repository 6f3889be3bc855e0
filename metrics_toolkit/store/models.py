"""The shared SQLAlchemy 2.0 models: ``User``, ``MetricsSnapshot``, ``Config``, ``ArchivePolicy``.

Columns and constraints only: no engine, no session, no queries. The schema follows the
seed document (``shared/seed``) exactly; the migrations in ``metrics_toolkit/migrations``
create the same schema, and a test proves the two agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    event,
    false,
    func,
    text,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import DeclarativeBase, Mapped, Mapper, Session, mapped_column

from metrics_toolkit.documents import host_of_any
from metrics_toolkit.errors import InvalidInterval, InvalidPolicy
from metrics_toolkit.intervals import MAX_DAYS, SECONDS_PER_DAY, Interval, as_utc
from metrics_toolkit.store import tier_log
from metrics_toolkit.store.sqltypes import JSONDocument, UTCDateTime, utcnow

# Deterministic constraint names, so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

DEFAULT_RETENTION_DAYS = 30
DEFAULT_DOWNSAMPLE_AFTER_DAYS = 3  # < 7, so the seed's "retention_days = 7" update stays valid
DEFAULT_DOWNSAMPLE_INTERVAL = "1h"
#: The longest retention a policy accepts (100 years; beyond, dates leave the calendar).
MAX_POLICY_DAYS = MAX_DAYS


class Base(DeclarativeBase):
    """Declarative base: every ``Mapped[datetime]`` is a timezone-aware UTC timestamp."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONDocument,
    }


class User(Base):
    """A person who may log in to the explorer. Passwords are stored as bcrypt hashes."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(50), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(server_default=utcnow())
    last_login: Mapped[datetime | None] = mapped_column(nullable=True)
    # Not in the seed: who may reach the explorer's Admin page (the first account is one).
    is_admin: Mapped[bool] = mapped_column(default=False, server_default=false())

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, username={self.username!r}, last_login={self.last_login!r})"


# User names are unique regardless of case (``alice`` and ``ALICE`` are one account).
Index("uq_users_username_lower", func.lower(User.__table__.c.username), unique=True)


class MetricsSnapshot(Base):
    """One collection tick: a nested JSON document of metrics at ``timestamp``.

    ``metric_data`` looks like ``{"host": "web-1", "cpu": {"usage_percent": 12.5}, ...}``.
    The same raw (host, metric_type, timestamp) is stored at most once (a unique index over
    the host label inside the document), so replaying a spool cannot double data.
    """

    __tablename__ = "metrics_snapshots"

    # active_history: a change loads the old value first, so the tier log hook (below)
    # marks where the row was as well as where it goes.
    id: Mapped[int] = mapped_column(primary_key=True)
    timestamp: Mapped[datetime] = mapped_column(index=True, active_history=True)
    metric_type: Mapped[str] = mapped_column(String(50), active_history=True)
    metric_data: Mapped[dict[str, Any]] = mapped_column(active_history=True)

    def __repr__(self) -> str:
        host = self.metric_data.get("host") if isinstance(self.metric_data, dict) else None
        return (
            f"MetricsSnapshot(id={self.id!r}, timestamp={self.timestamp!r}, "
            f"metric_type={self.metric_type!r}, host={host!r})"
        )


# The identity of a snapshot. The host lives inside the document; each backend indexes
# its own JSON extraction expression (a missing host counts as the empty string). Rolled-up
# rows are left out: a late raw sample at a bucket's start must not clash with that
# bucket's rollup row (the archive runner merges it on its next run).
SNAPSHOT_HOST_SQL = {
    "postgresql": "(coalesce(metric_data ->> 'host', ''))",
    "sqlite": "(coalesce(json_extract(metric_data, '$.host'), ''))",
}
SNAPSHOT_RAW_SQL = {
    "postgresql": "NOT (metric_data ? '_rollup')",
    "sqlite": "json_type(metric_data, '$._rollup') IS NULL",
}
for _dialect, _host_sql in SNAPSHOT_HOST_SQL.items():
    Index(
        "uq_metrics_snapshots_identity",
        MetricsSnapshot.__table__.c.metric_type,
        MetricsSnapshot.__table__.c.timestamp,
        text(_host_sql),
        unique=True,
        **{f"{_dialect}_where": text(SNAPSHOT_RAW_SQL[_dialect])},  # type: ignore[arg-type]
    ).ddl_if(dialect=_dialect)

# Rolled-up rows are few (one per host and bucket): a partial index finds them at once, so
# queries that treat them apart from raw rows do not scan the table.
SNAPSHOT_ROLLUP_SQL = {
    "postgresql": "metric_data ? '_rollup'",
    "sqlite": "json_type(metric_data, '$._rollup') IS NOT NULL",
}
for _dialect, _rollup_sql in SNAPSHOT_ROLLUP_SQL.items():
    Index(
        "ix_metrics_snapshots_rollups",
        MetricsSnapshot.__table__.c.timestamp,
        **{f"{_dialect}_where": text(_rollup_sql)},  # type: ignore[arg-type]
    ).ddl_if(dialect=_dialect)


class MetricsTier(Base):
    """One host's statistics over one bucket of a rollup tier (docs/design.md §9).

    ``metric_data`` is a rolled-up document in exactly the shape the archive stores
    (docs/design.md §4: leaves hold the bucket means, ``_rollup`` the mergeable statistics),
    made by the one rollup rule from the snapshot rows of ``[timestamp, timestamp +
    width_seconds)``. A tier row is valid unless the tier log (:class:`TierDirty`) marks its
    host and time as changed since; readers take valid rows and read the snapshots for the
    rest (``archive.tiers``).
    """

    __tablename__ = "metrics_tiers"

    width_seconds: Mapped[int] = mapped_column(Integer, primary_key=True)
    metric_type: Mapped[str] = mapped_column(String(50), primary_key=True)
    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    timestamp: Mapped[datetime] = mapped_column(primary_key=True)  # the bucket start
    samples: Mapped[int] = mapped_column(Integer)
    metric_data: Mapped[dict[str, Any]]

    def __repr__(self) -> str:
        return (
            f"MetricsTier(width_seconds={self.width_seconds!r}, host={self.host!r}, "
            f"timestamp={self.timestamp!r}, samples={self.samples!r})"
        )


# Readers ask for one width and time range across hosts.
Index(
    "ix_metrics_tiers_time",
    MetricsTier.__table__.c.width_seconds,
    MetricsTier.__table__.c.metric_type,
    MetricsTier.__table__.c.timestamp,
)


class TierBlock(Base):
    """One leaf's tier statistics over one UTC day, as arrays (docs/design.md §9).

    The tier rows of ``width_seconds`` hold every statistic of every leaf in one document;
    a view asking for a few leaves would decompress them all. A block holds, for one
    metric_type, host, leaf ``path`` and day, the ``count``, ``sum``, ``min`` and ``max``
    that those documents' ``_rollup`` maps give the leaf, one slot per tier bucket of the
    day (``86400 / width_seconds`` slots), as little-endian float64 arrays (NaN: no value).
    The row of ``path == ""`` holds the buckets' samples in ``counts`` (NaN: no tier row
    there); a leaf's ``counts`` is NULL when equal to them (the usual case). Written with
    the tier rows, from the same documents, in the same transaction (``rollup.blocks``).
    """

    __tablename__ = "metrics_tier_blocks"

    width_seconds: Mapped[int] = mapped_column(Integer, primary_key=True)
    metric_type: Mapped[str] = mapped_column(String(50), primary_key=True)
    path: Mapped[str] = mapped_column(String(1000), primary_key=True)
    day: Mapped[datetime] = mapped_column(primary_key=True)  # the UTC day's start
    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    counts: Mapped[bytes | None] = mapped_column(LargeBinary)
    sums: Mapped[bytes | None] = mapped_column(LargeBinary)
    mins: Mapped[bytes | None] = mapped_column(LargeBinary)
    maxes: Mapped[bytes | None] = mapped_column(LargeBinary)

    def __repr__(self) -> str:
        return (
            f"TierBlock(width_seconds={self.width_seconds!r}, path={self.path!r}, "
            f"day={self.day!r}, host={self.host!r})"
        )


class TierDirty(Base):
    """The tier log: snapshot times of one host and UTC day whose tier rows are stale.

    Every write of snapshots (ingest, the ORM, the archive's rollups, deletions and
    restores) widens the entry of each (metric_type, host, day) it touched and bumps
    ``seq``; the tier refresh recomputes the buckets of an entry and deletes the entry only
    if ``seq`` is unchanged, so a write racing the refresh leaves its entry behind.
    """

    __tablename__ = "metrics_tier_dirty"

    metric_type: Mapped[str] = mapped_column(String(50), primary_key=True)
    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    day: Mapped[datetime] = mapped_column(primary_key=True)  # the UTC day's start
    first_ts: Mapped[datetime]
    last_ts: Mapped[datetime]  # inclusive
    seq: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    def __repr__(self) -> str:
        return (
            f"TierDirty(metric_type={self.metric_type!r}, host={self.host!r}, "
            f"first_ts={self.first_ts!r}, last_ts={self.last_ts!r}, seq={self.seq!r})"
        )


class MetricsSeries(Base):
    """The series catalog: one row per (metric_type, host) that has snapshots.

    ``[first_seen, last_seen]`` covers every snapshot of the series (raw or rolled up):
    writers widen it in the transaction of their insert (``store.series.note``), and
    deleters narrow it back to the stored rows (``store.series.refresh_range``). Readers
    such as ``list_hosts`` answer from here and probe the snapshots only inside the span
    (docs/design.md §8).
    """

    __tablename__ = "metrics_series"

    metric_type: Mapped[str] = mapped_column(String(50), primary_key=True)
    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]  # inclusive

    def __repr__(self) -> str:
        return (
            f"MetricsSeries(metric_type={self.metric_type!r}, host={self.host!r}, "
            f"first_seen={self.first_seen!r}, last_seen={self.last_seen!r})"
        )


class Config(Base):
    """Runtime configuration: a JSON value per key (see ``metrics_toolkit.store.config_keys``)."""

    __tablename__ = "config"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONDocument)
    updated_at: Mapped[datetime] = mapped_column(server_default=utcnow(), onupdate=utcnow())

    def __repr__(self) -> str:
        return f"Config(key={self.key!r}, value={self.value!r}, updated_at={self.updated_at!r})"


class ArchivePolicy(Base):
    """How long raw data stays raw, what it is rolled up to, and when it is deleted.

    Read relative to *now*: rows newer than ``downsample_after_days`` stay raw; older ones
    are rolled up to ``downsample_interval``; rows older than ``retention_days`` are deleted.
    With ``archive_enabled`` every row is written to the archive before it is replaced or
    deleted. The *active* policy is the first row by id.
    """

    __tablename__ = "archive_policies"
    __table_args__ = (
        CheckConstraint("retention_days > 0", name="retention_positive"),
        CheckConstraint(
            "downsample_after_days >= 0 AND downsample_after_days < retention_days",
            name="downsample_before_retention",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    retention_days: Mapped[int] = mapped_column(
        Integer, default=DEFAULT_RETENTION_DAYS, server_default=str(DEFAULT_RETENTION_DAYS)
    )
    archive_enabled: Mapped[bool] = mapped_column(
        Boolean, default=True, server_default=text("true")
    )
    downsample_after_days: Mapped[int] = mapped_column(
        Integer,
        default=DEFAULT_DOWNSAMPLE_AFTER_DAYS,
        server_default=str(DEFAULT_DOWNSAMPLE_AFTER_DAYS),
    )
    downsample_interval: Mapped[str] = mapped_column(
        String(20),
        default=DEFAULT_DOWNSAMPLE_INTERVAL,
        server_default=DEFAULT_DOWNSAMPLE_INTERVAL,
    )
    last_archive_run: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(server_default=utcnow())
    updated_at: Mapped[datetime] = mapped_column(server_default=utcnow(), onupdate=utcnow())

    def validate(self) -> None:
        """Raise :class:`InvalidPolicy` unless the values can work together."""
        validate_policy_values(
            retention_days=self.retention_days
            if self.retention_days is not None
            else DEFAULT_RETENTION_DAYS,
            downsample_after_days=self.downsample_after_days
            if self.downsample_after_days is not None
            else DEFAULT_DOWNSAMPLE_AFTER_DAYS,
            downsample_interval=self.downsample_interval
            if self.downsample_interval is not None
            else DEFAULT_DOWNSAMPLE_INTERVAL,
        )

    def __repr__(self) -> str:
        return (
            f"ArchivePolicy(id={self.id!r}, retention_days={self.retention_days!r}, "
            f"downsample_after_days={self.downsample_after_days!r}, "
            f"downsample_interval={self.downsample_interval!r}, "
            f"archive_enabled={self.archive_enabled!r}, "
            f"last_archive_run={self.last_archive_run!r})"
        )


class ArchiveRun(Base):
    """One run of the archive policy: when, what it did, how it ended.

    ``status`` is ``running`` while it works, then ``completed`` or ``failed``; a run found
    ``running`` by a later run (which holds the lock, so the first is gone) is marked
    ``interrupted``. ``watermark`` is the end of the last range the run committed.
    """

    __tablename__ = "archive_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(server_default=utcnow())
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="running")
    policy_now: Mapped[datetime]
    policy: Mapped[dict[str, Any]]
    rows_archived: Mapped[int] = mapped_column(Integer, default=0)
    rows_rolled_up: Mapped[int] = mapped_column(Integer, default=0)
    rollups_written: Mapped[int] = mapped_column(Integer, default=0)
    rows_deleted: Mapped[int] = mapped_column(Integer, default=0)
    chunks_done: Mapped[int] = mapped_column(Integer, default=0)
    watermark: Mapped[datetime | None] = mapped_column(nullable=True)
    error: Mapped[str | None] = mapped_column(String(2000), nullable=True)

    def __repr__(self) -> str:
        return (
            f"ArchiveRun(id={self.id!r}, status={self.status!r}, started_at={self.started_at!r}, "
            f"rows_rolled_up={self.rows_rolled_up!r}, rows_deleted={self.rows_deleted!r})"
        )


class ArchiveFile(Base):
    """A Parquet file of the archive, recorded in the transaction that removed its rows.

    A file is first written under a pending name; it is renamed to ``path`` once this row
    is committed (``finalized``). Pending files without a row are from runs that died
    before committing: their rows are still in the database, so the files are discarded.
    """

    __tablename__ = "archive_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(Integer, index=True)
    path: Mapped[str] = mapped_column(String(1000), unique=True)
    pending_path: Mapped[str] = mapped_column(String(1000))
    rows: Mapped[int] = mapped_column(Integer)
    finalized: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(server_default=utcnow())

    def __repr__(self) -> str:
        return f"ArchiveFile(path={self.path!r}, rows={self.rows!r}, finalized={self.finalized!r})"


def validate_policy_values(
    *, retention_days: int, downsample_after_days: int, downsample_interval: str
) -> None:
    """Check archive policy values; the error lists every problem found."""
    problems: list[str] = []
    if isinstance(retention_days, bool) or not isinstance(retention_days, int):
        problems.append(f"retention_days must be a whole number of days (got {retention_days!r})")
    elif retention_days <= 0:
        problems.append(f"retention_days must be greater than 0 (got {retention_days})")
    elif retention_days > MAX_POLICY_DAYS:
        problems.append(f"retention_days must be at most {MAX_POLICY_DAYS} (got {retention_days})")
    if isinstance(downsample_after_days, bool) or not isinstance(downsample_after_days, int):
        problems.append(
            f"downsample_after_days must be a whole number of days (got {downsample_after_days!r})"
        )
    elif downsample_after_days < 0:
        problems.append(f"downsample_after_days must be 0 or more (got {downsample_after_days})")
    elif isinstance(retention_days, int) and downsample_after_days >= retention_days:
        problems.append(
            f"downsample_after_days ({downsample_after_days}) must be less than "
            f"retention_days ({retention_days}), or nothing would ever be downsampled"
        )
    try:
        width = Interval.parse(downsample_interval)
    except InvalidInterval as error:
        problems.append(f"downsample_interval: {error}")
    else:
        window = (retention_days - downsample_after_days) * SECONDS_PER_DAY if not problems else 0
        if not problems and width.seconds > window:
            problems.append(
                f"downsample_interval ({width}) must be at most the rollup window, "
                f"retention_days - downsample_after_days ({retention_days - downsample_after_days}"
                " days), or no bucket would ever be rolled up"
            )
    if problems:
        msg = "Invalid archive policy: " + "; ".join(p.rstrip(".") for p in problems) + "."
        raise InvalidPolicy(msg)


@event.listens_for(ArchivePolicy, "before_insert")
@event.listens_for(ArchivePolicy, "before_update")
def _validate_policy_before_write(
    mapper: Mapper[ArchivePolicy], connection: Any, target: ArchivePolicy
) -> None:
    target.validate()


@event.listens_for(Session, "before_flush")
def _mark_tier_log(session: Session, flush_context: Any, instances: Any) -> None:
    """Snapshots the ORM adds, changes or deletes are marked in the tier log, in the flush's
    own transaction (docs/design.md §9; bulk ``insert``/``delete`` statements bypass the
    flush: their callers mark what they touch, as the bulk ingest does)."""
    spans = tier_log.DaySpans()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if not isinstance(obj, MetricsSnapshot):
            continue
        if obj in session.dirty and not session.is_modified(obj):
            continue
        state = sa_inspect(obj)
        values: list[tuple[list[Any], list[Any]]] = []
        for name in ("timestamp", "metric_type", "metric_data"):
            history = state.attrs[name].history
            now = [*history.added, *history.unchanged] or [getattr(obj, name)]
            before = [*history.deleted, *history.unchanged] if obj not in session.new else []
            values.append((now, before))
        moments = {*values[0][0], *values[0][1]}
        types = {*values[1][0], *values[1][1]}
        docs = [*values[2][0], *values[2][1]]
        for moment in moments:
            if not isinstance(moment, datetime):
                continue  # the flush refuses it
            for metric_type in types:
                for doc in docs:
                    spans.add(str(metric_type), host_of_any(doc), as_utc(moment))
    if len(spans):
        tier_log.mark(session.connection(), spans)


__all__ = [
    "ArchiveFile",
    "ArchivePolicy",
    "ArchiveRun",
    "Base",
    "Config",
    "MetricsSeries",
    "MetricsSnapshot",
    "User",
    "validate_policy_values",
]
