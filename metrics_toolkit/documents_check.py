"""Shape check for snapshot documents, shared by real collection and the history generator.

A valid document is a dict with a non-empty string ``host``; its values are dicts (with
string keys free of ``.``, so dotted metric paths stay unambiguous), strings, finite numbers,
booleans, ``None``, or lists of such dicts (labels such as ``processes.top_cpu``). No psutil,
no database: ingest and tests can call it on anything.
"""

from __future__ import annotations

import math
from typing import Any

from metrics_toolkit.errors import InvalidSnapshot

MAX_DEPTH = 16


def validate_document(doc: Any) -> None:
    """Raise :class:`InvalidSnapshot` naming the first offending path, else return ``None``.

    Checks: ``doc`` is a dict; ``doc["host"]`` is a non-empty string; every key is a
    non-empty string without ``.``; every value is a dict, a string, a finite int/float,
    a bool, ``None`` or a list of dicts; nesting is at most :data:`MAX_DEPTH` levels.
    """
    if not isinstance(doc, dict):
        msg = f"Invalid snapshot: expected a JSON object (dict), got {type(doc).__name__}."
        raise InvalidSnapshot(msg)
    host = doc.get("host")
    if not isinstance(host, str) or not host:
        msg = f"Invalid snapshot: 'host' must be a non-empty string, got {host!r}."
        raise InvalidSnapshot(msg)
    _check_dict(doc, "", 1)


def _check_dict(node: dict[Any, Any], path: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        msg = (
            f"Invalid snapshot: {path or 'the document'} is nested deeper than {MAX_DEPTH} levels."
        )
        raise InvalidSnapshot(msg)
    for key, value in node.items():
        if not isinstance(key, str) or not key or "." in key:
            msg = (
                f"Invalid snapshot: key {key!r} under {path or 'the top level'} must be a "
                "non-empty string without '.' (dots separate metric path segments)."
            )
            raise InvalidSnapshot(msg)
        _check_value(value, f"{path}.{key}" if path else key, depth)


def _check_value(value: Any, path: str, depth: int) -> None:
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            msg = f"Invalid snapshot: {path} is {value!r}; numbers must be finite."
            raise InvalidSnapshot(msg)
        return
    if isinstance(value, dict):
        _check_dict(value, path, depth + 1)
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                msg = (
                    f"Invalid snapshot: {path}[{index}] is {type(item).__name__}; "
                    "lists may only hold objects (dicts)."
                )
                raise InvalidSnapshot(msg)
            _check_dict(item, f"{path}[{index}]", depth + 1)
        return
    msg = (
        f"Invalid snapshot: {path} is {type(value).__name__}; expected an object, a string, "
        "a finite number, a boolean, null or a list of objects."
    )
    raise InvalidSnapshot(msg)
