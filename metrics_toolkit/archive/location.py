"""Telling an archive source (a directory or an fsspec URL) from a database source."""

from __future__ import annotations

import os
from pathlib import PurePath
from typing import TypeGuard

from metrics_toolkit.archive.store import ArchiveStore

#: URL schemes that name a database, never an archive.
DATABASE_SCHEMES = frozenset({"sqlite", "postgresql", "postgres"})
#: What ``load_frame`` accepts as a Parquet archive.
ArchiveSource = ArchiveStore | str | os.PathLike[str]


def is_archive_source(source: object) -> TypeGuard[ArchiveSource]:
    """True when ``source`` names a Parquet archive rather than a database.

    An :class:`ArchiveStore` or a ``pathlib`` path always does; a string does when it has
    no ``scheme://`` (a plain path: database URLs always have one) or when its scheme is an
    fsspec protocol (``s3``, ``file``, ``gs``, ``memory``...) rather than a database
    (``sqlite``, ``postgresql``, with or without a ``+driver``).
    """
    if isinstance(source, ArchiveStore | PurePath):
        return True
    if not isinstance(source, str):
        return False
    scheme, separator, _ = source.partition("://")
    if not separator:
        return True
    scheme = scheme.split("+", 1)[0].lower()
    if scheme in DATABASE_SCHEMES:
        return False
    import fsspec  # only for URLs: fsspec comes with the archive extras

    return scheme in fsspec.available_protocols()


def open_archive(source: ArchiveSource) -> ArchiveStore:
    """An :class:`ArchiveStore` for ``source`` (returned as is when it already is one)."""
    if isinstance(source, ArchiveStore):
        return source
    return ArchiveStore(os.fspath(source))
