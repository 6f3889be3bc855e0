"""Reports over raw, rolled-up and mixed ranges give the same exact figures.

Two days of history are reported on, then the archive policy rolls the older day up to
1 h buckets (the real runner, on SQLite and PostgreSQL), and the same report is built
again: means, extremes, sample counts and completeness must not move; the rolled-up
stretch must be shown with its width.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from metrics_toolkit.archive.runner import run_archive
from metrics_toolkit.collect.generator import generate_history
from metrics_toolkit.reporting import build_report, render_json, render_pdf
from metrics_toolkit.store.ingest import write_snapshots
from metrics_toolkit.store.policies import update_policy

END = datetime(2026, 3, 4, tzinfo=UTC)
START = END - timedelta(days=2)


def _figures(data: dict[str, Any]) -> dict[tuple[str, str], tuple[Any, ...]]:
    return {
        (r["metric"], r["host"]): (r["samples"], r["mean"], r["min"], r["max"])
        for r in data["summary"]
    }


def test_mixed_and_rolled_up_ranges_keep_the_exact_figures(engine: Engine, tmp_path: Path) -> None:
    rows = [
        row
        for chunk in generate_history(start=START, end=END, interval="60s", hosts=2, seed=21)
        for row in chunk
    ]
    write_snapshots(engine, rows)
    before = render_json(build_report(engine, start=START, end=END))
    day_one = render_json(build_report(engine, start=START, end=START + timedelta(days=1)))

    with Session(engine) as session:
        update_policy(session=session, downsample_after_days=1, downsample_interval="1h")
        session.commit()
    result = run_archive(engine, now=END, archive_path=tmp_path / "archive")
    assert result.total("rollups_written") > 0

    mixed = build_report(engine, start=START, end=END)
    after = render_json(mixed)
    assert after["detail_interval"] == before["detail_interval"] == "1min"
    for key, (samples, mean, low, high) in _figures(before).items():
        got = _figures(after)[key]
        assert got[0] == samples and got[2] == low and got[3] == high
        assert got[1] == pytest.approx(mean, rel=1e-9)
    middle = START + timedelta(days=1)
    for old, new in zip(before["completeness"], after["completeness"], strict=True):
        host = new["host"]
        assert (new["expected"], new["received"]) == (old["expected"], old["received"])
        on_day_one = [ts for ts, _, doc in rows if doc["host"] == host and ts < middle]
        assert new["rolled_up"] == [
            {
                "interval": "1h",
                "start": START.isoformat(),
                "end": middle.isoformat(),
                "rows": 24,
                "samples": len(on_day_one),
            }
        ]
        # The raw day keeps its gaps to the minute; in the rolled-up day a gap is an hour
        # missing more than one of its 60 samples and more than a tenth of them (a partial
        # gap at the stored resolution, with the samples missing); touching gaps merge.
        per_hour = {START + timedelta(hours=h): 0 for h in range(24)}
        for ts in on_day_one:
            per_hour[ts.replace(minute=0, second=0, microsecond=0)] += 1
        pieces = [
            [hour, hour + timedelta(hours=1), 60 - n]
            for hour, n in sorted(per_hour.items())
            if 60 - n > 1 and 60 - n > 6
        ]
        pieces += [
            [datetime.fromisoformat(g["start"]), datetime.fromisoformat(g["end"]), g["missing"]]
            for g in old["gaps"]
            if datetime.fromisoformat(g["start"]) >= middle
        ]
        merged: list[list[Any]] = []
        for piece in pieces:
            if merged and merged[-1][1] >= piece[0]:
                merged[-1][1], merged[-1][2] = piece[1], merged[-1][2] + piece[2]
            else:
                merged.append(piece)
        expected = [(a.isoformat(), b.isoformat(), missing) for a, b, missing in merged]
        got = [(g["start"], g["end"], g["missing"]) for g in new["gaps"]]
        assert got == expected
    assert any("rolled up" in note for note in after["notes"])
    assert mixed.detail["_row", "seconds"].max() == 3600.0

    rolled = render_json(build_report(engine, start=START, end=START + timedelta(days=1)))
    for key, (samples, mean, low, high) in _figures(day_one).items():
        got = _figures(rolled)[key]
        assert (got[0], got[2], got[3]) == (samples, low, high)
        assert got[1] == pytest.approx(mean, rel=1e-9)
    assert render_pdf(mixed).startswith(b"%PDF")
