"""Rows read straight from the pages of a damaged SQLite file, without its b-tree.

SQLite finds a row by walking a table's b-tree from its root. When a file is cut short (a
power loss, a copy stopped half-way) the interior pages of a large table are often among
the lost ones (SQLite allocates them late, at the end of the file), so not a single row can
be reached, although most leaf pages, which hold the rows themselves, are intact. This
module reads every page of the file on its own, recognises table leaf pages and decodes
their cells: rowid and record values, following overflow chains. It reads bytes only.

The write-ahead log is not read here: open the file with SQLite first, which applies the
log's committed frames and checkpoints them into the file when the connection closes.
A cell that cannot be decoded (a torn page) is skipped; callers validate what they get,
since pages no longer in use can still hold rows deleted long ago.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

_HEADER = b"SQLite format 3\x00"
_TABLE_LEAF = 0x0D
DEFAULT_PAGE_SIZE = 4096

Value = None | int | float | bytes | str


def _varint(data: bytes, at: int) -> tuple[int, int]:
    """A SQLite varint at ``at``: (value, position after it). IndexError past the end."""
    value = 0
    for i in range(8):
        byte = data[at + i]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, at + i + 1
    return (value << 8) | data[at + 8], at + 9


def _geometry(path: Path) -> tuple[int, int]:
    """(page size, usable bytes per page) from the header, or the defaults if it is damaged."""
    with path.open("rb") as handle:
        head = handle.read(100)
    if len(head) < 100 or not head.startswith(_HEADER):
        return DEFAULT_PAGE_SIZE, DEFAULT_PAGE_SIZE
    size = int.from_bytes(head[16:18], "big")
    size = 65536 if size == 1 else size
    if size < 512 or size & (size - 1):
        return DEFAULT_PAGE_SIZE, DEFAULT_PAGE_SIZE
    reserved = head[20]
    return size, size - reserved if reserved < 32 else size


class _Source:
    """The pages of an open file: streamed in order, or read by number (overflow pages)."""

    def __init__(self, path: Path, stream: BinaryIO, lookup: BinaryIO) -> None:
        self.page_size, self.usable = _geometry(path)
        self.pages = path.stat().st_size // self.page_size
        self._stream = stream
        self._lookup = lookup

    def images(self) -> Iterator[tuple[int, bytes]]:
        for number in range(1, self.pages + 1):
            yield number, self._stream.read(self.page_size)

    def read(self, number: int) -> bytes | None:
        """Page ``number`` (None when the file does not reach it)."""
        if not 1 <= number <= self.pages:
            return None
        self._lookup.seek((number - 1) * self.page_size)
        return self._lookup.read(self.page_size)


def _record(payload: bytes) -> list[Value]:
    """The values of one record (ValueError / IndexError when it is not one)."""
    size, at = _varint(payload, 0)
    if size > len(payload):
        raise ValueError("record header past the payload")
    types: list[int] = []
    while at < size:
        serial, at = _varint(payload, at)
        types.append(serial)
    values: list[Value] = []
    body = size
    for serial in types:
        if serial == 0:
            values.append(None)
        elif 1 <= serial <= 6:
            width = (1, 2, 3, 4, 6, 8)[serial - 1]
            values.append(int.from_bytes(payload[body : body + width], "big", signed=True))
            body += width
        elif serial == 7:
            values.append(struct.unpack(">d", payload[body : body + 8])[0])
            body += 8
        elif serial in (8, 9):
            values.append(serial - 8)
        elif serial >= 12:
            length = (serial - 12) // 2
            chunk = payload[body : body + length]
            if len(chunk) != length:
                raise ValueError("value past the payload")
            values.append(chunk.decode() if serial % 2 else bytes(chunk))
            body += length
        else:
            raise ValueError(f"reserved serial type {serial}")
    if body != len(payload):
        raise ValueError("record size does not match its payload")
    return values


def _payload(source: _Source, page: bytes, at: int, size: int) -> bytes:
    """The payload of ``size`` bytes of the cell body at ``at``, overflow pages included."""
    usable = source.usable
    most_local = usable - 35
    if size <= most_local:
        return page[at : at + size]
    least_local = (usable - 12) * 32 // 255 - 23
    local = least_local + (size - least_local) % (usable - 4)
    if local > most_local:
        local = least_local
    parts = [page[at : at + local]]
    got = local
    following = int.from_bytes(page[at + local : at + local + 4], "big")
    seen: set[int] = set()
    while got < size:
        overflow = None if following in seen else source.read(following)
        if overflow is None or len(overflow) < source.page_size:
            raise ValueError("broken overflow chain")
        seen.add(following)
        following = int.from_bytes(overflow[:4], "big")
        part = overflow[4 : 4 + min(usable - 4, size - got)]
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _leaf_cells(source: _Source, number: int, page: bytes) -> Iterator[tuple[int, list[Value]]]:
    start = 100 if number == 1 else 0
    if page[start] != _TABLE_LEAF:
        return
    cells = int.from_bytes(page[start + 3 : start + 5], "big")
    pointers = start + 8
    if pointers + 2 * cells > source.usable:
        return
    for index in range(cells):
        offset = int.from_bytes(page[pointers + 2 * index : pointers + 2 * index + 2], "big")
        try:
            size, at = _varint(page, offset)
            rowid, at = _varint(page, at)
            values = _record(_payload(source, page, at, size))
        except (ValueError, IndexError, UnicodeDecodeError, struct.error):
            continue
        yield rowid, values


def leaf_rows(path: str | Path) -> Iterator[tuple[int, list[Value]]]:
    """(rowid, values) of every decodable cell in the table leaf pages of ``path``.

    Rows of all tables are yielded in page order (rowids repeat across tables, and an old
    freed page can repeat a row); callers tell them apart by their values and validate them.
    """
    path = Path(path)
    with path.open("rb") as stream, path.open("rb") as lookup:
        source = _Source(path, stream, lookup)
        for number, page in source.images():
            yield from _leaf_cells(source, number, page)


__all__ = ["leaf_rows"]
