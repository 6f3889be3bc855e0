"""Threshold breaches of a report: the rules' patterns expanded against the metrics present.

Episodes are found by :func:`metrics_toolkit.analysis.breaches.detect` (the algorithm and
its wording live there).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from metrics_toolkit.reporting.spec import expand
from metrics_toolkit.store.threshold_rules import ThresholdRule


def rule_metrics(rules: Sequence[ThresholdRule], present: Iterable[str]) -> list[str]:
    """The present metric paths some rule applies to."""
    paths = list(present)
    return list(dict.fromkeys(p for rule in rules for p, _ in expand(rule.pattern, paths)))


def checks(
    rules: Sequence[ThresholdRule], present: Iterable[str]
) -> list[tuple[ThresholdRule, str]]:
    """Every ``(rule, metric)`` pair to check: each rule with each present path it matches."""
    paths = list(present)
    return [(rule, p) for rule in rules for p, _ in expand(rule.pattern, paths)]


__all__ = ["checks", "rule_metrics"]
