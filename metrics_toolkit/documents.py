"""Snapshot documents: flatten nested metric documents to dotted paths, and back.

A snapshot's ``metric_data`` is a nested JSON document::

    {"host": "web-1", "cpu": {"usage_percent": 12.5}, "processes": {"top_cpu": [...]}}

Its *numeric leaves* (``int`` or ``float``, never ``bool``) are metrics, named by their
dotted path (``cpu.usage_percent``). Everything else is a *label*: strings (``host``),
``None``, booleans and lists (such as the top processes).

Path escaping
    A dict key may itself contain ``.`` (or the escape character). Each key is escaped
    before joining: ``\\`` becomes ``\\\\`` and ``.`` becomes ``\\.``. So
    ``{"a.b": {"c": 1}}`` flattens to ``{"a\\.b.c": 1.0}`` and :func:`unflatten` restores
    the original keys exactly; the empty key is the empty path segment. Keys produced by
    the collectors never contain dots, so in practice paths are plain ``area.leaf`` names.

Non-finite numbers
    ``NaN`` and ``±inf`` cannot be stored in JSON (PostgreSQL's JSONB rejects them) and
    carry no measurement: they are dropped, neither metrics nor labels. Integers too large
    for a float become ``inf`` and are dropped as well.

The reserved key
    The top-level key ``"_rollup"`` of a rolled-up row (docs/design.md §4, rolled-up rows)
    holds its statistics; it is never flattened as metrics nor returned as labels.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from numbers import Real
from typing import Any

from metrics_toolkit.errors import InvalidSnapshot

#: The reserved top-level key of rolled-up rows.
ROLLUP_KEY = "_rollup"

_ESCAPE = "\\"
_SEPARATOR = "."


def host_of(doc: Mapping[str, Any]) -> str:
    """The host label of a document; ``""`` when missing or not a string."""
    host = doc.get("host")
    return host if isinstance(host, str) else ""


def host_of_any(doc: Any) -> str:
    """The host label of a stored document, ``""`` for one that is not an object (a row
    whose metric_data was written malformed)."""
    return host_of(doc) if isinstance(doc, Mapping) else ""


@lru_cache(maxsize=8192)
def escape_key(key: str) -> str:
    """One key as a path segment: ``\\`` -> ``\\\\`` and ``.`` -> ``\\.``."""
    if _ESCAPE in key or _SEPARATOR in key:
        return key.replace(_ESCAPE, _ESCAPE * 2).replace(_SEPARATOR, _ESCAPE + _SEPARATOR)
    return key


def join_path(keys: Iterable[str]) -> str:
    """The dotted path of a sequence of raw keys (each one escaped)."""
    return _SEPARATOR.join(escape_key(key) for key in keys)


@lru_cache(maxsize=8192)
def split_path(path: str) -> tuple[str, ...]:
    """The raw keys of a dotted path; the inverse of :func:`join_path`.

    Raises :class:`InvalidSnapshot` for a dangling escape (a path ending in one ``\\``) or
    an escape followed by anything but ``\\`` or ``.``.
    """
    if _ESCAPE not in path:
        return tuple(path.split(_SEPARATOR))
    keys: list[str] = []
    current: list[str] = []
    chars = iter(path)
    for char in chars:
        if char == _ESCAPE:
            escaped = next(chars, None)
            if escaped not in (_ESCAPE, _SEPARATOR):
                msg = (
                    f"Invalid metric path {path!r}: '\\' must be followed by '\\' or '.' "
                    "(paths escape these two characters inside keys)."
                )
                raise InvalidSnapshot(msg)
            current.append(escaped)
        elif char == _SEPARATOR:
            keys.append("".join(current))
            current = []
        else:
            current.append(char)
    keys.append("".join(current))
    return tuple(keys)


def is_metric_value(value: Any) -> bool:
    """True for a finite real number that is not a bool (the definition of a metric leaf)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _walk(doc: Mapping[str, Any], prefix: str, top: bool) -> Iterator[tuple[str, Any]]:
    for key, value in doc.items():
        if not isinstance(key, str):
            msg = f"Invalid snapshot document: key {key!r} is not a string (JSON keys are)."
            raise InvalidSnapshot(msg)
        if top and key == ROLLUP_KEY:
            continue
        path = prefix + escape_key(key) if prefix else escape_key(key)
        if isinstance(value, Mapping):
            yield from _walk(value, path + _SEPARATOR, False)
        else:
            yield path, value


def _check_document(doc: Any) -> Mapping[str, Any]:
    if not isinstance(doc, Mapping):
        msg = f"Invalid snapshot document: expected a JSON object (dict), got {type(doc).__name__}."
        raise InvalidSnapshot(msg)
    return doc


def flatten(doc: Mapping[str, Any]) -> dict[str, float]:
    """The numeric leaves of ``doc`` as ``{dotted_path: float}``, in document order.

    Only finite ``int``/``float`` leaves are kept (``bool`` is a label); nested dicts are
    walked depth first, so the order is stable for a given document. Keys are escaped
    (see the module docstring), so ``unflatten(flatten(doc))`` is the numeric part of
    ``doc`` with ints as floats. The top-level ``"_rollup"`` key is skipped.

    >>> flatten({"host": "a", "cpu": {"usage_percent": 5, "busy": True}})
    {'cpu.usage_percent': 5.0}
    """
    out: dict[str, float] = {}
    _flatten_into(out, _check_document(doc), "", True)
    return out


