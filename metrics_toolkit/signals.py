"""Graceful stop on SIGTERM / SIGINT for long-running loops (the collector, the scheduler)."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType


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
