"""Network rates per interface, and in total (the ``network`` section).

Every interface psutil lists is reported under ``interfaces`` (loopback included, dots in
names such as VLAN ``eth0.100`` become ``_``); the totals leave out loopback (``lo``, ``lo0``,
Windows' "Loopback Pseudo-Interface"), whose traffic never leaves the machine. A total rate
is given only when every interface it sums has a rate on this tick.
"""

from __future__ import annotations

import re
import time
from typing import ClassVar

import psutil

from metrics_toolkit.catalog import MetricSpec, specs_under
from metrics_toolkit.collect.collectors.base import DIGITS, Section, clean_key
from metrics_toolkit.collect.collectors.rates import RateTracker

_LOOPBACK = re.compile(r"^lo\d*$|loopback", re.IGNORECASE)
# psutil counter -> leaf name
_COUNTERS = {
    "bytes_sent": "bytes_sent_per_s",
    "bytes_recv": "bytes_recv_per_s",
    "packets_sent": "packets_sent_per_s",
    "packets_recv": "packets_recv_per_s",
    "errin": "errors_in_per_s",
    "errout": "errors_out_per_s",
    "dropin": "drops_in_per_s",
    "dropout": "drops_out_per_s",
}


def is_loopback(name: str) -> bool:
    """True for loopback interface names (``lo``, ``lo0``, ``Loopback Pseudo-Interface 1``)."""
    return bool(_LOOPBACK.search(name))


class NetworkCollector:
    """The ``network`` section: total rates without loopback, per interface under ``interfaces``."""

    FIELDS: ClassVar[tuple[MetricSpec, ...]] = specs_under("network")

    def __init__(self) -> None:
        self._rates = RateTracker[tuple[str, str]]()

    def collect(self) -> dict[str, Section]:
        counters = psutil.net_io_counters(pernic=True) or {}
        now = time.monotonic()
        values = {
            (nic, field): getattr(sample, field)
            for nic, sample in counters.items()
            for field in _COUNTERS
        }
        rates = self._rates.update(values, now)
        if not counters:
            return {}

        per_nic: dict[str, Section] = {}
        for nic in counters:
            entry = {
                leaf: round(rates[(nic, field)], DIGITS)
                for field, leaf in _COUNTERS.items()
                if (nic, field) in rates
            }
            if entry:
                per_nic[clean_key(nic)] = entry

        section: Section = {}
        counted = [clean_key(nic) for nic in counters if not is_loopback(nic)]
        for leaf in _COUNTERS.values():
            found = [per_nic[n][leaf] for n in counted if leaf in per_nic.get(n, {})]
            if counted and len(found) == len(counted):
                section[leaf] = round(sum(found), DIGITS)
        if per_nic:
            section["interfaces"] = per_nic
        return {"network": section} if section else {}
