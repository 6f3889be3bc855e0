"""The explorer's main query in a loop, as its own process, while a load test writes.

``python -m tests.load.explorer_loop URL SECONDS OUT.json [PAUSE]`` builds the explorer's
default view (last hour, all hosts pooled, the headline metrics: what the app shows on
opening) with :func:`metrics_toolkit.explorer.view.build_view` again and again for
``SECONDS``, ``PAUSE`` seconds apart (default 0.5: a busy dashboard, not a tight loop that
would only measure the CPU it takes from the collectors on a small machine), then writes how
many views it built, how long each took, the samples each counted and every error (an
error does not end the loop: the test fails on it afterwards).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from metrics_toolkit.explorer.query import DEFAULT_METRICS, ViewQuery, resolve_range
from metrics_toolkit.explorer.view import build_view
from metrics_toolkit.store.db import make_engine


def run(url: str, seconds: float, pause: float = 0.5) -> dict[str, object]:
    engine = make_engine(url)
    durations: list[float] = []
    samples: list[int] = []
    errors: list[str] = []
    until = time.monotonic() + seconds
    try:
        while time.monotonic() < until:
            start, end = resolve_range("1h")
            query = ViewQuery(start, end, metrics=DEFAULT_METRICS)
            began = time.perf_counter()
            try:
                view = build_view(engine, query)
            except Exception as error:  # recorded and reported: the test fails on any
                errors.append(f"{type(error).__name__}: {error}"[:500])
                time.sleep(0.2)
                continue
            durations.append(time.perf_counter() - began)
            samples.append(view.samples)
            time.sleep(pause)
    finally:
        engine.dispose()
    return {"views": len(durations), "seconds": durations, "samples": samples, "errors": errors}


def main(argv: list[str]) -> int:
    url, seconds, out, *pause = argv
    result = run(url, float(seconds), float(pause[0]) if pause else 0.5)
    Path(out).write_text(json.dumps(result), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
