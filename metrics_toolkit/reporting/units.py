"""Numbers for people: metric values with their catalog unit, durations, changes.

The unit symbols are the catalog's (:mod:`metrics_toolkit.catalog`): ``percent``,
``bytes``, ``bytes/s``, ``1/s``, ``count``, ``seconds``, ``ms``, ``celsius``, ``rpm``, ``load``,
``timestamp`` and ``""``. Sizes use binary prefixes (``7.81 GiB``, as ``free -h`` does);
rates use decimal ones (``1.20 MB/s``, as network tools do). Every function returns
:data:`MISSING` (an en dash) for a missing value (``None`` or ``NaN``), never ``"nan"``.

>>> format_value(8_388_608_000, "bytes")
'7.81 GiB'
>>> format_value(1_200_000, "bytes/s")
'1.20 MB/s'
>>> format_value(42.345, "percent")
'42.3 %'
>>> format_duration(3 * 3600 + 5 * 60)
'3 h 5 min'
>>> format_change(55.0, 50.0, "percent")
'+5.0 pp'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

MISSING = "–"
_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_DECIMAL = ("", "k", "M", "G", "T", "P")


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _significant(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits and thousands separators, no exponent."""
    if value == 0 or not math.isfinite(value):
        return f"{value:.0f}" if math.isfinite(value) else str(value)
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    text = f"{value:,.{decimals}f}"
    # Rounding can carry into a new digit (9.996 -> "10.00"): drop the extra decimal.
    if decimals and len(text.replace(",", "").replace("-", "").split(".")[0]) > magnitude + 1:
        text = f"{value:,.{decimals - 1}f}"
    return text


def _prefixed(value: float, base: float, prefixes: tuple[str, ...]) -> tuple[float, str]:
    scaled = value
    for prefix in prefixes[:-1]:
        if abs(scaled) < base * 0.9995:
            return scaled, prefix
        scaled /= base
    return scaled, prefixes[-1]


def format_bytes(value: float | None) -> str:
    """A size with binary prefixes: ``512 B``, ``1.50 KiB``, ``7.81 GiB``."""
    if _missing(value):
        return MISSING
    assert value is not None
    scaled, prefix = _prefixed(float(value), 1024.0, _BINARY)
    if prefix == "B":
        return f"{scaled:,.0f} B"
    return f"{_significant(scaled)} {prefix}"


def format_rate(value: float | None, suffix: str) -> str:
    """A per-second value with decimal prefixes: ``1.20 MB/s``, ``3.4 k/s``."""
    if _missing(value):
        return MISSING
    assert value is not None
    scaled, prefix = _prefixed(float(value), 1000.0, _DECIMAL)
    return f"{_significant(scaled)} {prefix}{suffix}"


def format_duration(seconds: float | None) -> str:
    """A length of time in its two largest units: ``45 s``, ``3 h 5 min``, ``2 d 4 h``."""
    if _missing(seconds):
        return MISSING
    assert seconds is not None
    total = round(float(seconds))
    sign = "-" if total < 0 else ""
    total = abs(total)
    if total < 60:
        return f"{sign}{total} s"
    parts = []
    for size, name in ((86_400, "d"), (3600, "h"), (60, "min"), (1, "s")):
        if total >= size:
            parts.append(f"{total // size} {name}")
            total %= size
        elif parts:
            parts.append("")
        if len(parts) == 2:
            break
    return sign + " ".join(p for p in parts if p)


def format_value(value: float | None, unit: str) -> str:
    """One metric value for people, by catalog unit (see the module docstring)."""
    if _missing(value):
        return MISSING
    assert value is not None
    return _formatter(unit)(float(value))


def format_values(values: Iterable[float | None], unit: str) -> list[str]:
    """:func:`format_value` of each of ``values`` (all in ``unit``): the unit's formatter
    is chosen once, so a chart's thousands of tooltip numbers cost a loop rather than a
    dispatch each."""
    formatter = _formatter(unit)
    return [MISSING if _missing(v) else formatter(float(v)) for v in values]  # type: ignore[arg-type]


def _formatter(unit: str) -> Callable[[float], str]:
    """How a present value (a float) in ``unit`` is written."""
    return _BY_UNIT.get(unit, _significant)


def _percent(number: float) -> str:
    return f"{number:,.1f} %"


def _count(number: float) -> str:
    return f"{number:,.0f}" if abs(number) >= 100 or number.is_integer() else f"{number:.1f}"


_BY_UNIT: dict[str, Callable[[float], str]] = {
    "percent": _percent,
    "bytes": format_bytes,
    "bytes/s": lambda number: format_rate(number, "B/s"),
    "1/s": lambda number: format_rate(number, "/s"),
    "seconds": format_duration,
    "ms": lambda number: f"{_significant(number)} ms",
    "celsius": lambda number: f"{number:,.1f} °C",
    "rpm": lambda number: f"{number:,.0f} rpm",
    "load": lambda number: f"{number:,.2f}",
    "timestamp": lambda number: format_time(datetime.fromtimestamp(number, UTC)),
    "count": _count,
}


def format_change(current: float | None, previous: float | None, unit: str) -> str:
    """The change from ``previous`` to ``current``: percentage points for percent metrics,
    else a relative change (``+12 %``); ``"new"`` when there was nothing before."""
    if _missing(current) or _missing(previous):
        return MISSING
    assert current is not None and previous is not None
    if unit == "percent":
        return f"{current - previous:+.1f} pp"
    if previous == 0:
        return "±0 %" if current == 0 else "new"
    return f"{(current - previous) / abs(previous) * 100:+.0f} %"


def relative_change(current: float | None, previous: float | None) -> float | None:
    """``(current - previous) / |previous|``, or None when it is not defined."""
    if _missing(current) or _missing(previous) or previous == 0:
        return None
    assert current is not None and previous is not None
    return (current - previous) / abs(previous)


def format_time(moment: datetime | None, *, seconds: bool = False, zone: bool = True) -> str:
    """A UTC time as ``2026-01-05 14:30 UTC`` (with ``:SS`` when asked; without the zone
    for table cells whose header says UTC)."""
    if moment is None:
        return MISSING
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    text = moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{text} UTC" if zone else text


def format_count(value: float | None) -> str:
    """A whole count with thousands separators: ``1,234,567``."""
    if _missing(value):
        return MISSING
    assert value is not None
    return f"{round(float(value)):,}"


def format_ratio(value: float | None) -> str:
    """A 0..1 ratio as a percentage: ``99.2 %``."""
    if _missing(value):
        return MISSING
    assert value is not None
    return f"{float(value) * 100:.1f} %"


__all__ = [
    "MISSING",
    "format_bytes",
    "format_change",
    "format_count",
    "format_duration",
    "format_rate",
    "format_ratio",
    "format_time",
    "format_value",
    "relative_change",
]
