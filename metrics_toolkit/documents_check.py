"""Checks on snapshot documents: the collectors' shape check and the write-time limits.

:func:`validate_document` is the strict shape check shared by real collection and the
history generator. A valid document is a dict with a non-empty string ``host``; its values
are dicts (with string keys free of ``.``, so dotted metric paths stay unambiguous),
strings, finite numbers of magnitude at most :data:`MAX_MAGNITUDE`, booleans, ``None``, or
lists of such dicts (labels such as ``processes.top_cpu``).

:func:`storage_problem` is the lighter check every write applies
(:func:`metrics_toolkit.store.ingest.prepare_row`). It refuses only what no reader could use
correctly, so that whatever is stored can be read back, rolled up and reported:

- a number of magnitude above :data:`MAX_MAGNITUDE` (``1e300``): the sum of a bucket of
  such values overflows a float, and an integer beyond ``1.8e308`` is no float at all;
- a string or key holding a lone UTF-16 surrogate (``"\\ud800"``), which is not Unicode:
  PostgreSQL refuses it and SQLite stores bytes that no later read can decode;
- a ``"_rollup"`` key that is not a rollup (rows holding it are read by their statistics).

No psutil, no database: ingest and tests can call both on anything.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from metrics_toolkit.errors import InvalidInterval, InvalidSnapshot
from metrics_toolkit.intervals import Interval

MAX_DEPTH = 16
#: Largest magnitude a stored number may have: sums of up to 1e8 such values stay finite.
MAX_MAGNITUDE = 1e300
# In compact JSON text, signs of a number above
# MAX_MAGNITUDE or of a lone surrogate: a float exponent of 300 or more, a run of 301
# digits, a surrogate escape. Digits are found by mapping them all to "0" (C speed).
_BIG_EXPONENT = re.compile(r"e\+3\d\d")
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_INTEGER = b"0" * 301
_ROLLUP_MAPS = ("count", "sum", "min", "max", "first", "last", "first_time", "last_time")


def validate_document(doc: Any) -> None:
    """Raise :class:`InvalidSnapshot` naming the first offending path, else return ``None``.

    Checks: ``doc`` is a dict; ``doc["host"]`` is a non-empty string; every key is a
    non-empty string without ``.``; every value is a dict, a string, a finite int/float of
    magnitude at most 1e300, a bool, ``None`` or a list of dicts; nesting is at most
    :data:`MAX_DEPTH` levels.
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
    if value is None or isinstance(value, str | bool):
        return
    if isinstance(value, float) and not math.isfinite(value):
        msg = f"Invalid snapshot: {path} is {value!r}; numbers must be finite."
        raise InvalidSnapshot(msg)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if abs(value) > MAX_MAGNITUDE:
            msg = f"Invalid snapshot: {path} is {_shown(value)}; numbers must be at most 1e300."
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


def storage_problem(doc: Mapping[str, Any], text: str) -> str | None:
    """Why ``doc`` (serialised as the compact JSON ``text``) must not be stored, or None.

    Cheap on ordinary documents (a few scans of ``text`` at C speed, about 10 % of the
    cost of serialising it); the document is walked only when the text shows a huge
    number or a surrogate escape.
    """
    if "_rollup" in doc:
        problem = _rollup_problem(doc["_rollup"])
        if problem is not None:
            return problem
    if not _suspect(text):
        return None
    return _walk_problem(doc, "")


def _suspect(text: str) -> bool:
    if "\\ud" in text:  # an escaped surrogate (JSON written with ensure_ascii)
        return True
    if "e+3" in text and _BIG_EXPONENT.search(text):
        return True
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError:  # a raw lone surrogate (JSON written without ensure_ascii)
        return True
    return _LONG_INTEGER in encoded.translate(_DIGITS_AS_ZERO)


def _rollup_problem(meta: Any) -> str | None:
    if not isinstance(meta, Mapping):
        return "'_rollup' is reserved for rolled-up rows and must be an object"
    interval = meta.get("interval")
    try:
        if not isinstance(interval, str):
            raise InvalidInterval("not a string")
        Interval.parse(interval)
    except InvalidInterval:
        return (
            f"'_rollup.interval' must be a width of the rollup rule, got {meta.get('interval')!r}"
        )
    samples = meta.get("samples")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 0:
        return f"'_rollup.samples' must be a whole number >= 0, got {samples!r}"
    for stat in _ROLLUP_MAPS:
        if stat in meta and not isinstance(meta[stat], Mapping):
            return f"'_rollup.{stat}' must be an object shaped like the document"
    return None


def _walk_problem(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return _text_problem(value, path or "a value")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if abs(value) > MAX_MAGNITUDE:
            where = path or "a value"
            return f"{where} is {_shown(value)}; numbers must be at most 1e300 in magnitude"
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and (problem := _text_problem(key, f"key {where!r}")):
                return problem
            if (problem := _walk_problem(item, where)) is not None:
                return problem
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if (problem := _walk_problem(item, f"{path}[{index}]")) is not None:
                return problem
    return None


def _text_problem(text: str, where: str) -> str | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return f"{where} holds a lone UTF-16 surrogate, which is not valid Unicode text"
    return None


def _shown(number: float) -> str:
    """A huge number in a message (``repr`` of an int over 4300 digits raises)."""
    if isinstance(number, int):
        return f"an integer of {number.bit_length()} bits"
    return f"{number:.3g}"