def _flatten_into(out: dict[str, float], doc: Mapping[str, Any], prefix: str, top: bool) -> None:
    # The hot path of every rollup: exact type checks first, the generic ones last, and
    # literals rather than module constants (cheaper to load).
    for key, value in doc.items():
        if type(key) is not str:
            if not isinstance(key, str):
                msg = f"Invalid snapshot document: key {key!r} is not a string (JSON keys are)."
                raise InvalidSnapshot(msg)
        elif top and key == "_rollup":  # ROLLUP_KEY
            continue
        if "." in key or "\\" in key:
            key = escape_key(key)
        kind = type(value)
        if kind is float:
            if value - value == 0.0:  # finite: inf - inf and nan - nan are nan
                out[prefix + key] = value
        elif kind is dict:
            _flatten_into(out, value, prefix + key + ".", False)
        elif kind is int:
            try:  # noqa: SIM105 - faster than contextlib.suppress on this hot path
                out[prefix + key] = float(value)
            except OverflowError:  # too large for a float
                pass
        elif kind is str or kind is bool or kind is list or value is None:
            pass
        elif isinstance(value, Mapping):
            _flatten_into(out, value, prefix + key + ".", False)
        elif is_metric_value(value):
            out[prefix + key] = float(value)


def labels(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The non-metric leaves of ``doc`` (strings, ``None``, bools, lists) by dotted path.

    Non-finite numbers are neither metrics nor labels; empty dicts have no leaves.

    >>> labels({"host": "a", "cpu": {"usage_percent": 5}, "tags": ["x"]})
    {'host': 'a', 'tags': ['x']}
    """
    return {
        path: value
        for path, value in _walk(_check_document(doc), "", True)
        if not _is_number(value)
    }


def strip_metrics(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A nested copy of ``doc`` holding only its labels (no metrics, no ``"_rollup"``).

    Dicts left without any leaf are dropped. Label values (lists) are shared, not copied.
    """
    return _strip(_check_document(doc), True)


def _strip(doc: Mapping[str, Any], top: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        kind = type(value)
        if kind is float or kind is int or (top and key == ROLLUP_KEY):
            continue
        if kind is dict or isinstance(value, Mapping):
            inner = _strip(value, False)
            if inner:
                out[key] = inner
        elif not _is_number(value):
            out[key] = value
    return out


def shadowed(paths: Iterable[str]) -> set[str]:
    """The paths below another path of ``paths`` (``"a.b"`` when ``"a"`` is a leaf too).

    One document cannot hold both: a leaf and an object at the same place. Malformed input
    can give them (``{"a": 1}`` in one snapshot, ``{"a": {"b": 2}}`` in another).

    >>> sorted(shadowed(["cpu.usage_percent", "cpu.usage_percent.v", "cpu.load1"]))
    ['cpu.usage_percent.v']
    """
    keys = {path: split_path(path) for path in paths}
    leaves = set(keys.values())
    return {
        path
        for path, path_keys in keys.items()
        if any(path_keys[:depth] in leaves for depth in range(1, len(path_keys)))
    }


def set_path(doc: dict[str, Any], path: str, value: Any, *, replace: bool = False) -> None:
    """Set the leaf at dotted ``path`` inside the nested ``doc`` (in place).

    Missing parents are created. When a parent or the leaf itself is already something
    else (a leaf where a dict is needed, or a dict where the leaf goes), ``replace=True``
    overwrites it and ``replace=False`` raises :class:`InvalidSnapshot`.
    """
    keys = split_path(path)
    node = doc
    for depth, key in enumerate(keys[:-1]):
        child = node.get(key)
        if not isinstance(child, dict):
            if key in node and not replace:
                where = join_path(keys[: depth + 1])
                msg = (
                    f"Conflicting document shape: {where!r} is a leaf but {path!r} "
                    "needs it to be an object."
                )
                raise InvalidSnapshot(msg)
            child = {}
            node[key] = child
        node = child
    leaf = keys[-1]
    if isinstance(node.get(leaf), dict) and not replace:
        msg = (
            f"Conflicting document shape: {path!r} is an object in one place and a leaf in another."
        )
        raise InvalidSnapshot(msg)
    node[leaf] = value


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    """The nested document of ``{dotted_path: value}``; the inverse of :func:`flatten`.

    Raises :class:`InvalidSnapshot` when a path is both a leaf and a parent (for example
    ``"a"`` and ``"a.b"``), or a path holds a dangling escape.

    >>> unflatten({"cpu.usage_percent": 5.0, "a\\\\.b": 1.0})
    {'cpu': {'usage_percent': 5.0}, 'a.b': 1.0}
    """
    doc: dict[str, Any] = {}
    for path, value in flat.items():
        set_path(doc, path, value)
    return doc
