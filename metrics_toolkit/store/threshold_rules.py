"""Breach rules of ``report.thresholds``: parsed and validated without the report stack.

:mod:`metrics_toolkit.reporting.breaches` detects episodes with these rules; ``config set
report.thresholds`` validates with the same parser (:func:`parse_rules`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from metrics_toolkit.errors import ConfigError, InvalidInterval
from metrics_toolkit.intervals import Interval


@dataclass(frozen=True)
class ThresholdRule:
    """A breach rule from config ``report.thresholds``: ``metric`` above ``above``.

    ``pattern`` may hold ``*`` segments (``disk.mounts.*.usage_percent``). ``for_seconds``
    is how long it must hold (0: any bucket whose maximum is above counts).
    """

    pattern: str
    above: float
    for_seconds: int


RULE_FORM = 'a number, or an object such as {"above": 90, "for": "5min"}'


def parse_rules(config: Mapping[str, Any]) -> list[ThresholdRule]:
    """Rules from the ``report.thresholds`` config value; a clear ConfigError otherwise."""
    if not isinstance(config, Mapping):
        raise ConfigError(f"report.thresholds must be an object of rules, each {RULE_FORM}.")
    rules = []
    for pattern, rule in config.items():
        rules.append(parse_rule(str(pattern), rule))
    return rules


def parse_rule(pattern: str, rule: Any) -> ThresholdRule:
    """One rule: ``90`` or ``{"above": 90, "for": "5min"}`` (``for`` optional)."""
    where = f"report.thresholds[{pattern!r}]"
    if not pattern or pattern.startswith("_rollup"):
        raise ConfigError(f"{where}: expected a metric path such as 'cpu.usage_percent'.")
    if _is_number(rule):
        return ThresholdRule(pattern, float(rule), 0)
    if not isinstance(rule, Mapping) or not _is_number(rule.get("above")):
        raise ConfigError(f"{where} must be {RULE_FORM} (got {rule!r}).")
    unknown = sorted(set(rule) - {"above", "for"})
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; use above and for.")
    hold = rule.get("for")
    seconds = 0
    if hold is not None:
        try:
            seconds = Interval.parse(hold).seconds
        except InvalidInterval as error:
            raise ConfigError(f"{where}: 'for': {error}") from None
    return ThresholdRule(pattern, float(rule["above"]), seconds)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


__all__ = ["RULE_FORM", "ThresholdRule", "parse_rule", "parse_rules"]
