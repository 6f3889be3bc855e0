"""Graceful stop on SIGTERM / SIGINT for long-running loops (the collector, the scheduler).

:class:`StopFlag` is what a signal sets; :func:`on_stop_signal` wires the signals to it.
"""

from __future__ import annotations

import logging
import os
import select
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from types import FrameType


class StopFlag:
    """A stop request that a signal handler can raise safely and that wakes a sleeper.

    The one stop flag of the long-running loops: the collector daemon sleeps on it between
    ticks, the scheduler's ``serve`` loop waits on it. Close it when done (two descriptors).

    ``threading.Event.set`` takes a lock, which a signal handler must not do while the main
    thread may hold it; this sets a flag and writes one byte to a pipe instead.
    """

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        self._descriptors: tuple[int, ...] = (self._read, self._write)
        os.set_blocking(self._write, False)
        self._set = False

    def set(self) -> None:
        self._set = True
        with suppress(OSError):  # a full or closed pipe: the flag is enough
            os.write(self._write, b"\0")

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds or until set; True when set."""
        if not self._set:
            with suppress(OSError, ValueError):
                select.select([self._read], [], [], max(0.0, timeout))
        return self._set

    def close(self) -> None:
        descriptors, self._descriptors = self._descriptors, ()
        for descriptor in descriptors:
            with suppress(OSError):
                os.close(descriptor)


@contextmanager
def on_stop_signal(
    request_stop: Callable[[], None], message: str, log: logging.Logger
) -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT call ``request_stop`` (after logging ``message``).

    A second signal gets the default behaviour back (SIGINT raises KeyboardInterrupt,
    SIGTERM ends the process), so a stuck shutdown can still be interrupted. The previous
    handlers are restored on exit. Main thread only.
    """
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.getsignal(sig) for sig in signals}

    def handle(signum: int, frame: FrameType | None) -> None:
        log.log(logging.WARNING, message, signal.strsignal(signum))
        request_stop()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    for sig in signals:
        signal.signal(sig, handle)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
