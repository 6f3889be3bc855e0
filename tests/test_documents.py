"""Flattening snapshot documents to dotted metric paths, and back."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics_toolkit.documents import (
    flatten,
    is_metric_value,
    join_path,
    labels,
    set_path,
    split_path,
    strip_metrics,
    unflatten,
)
from metrics_toolkit.errors import InvalidSnapshot

SEED_LIKE: dict[str, Any] = {
    "host": "web-1",
    "cpu": {"usage_percent": 12.5, "count": 4, "per_cpu": {"0": 10, "1": 15.0}},
    "memory": {"used_bytes": 1024, "swap": {"usage_percent": 0}},
    "processes": {"top_cpu": [{"name": "python", "pid": 1, "cpu_percent": 3.0}]},
    "sensors": None,
    "online": True,
}


def test_flatten_keeps_numeric_leaves_as_floats_in_document_order() -> None:
    flat = flatten(SEED_LIKE)
    assert list(flat) == [
        "cpu.usage_percent",
        "cpu.count",
        "cpu.per_cpu.0",
        "cpu.per_cpu.1",
        "memory.used_bytes",
        "memory.swap.usage_percent",
    ]
    assert flat["cpu.count"] == 4.0
    assert all(type(value) is float for value in flat.values())


def test_labels_are_the_non_numeric_leaves() -> None:
    assert labels(SEED_LIKE) == {
        "host": "web-1",
        "processes.top_cpu": SEED_LIKE["processes"]["top_cpu"],
        "sensors": None,
        "online": True,
    }


@pytest.mark.parametrize(
    ("value", "is_metric"),
    [
        (1, True),
        (-2.5, True),
        (0, True),
        (True, False),
        (False, False),
        ("3", False),
        (None, False),
        ([1, 2], False),
        (math.nan, False),
        (math.inf, False),
        (-math.inf, False),
        (10**400, False),  # too large for a float
    ],
)
def test_what_counts_as_a_metric(value: Any, is_metric: bool) -> None:
    assert is_metric_value(value) is is_metric
    assert (flatten({"x": value}) != {}) is is_metric


def test_non_finite_numbers_are_neither_metrics_nor_labels() -> None:
    doc = {"a": math.nan, "b": math.inf, "c": 1}
    assert flatten(doc) == {"c": 1.0}
    assert labels(doc) == {}


def test_reserved_rollup_key_is_skipped_only_at_top_level() -> None:
    doc = {"_rollup": {"count": {"x": 3}}, "x": 1.5, "nested": {"_rollup": 2}}
    assert flatten(doc) == {"x": 1.5, "nested._rollup": 2.0}
    assert labels({"_rollup": {"interval": "1h"}, "host": "a"}) == {"host": "a"}
    assert strip_metrics(doc) == {}


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"a.b": 1}, "a\\.b"),
        ({"a\\b": 1}, "a\\\\b"),
        ({"a": {"b.c": {"d": 1}}}, "a.b\\.c.d"),
        ({"": 1}, ""),
        ({"": {"": 1}}, "."),
        ({"a": {"": 1}}, "a."),
        ({"\\.": 1}, "\\\\\\."),
        ({"é€😀": 1}, "é€😀"),
    ],
)
def test_keys_with_dots_and_backslashes_are_escaped(doc: dict[str, Any], path: str) -> None:
    assert list(flatten(doc)) == [path]
    assert unflatten(flatten(doc)) == doc


@pytest.mark.parametrize("path", ["a\\", "a\\b", "\\x.y"])
def test_malformed_escapes_are_rejected(path: str) -> None:
    with pytest.raises(InvalidSnapshot, match="must be followed by"):
        split_path(path)


@pytest.mark.parametrize(
    "flat",
    [{"a": 1.0, "a.b": 2.0}, {"a.b": 2.0, "a": 1.0}, {"a.b.c": 1.0, "a.b": 2.0}],
)
def test_unflatten_rejects_a_path_that_is_both_leaf_and_parent(flat: dict[str, float]) -> None:
    with pytest.raises(InvalidSnapshot, match="Conflicting document shape"):
        unflatten(flat)


def test_set_path_replace_overwrites_conflicting_labels() -> None:
    doc: dict[str, Any] = {"a": "label", "b": {"c": "x"}}
    set_path(doc, "a.x", 1.0, replace=True)
    set_path(doc, "b", 2.0, replace=True)
    assert doc == {"a": {"x": 1.0}, "b": 2.0}


@pytest.mark.parametrize("doc", [[1, 2], "text", None, 3])
def test_a_document_must_be_an_object(doc: Any) -> None:
    with pytest.raises(InvalidSnapshot, match="expected a JSON object"):
        flatten(doc)


def test_keys_must_be_strings() -> None:
    with pytest.raises(InvalidSnapshot, match="is not a string"):
        flatten({"cpu": {1: 2.0}})


def test_strip_metrics_keeps_label_structure_and_does_not_touch_input() -> None:
    before = copy.deepcopy(SEED_LIKE)
    stripped = strip_metrics(SEED_LIKE)
    assert stripped == {
        "host": "web-1",
        "processes": {"top_cpu": SEED_LIKE["processes"]["top_cpu"]},
        "sensors": None,
        "online": True,
    }
    assert before == SEED_LIKE


# Hostile keys: dots, escapes, quotes, SQL-ish text, unicode, the empty string.
keys = st.one_of(
    st.sampled_from(["", ".", "..", "\\", "\\.", "a.b", "'", '"', "--", ";", "<script>", "é"]),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=8),
)
leaves = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=3),
)
documents = st.recursive(
    leaves, lambda children: st.dictionaries(keys, children, max_size=5), max_leaves=25
).filter(lambda d: isinstance(d, dict))


def numeric_part(doc: dict[str, Any], *, top: bool = True) -> dict[str, Any]:
    """The finite non-bool numbers of ``doc`` as floats; empty branches dropped."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if top and key == "_rollup":
            continue
        if isinstance(value, dict):
            inner = numeric_part(value, top=False)
            if inner:
                out[key] = inner
        elif isinstance(value, int | float) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:
                continue
            if math.isfinite(number):
                out[key] = number
    return out


@settings(max_examples=150, deadline=None)
@given(documents)
def test_unflatten_inverts_flatten_for_hostile_keys(doc: dict[str, Any]) -> None:
    before = copy.deepcopy(doc)
    flat = flatten(doc)
    assert unflatten(flat) == numeric_part(doc)
    assert flatten(unflatten(flat)) == flat  # stable: same paths, same order
    assert doc == before


@settings(max_examples=150, deadline=None)
@given(st.lists(keys, min_size=1, max_size=6))
def test_split_path_inverts_join_path(parts: list[str]) -> None:
    assert split_path(join_path(parts)) == tuple(parts)
