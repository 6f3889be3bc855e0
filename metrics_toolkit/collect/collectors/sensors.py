"""Sensors: temperatures, fans and battery, where the machine has them (``sensors``).

Shape: ``temperatures.<chip>.<label>.current_celsius`` (and ``high_celsius``,
``critical_celsius`` when the chip declares them), ``fans.<chip>.<label>.speed_rpm``,
``battery.charge_percent``, ``battery.remaining_seconds`` (omitted when unknown or unlimited),
``battery.plugged_in`` (1 on mains, 0 on battery). Unlabelled sensors are named after their
position (``temp1``, ``fan1``); repeated labels get ``_2``, ``_3``. A machine without sensors
(most VMs), or a platform without the API, gives no ``sensors`` section at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import psutil

from metrics_toolkit.catalog import MetricSpec, specs_under
from metrics_toolkit.collect.collectors.base import Section, clean_key, finite, unique_key

log = logging.getLogger(__name__)


class SensorsCollector:
    """The ``sensors`` section (absent when the machine reports nothing)."""

    FIELDS: ClassVar[tuple[MetricSpec, ...]] = specs_under("sensors")

    def collect(self) -> dict[str, Section]:
        section: Section = {}
        temperatures = group_readings(
            _read("sensors_temperatures"),
            "temp",
            {"current": "current_celsius", "high": "high_celsius", "critical": "critical_celsius"},
        )
        if temperatures:
            section["temperatures"] = temperatures
        fans = group_readings(_read("sensors_fans"), "fan", {"current": "speed_rpm"})
        if fans:
            section["fans"] = fans
        battery = battery_readings(_read("sensors_battery"))
        if battery:
            section["battery"] = battery
        return {"sensors": section} if section else {}


def _read(api: str) -> Any:
    """Call ``psutil.<api>()``; ``None`` where the platform lacks it."""
    try:
        reader: Callable[[], Any] = getattr(psutil, api)
        return reader()
    except (AttributeError, NotImplementedError) as error:
        log.debug("psutil.%s unavailable: %s", api, error)
        return None


def group_readings(
    chips: dict[str, Iterable[Any]] | None, unnamed: str, leaves: dict[str, str]
) -> dict[str, dict[str, Section]]:
    """``{chip: {label: {leaf: value}}}`` from psutil's ``{chip: [entries with .label]}``.

    Pure. ``leaves`` maps entry fields to leaf names (``{"current": "speed_rpm"}``); missing
    or non-finite readings are left out, and so are chips with no reading at all.
    """
    grouped: dict[str, dict[str, Section]] = {}
    for chip, entries in (chips or {}).items():
        labels: set[str] = set()
        readings: dict[str, Section] = {}
        for position, entry in enumerate(entries, start=1):
            values = {
                leaf: value
                for field, leaf in leaves.items()
                if (value := finite(getattr(entry, field, None))) is not None
            }
            if values:
                readings[unique_key(entry.label or f"{unnamed}{position}", labels)] = values
        if readings:
            grouped[clean_key(chip)] = readings
    return grouped


def battery_readings(battery: Any) -> Section:
    """The ``battery`` leaves from ``psutil.sensors_battery()`` (``None``: no battery). Pure."""
    if battery is None:
        return {}
    section: Section = {}
    charge = finite(battery.percent)
    if charge is not None:
        section["charge_percent"] = charge
    seconds = finite(battery.secsleft)
    if seconds is not None and seconds >= 0:  # POWER_TIME_UNKNOWN/UNLIMITED are negative
        section["remaining_seconds"] = seconds
    if battery.power_plugged is not None:
        section["plugged_in"] = int(battery.power_plugged)
    return section
