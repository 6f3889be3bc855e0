"""The Parquet archive: a hive-partitioned dataset any engine can read.

Layout under the archive root::

    metric_type=aggregated/date=2026-01-05/part-<run>-<chunk>.parquet

Each file holds ``id``, ``timestamp`` (UTC), ``host``, ``rollup_interval`` (null for raw rows),
``document`` (the original JSON document, as text) and one float64 column per numeric leaf
(named by its dotted path). pandas, pyarrow, DuckDB, Dask and Spark read it directly.

Files are written in two steps so that a crash never leaves a half-written or duplicated file
where readers look: ``write_pending`` writes ``_part-*.parquet.pending`` (a name that readers
ignore: pyarrow skips a leading ``_``, and ``*.parquet`` globs do not match), fsyncs it, and
returns its path; once the database transaction that deletes the rows has committed,
``finalize`` renames it to its final name. A pending file whose transaction never committed
is removed by ``discard_pending``.

Object storage: the root may be an fsspec URL (``s3://bucket/prefix``; credentials and the
endpoint come from ``storage_options`` or the usual environment, e.g. ``AWS_*`` variables
or ``FSSPEC_S3_ENDPOINT_URL``). The protocol stays the same with two differences. An object
store has no partial objects, so the pending object is written directly (it appears whole
on close) and nothing is fsynced. And it has no rename: ``finalize`` copies the pending
object to its final name, then deletes the pending one. A crash between the two leaves both;
readers ignore the pending name, so nothing is doubled, and the next run's ``finalize``
copies again (same bytes) and deletes it. Paths of a remote store are the file system's
``bucket/key`` paths (wrapped in ``Path`` objects, never touched through the local disk).
"""

from __future__ import annotations

import json
import os
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from metrics_toolkit.documents import flatten
from metrics_toolkit.errors import MetricsToolkitError

PENDING_SUFFIX = ".parquet.pending"
COMPRESSION = "zstd"
# Dictionary-encode only the columns that repeat: trying it on the documents (all distinct)
# costs time and makes files larger.
DICTIONARY_COLUMNS = ["host", "rollup_interval"]
BASE_FIELDS = [
    pa.field("id", pa.int64()),
    pa.field("timestamp", pa.timestamp("us", tz="UTC")),
    pa.field("host", pa.string()),
    pa.field("rollup_interval", pa.string()),
    pa.field("document", pa.string()),
]
BASE_COLUMNS = [f.name for f in BASE_FIELDS]


class ArchiveError(MetricsToolkitError):
    """The archive could not be written or read."""


class DamagedArchive(ArchiveError):
    """An archive file cannot be read (truncated, corrupt, not Parquet)."""


@dataclass(frozen=True)
class DamagedFile:
    """One archive file that cannot be read, and why."""

    path: Path
    reason: str


