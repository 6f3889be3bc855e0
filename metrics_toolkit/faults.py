"""Fault injection for the crash tests: a real SIGKILL of this process at a named point.

A module names its points (``archive``: ``after_delete``, ``before_commit``...; ``spool``:
``after_write``) and calls :meth:`FaultPoints.hit` there. Nothing happens unless the
module's environment variable names the point: ``after_delete`` kills at the first pass,
``after_delete@3`` at the third. Tests set it on a child process to prove that a run killed
at that moment loses and doubles nothing.
"""

from __future__ import annotations

import os
import signal
from collections import Counter


class FaultPoints:
    """The fault points of one module, armed by the environment variable ``env``."""

    def __init__(self, env: str) -> None:
        self.env = env
        self._hits: Counter[str] = Counter()

    def hit(self, point: str) -> None:
        """SIGKILL this process when ``env`` names ``point`` (at its Nth pass with ``@N``)."""
        wanted = os.environ.get(self.env)
        if not wanted:
            return
        name, _, nth = wanted.partition("@")
        if name != point:
            return
        self._hits[point] += 1
        if self._hits[point] >= int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)
