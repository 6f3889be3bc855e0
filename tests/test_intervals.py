from __future__ import annotations

from datetime import timedelta

import pytest

from metrics_toolkit.errors import InvalidInterval
from metrics_toolkit.intervals import Interval, parse_interval


@pytest.mark.parametrize(
    ("text", "seconds", "canonical"),
    [
        ("10s", 10, "10s"),
        ("5min", 300, "5min"),
        ("5T", 300, "5min"),
        ("1h", 3600, "1h"),
        ("12h", 43200, "12h"),
        ("1D", 86400, "1D"),
        ("1d", 86400, "1D"),
        ("7D", 7 * 86400, "7D"),
        ("3600s", 3600, "1h"),
        (" 90s ", 90, "90s"),
    ],
)
def test_parse_accepts_pandas_style(text: str, seconds: int, canonical: str) -> None:
    interval = parse_interval(text)
    assert interval.seconds == seconds
    assert str(interval) == canonical
    assert interval.pandas_rule == f"{seconds}s"
    assert interval.timedelta == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["1x", "0s", "-5min", "7min", "abc", "", "1.5h", "25h", "1W", "5"])
def test_parse_rejects_with_accepted_forms(text: str) -> None:
    with pytest.raises(InvalidInterval) as info:
        parse_interval(text)
    message = str(info.value)
    assert repr(text) in message
    assert "10s, 5min, 1h, 1D" in message


def test_non_string_rejected() -> None:
    with pytest.raises(InvalidInterval):
        Interval.parse(10)  # type: ignore[arg-type]


def test_timedelta_and_nesting() -> None:
    assert Interval.parse(timedelta(minutes=5)) == Interval(300)
    assert Interval.parse("5min").divides(Interval.parse("1h"))
    assert not Interval.parse("45min").divides(Interval.parse("1h"))
    with pytest.raises(InvalidInterval):
        Interval.parse(timedelta(milliseconds=1500))