def _reason(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return (lines[0] if lines else type(error).__name__)[:200]


@dataclass(frozen=True)
class ArchiveRow:
    """One database row as the archive keeps it."""

    id: int
    timestamp: datetime
    metric_type: str
    document: dict[str, Any]


@dataclass(frozen=True)
class PartitionInfo:
    metric_type: str
    date: date
    files: int
    rows: int
    bytes: int


def _partition_dir(root: Path, metric_type: str, day: date) -> Path:
    return root / f"metric_type={quote(metric_type, safe='')}" / f"date={day.isoformat()}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _table(rows: Sequence[ArchiveRow]) -> pa.Table:
    flats = [flatten(row.document) for row in rows]
    metric_names = sorted({name for flat in flats for name in flat})
    columns: dict[str, list[Any]] = {
        "id": [row.id for row in rows],
        "timestamp": [row.timestamp.astimezone(UTC) for row in rows],
        "host": [_host(row.document) for row in rows],
        "rollup_interval": [_rollup_interval(row.document) for row in rows],
        "document": [json.dumps(row.document, separators=(",", ":")) for row in rows],
    }
    fields = list(BASE_FIELDS)
    for name in metric_names:
        if name in columns:  # a leaf named like a base column keeps only its JSON copy
            continue
        columns[name] = [flat.get(name) for flat in flats]
        fields.append(pa.field(name, pa.float64()))
    return pa.table(columns, schema=pa.schema(fields))


def _host(document: dict[str, Any]) -> str | None:
    host = document.get("host")
    return host if isinstance(host, str) else None


def _rollup_interval(document: dict[str, Any]) -> str | None:
    rollup = document.get("_rollup")
    if isinstance(rollup, dict) and isinstance(rollup.get("interval"), str):
        return str(rollup["interval"])
    return None


def is_url(root: str | os.PathLike[str]) -> bool:
    """True for an fsspec URL other than ``file://`` (a remote archive root)."""
    scheme, separator, _ = os.fspath(root).partition("://")
    return bool(separator) and scheme.lower() not in ("file", "local")


class ArchiveStore:
    """A Parquet archive on the local file system or an fsspec URL (see the module docstring).

    :param root: a directory, ``file:///dir``, or a URL such as ``s3://bucket/prefix``.
    :param storage_options: passed to fsspec for a URL (e.g. ``{"client_kwargs":
        {"endpoint_url": "http://127.0.0.1:9000"}}`` for an S3-compatible server).
    """

    def __init__(
        self, root: str | Path, *, storage_options: Mapping[str, Any] | None = None
    ) -> None:
        text = os.fspath(root)
        self.url = text
        self.storage_options = dict(storage_options or {})
        self.fs: Any = None
        if is_url(text):
            import fsspec  # only needed for object storage

            self.fs, path = fsspec.core.url_to_fs(text, **self.storage_options)
            self.root = Path(str(path).rstrip("/"))
        else:
            _, separator, rest = text.partition("://")
            local = Path(rest if separator else text)
            try:
                self.root = local.expanduser()
            except RuntimeError:  # ~name of no known user: a plain name, then
                self.root = local

    @property
    def is_local(self) -> bool:
        """True for a directory on the local file system."""
        return self.fs is None

    @property
    def arrow_filesystem(self) -> Any:
        """A pyarrow file system for the paths this store returns (``None``: local)."""
        if self.fs is None:
            return None
        from pyarrow.fs import FSSpecHandler, PyFileSystem

        return PyFileSystem(FSSpecHandler(self.fs))

    def __repr__(self) -> str:
        return f"ArchiveStore({self.url!r})"

    def write_pending(self, rows: Iterable[ArchiveRow], *, stem: str | None = None) -> list[Path]:
        """Write rows (one file per metric_type and UTC date) under pending names."""
        groups: dict[tuple[str, date], list[ArchiveRow]] = defaultdict(list)
        for row in rows:
            groups[(row.metric_type, row.timestamp.astimezone(UTC).date())].append(row)
        tables = {
            key: _table(sorted(group, key=lambda r: (r.timestamp, r.id)))
            for key, group in groups.items()
        }
        return self.write_pending_tables(tables, stem=stem)

    def write_pending_tables(
        self, tables: Mapping[tuple[str, date], pa.Table], *, stem: str | None = None
    ) -> list[Path]:
        """Write ready Arrow tables, one per ``(metric_type, UTC date)``, under pending names.

        The files and protocol of :meth:`write_pending`, for a caller that already holds
        the columns (the archive runner's fast path). Each table has the ``BASE_FIELDS``,
        then one float64 column per leaf, its rows in ``(timestamp, id)`` order.
        """
        stem = stem or uuid.uuid4().hex
        if self.fs is not None:
            return self._write_remote(tables, stem)
        written: list[Path] = []
        try:
            for (metric_type, day), table in sorted(tables.items(), key=lambda item: item[0]):
                directory = _partition_dir(self.root, metric_type, day)
                directory.mkdir(parents=True, exist_ok=True)
                final_name = f"part-{stem}.parquet"
                pending = directory / f"_{final_name[: -len('.parquet')]}{PENDING_SUFFIX}"
                temporary = directory / f".{pending.name}.tmp"
                pq.write_table(
                    table,
                    temporary,
                    compression=COMPRESSION,
                    use_dictionary=DICTIONARY_COLUMNS,
                )
                with open(temporary, "rb") as handle:
                    os.fsync(handle.fileno())
                temporary.replace(pending)
                _fsync_dir(directory)
                written.append(pending)
        except OSError as error:
            msg = f"Cannot write the archive under {self.root}: {error.strerror or error}"
            raise ArchiveError(msg) from None
        return written

    def _write_remote(self, tables: Mapping[tuple[str, date], pa.Table], stem: str) -> list[Path]:
        # An object appears whole when its upload completes: no temporary, no fsync.
        written: list[Path] = []
        try:
            for (metric_type, day), table in sorted(tables.items(), key=lambda item: item[0]):
                directory = _partition_dir(self.root, metric_type, day)
                pending = directory / f"_part-{stem}{PENDING_SUFFIX}"
                with self.fs.open(str(pending), "wb") as handle:
                    pq.write_table(
                        table,
                        handle,
                        compression=COMPRESSION,
                        use_dictionary=DICTIONARY_COLUMNS,
                    )
                written.append(pending)
        except OSError as error:
            msg = f"Cannot write the archive under {self.url}: {error.strerror or error}"
            raise ArchiveError(msg) from None
        return written

    @staticmethod
    def final_path(pending: Path) -> Path:
        """The name a pending file gets once its rows are committed as archived."""
        name = pending.name
        assert name.startswith("_") and name.endswith(PENDING_SUFFIX), name
        return pending.with_name(name[1 : -len(PENDING_SUFFIX)] + ".parquet")

    def finalize(self, pending_files: Iterable[Path | str]) -> None:
        """Rename committed pending files to their final names (idempotent)."""
        for item in pending_files:
            pending = Path(item)
            final = self.final_path(pending)
            if self.fs is not None:
                # No rename on object storage: copy, then delete (see the module docstring).
                if self.fs.exists(str(pending)):
                    self.fs.copy(str(pending), str(final))
                    self.fs.rm(str(pending))
                continue
            if pending.exists():
                pending.replace(final)
                _fsync_dir(final.parent)

    def _glob(self, pattern: str) -> list[Path]:
        """Paths under the root matching ``pattern`` (remote stores only)."""
        return sorted(Path(p) for p in self.fs.glob(f"{self.root}/{pattern}"))

    def pending_files(self) -> list[Path]:
        if self.fs is not None:
            return self._glob(f"*/*/_*{PENDING_SUFFIX}")
        if not self.root.exists():
            return []
        return sorted(self.root.glob(f"*/*/_*{PENDING_SUFFIX}"))

    def discard_pending(self, keep: Iterable[Path | str] = ()) -> list[Path]:
        """Remove pending files (and temporaries) not listed in ``keep``; returns them."""
        keep_set = {Path(p) for p in keep}
        removed: list[Path] = []
        if self.fs is not None:
            for path in self.pending_files():
                if path not in keep_set:
                    self.fs.rm(str(path))
                    removed.append(path)
            return removed
        if not self.root.exists():
            return removed
        for path in [*self.pending_files(), *self.root.glob("*/*/.*.tmp")]:
            if path not in keep_set:
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed

    def exists(self) -> bool:
        """True when the archive root is there (a directory, or a prefix holding objects);
        :class:`ArchiveError` for a path no file system takes (a name too long, a NUL)."""
        try:
            if self.fs is None:
                return self.root.is_dir()
            return bool(self.fs.exists(str(self.root)))
        except (OSError, ValueError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            msg = f"Cannot use the archive path {self.url[:200]!r}: {reason}."
            raise ArchiveError(msg) from None

    def require(self) -> ArchiveStore:
        """This store, or a clear :class:`ArchiveError` when its root does not exist."""
        found = self.exists()
        if not found:
            msg = (
                f"No archive at {self.url}: the path does not exist (misspelled "
                "--archive-path or archive.path, or no archive run has written to it yet)."
            )
            raise ArchiveError(msg)
        return self

    def readable(self) -> ArchiveStore:
        """This store, after checking every file's footer: a damaged file raises
        :class:`DamagedArchive` before anything is read."""
        damaged = self.damaged_files(full=False)
        if damaged:
            raise self.damaged_error(OSError(damaged[0].reason))
        return self

    def damaged_files(self, *, full: bool = True) -> list[DamagedFile]:
        """The committed files that cannot be read: their footer (``full=False``), or every
        page of every column (``full=True``, what ``archive verify`` does)."""
        damaged: list[DamagedFile] = []
        for path in self.files():
            try:
                if self.fs is None:
                    _read_check(path, full)
                else:
                    with self.fs.open(str(path), "rb") as handle:
                        _read_check(handle, full)
            except (pa.ArrowException, OSError, ValueError) as error:
                damaged.append(DamagedFile(path, _reason(error)))
        return damaged

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Turn a read failure of the block into one :class:`DamagedArchive` line.

        Readers stop at a damaged file rather than skip it (a restore or a chart that
        silently leaves rows out looks complete); the line names the file and points to
        ``metrics-toolkit archive verify``, which lists every damaged file.
        """
        try:
            yield
        except (pa.ArrowException, OSError) as error:
            raise self.damaged_error(error) from None

    def damaged_error(self, error: BaseException) -> DamagedArchive:
        damaged = self.damaged_files(full=True)
        if not damaged:
            return DamagedArchive(f"Cannot read the archive at {self.url}: {_reason(error)}")
        first = damaged[0]
        others = f" (and {len(damaged) - 1} more)" if len(damaged) > 1 else ""
        return DamagedArchive(
            f"Damaged archive file {first.path}{others}: {first.reason.rstrip('.')}. Nothing was "
            "read from "
            "the archive; run `metrics-toolkit archive verify` to list every damaged file, "
            "and move them out of the archive to read the rest."
        )

    def files(self) -> list[Path]:
        """The archive's committed files, sorted (pending files excluded)."""
        if self.fs is not None:
            return self._glob("metric_type=*/date=*/*.parquet")
        if not self.root.exists():
            return []
        return sorted(self.root.glob("metric_type=*/date=*/*.parquet"))

    def partitions(self) -> list[PartitionInfo]:
        """Partitions with their file count, row count and size on disk."""
        with self.reading():
            return self._partitions()

    def _partitions(self) -> list[PartitionInfo]:
        found: dict[tuple[str, date], list[Path]] = defaultdict(list)
        for path in self.files():
            metric_type = unquote(path.parent.parent.name.split("=", 1)[1])
            day = date.fromisoformat(path.parent.name.split("=", 1)[1])
            found[(metric_type, day)].append(path)
        return [
            PartitionInfo(
                metric_type=metric_type,
                date=day,
                files=len(paths),
                rows=sum(self.num_rows(p) for p in paths),
                bytes=sum(self._size(p) for p in paths),
            )
            for (metric_type, day), paths in sorted(found.items())
        ]

    def num_rows(self, path: Path) -> int:
        """Rows in one archive file (read from its footer)."""
        if self.fs is None:
            return int(pq.ParquetFile(path).metadata.num_rows)
        with self.fs.open(str(path), "rb") as handle:
            return int(pq.ParquetFile(handle).metadata.num_rows)

    def _size(self, path: Path) -> int:
        return path.stat().st_size if self.fs is None else int(self.fs.size(str(path)))

    def dataset(self) -> ds.Dataset:
        """The archive as a pyarrow dataset with the hive partition columns."""
        partitioning = ds.partitioning(
            pa.schema([pa.field("metric_type", pa.string()), pa.field("date", pa.string())]),
            flavor="hive",
        )
        schema = pa.schema([*BASE_FIELDS, *partitioning.schema])
        return ds.dataset(
            [str(p) for p in self.files()],
            schema=schema,
            format="parquet",
            partitioning=partitioning,
            partition_base_dir=str(self.root),
            filesystem=self.arrow_filesystem,
        )

    def iter_rows(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        metric_type: str | None = None,
        batch_size: int = 10_000,
    ) -> Iterator[list[ArchiveRow]]:
        """Archived rows in ``[start, end)``, in batches, reading only matching partitions."""
        with self.reading():
            yield from self._iter_rows(start, end, metric_type, batch_size)

    def _iter_rows(
        self,
        start: datetime | None,
        end: datetime | None,
        metric_type: str | None,
        batch_size: int,
    ) -> Iterator[list[ArchiveRow]]:
        if not self.files():
            return
        dataset = self.dataset()
        condition = None
        clauses = []
        if metric_type is not None:
            clauses.append(ds.field("metric_type") == metric_type)
        if start is not None:
            clauses.append(ds.field("date") >= start.astimezone(UTC).date().isoformat())
            clauses.append(ds.field("timestamp") >= pa.scalar(start, pa.timestamp("us", "UTC")))
        if end is not None:
            clauses.append(ds.field("date") <= end.astimezone(UTC).date().isoformat())
            clauses.append(ds.field("timestamp") < pa.scalar(end, pa.timestamp("us", "UTC")))
        for clause in clauses:
            condition = clause if condition is None else condition & clause
        scanner = dataset.scanner(
            columns=["id", "timestamp", "metric_type", "document"],
            filter=condition,
            batch_size=batch_size,
        )
        for batch in scanner.to_batches():
            if batch.num_rows == 0:
                continue
            data = batch.to_pydict()
            yield [
                ArchiveRow(
                    id=row_id,
                    timestamp=ts,
                    metric_type=mt,
                    document=json.loads(doc),
                )
                for row_id, ts, mt, doc in zip(
                    data["id"],
                    data["timestamp"],
                    data["metric_type"],
                    data["document"],
                    strict=True,
                )
            ]


def _read_check(source: Any, full: bool) -> None:
    parquet = pq.ParquetFile(source)
    if full:
        for group in range(parquet.metadata.num_row_groups):
            parquet.read_row_group(group)
