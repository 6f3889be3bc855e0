"""The explorer's first page: the script run after the login click, cold and warm.

What the server does between the click on "Log in" and the last chart sent (issue 14: the
first render stays under 3 s in the browser; the browser test prints that figure, this
benchmark the server's part of it). Each run is a fresh Python process driving the page
with Streamlit's ``AppTest``: it loads the login page (imports), logs in and times

- **charts sent**: from the click to the last chart handed to Streamlit (the login, then
  the view with empty caches: the sidebar's reads, the buckets, coverage and gaps); what
  the page does after it (the p95's raw read, the summary, downloads) no longer delays
  the charts;
- **cold**: the whole run after the click, as the first visitor after a start;
- **warm**: the next run of the same view (the caches hit), as every later rerun.

Two modes:

- **default view** (no ``--range``): the default 24 h view on a demo-sized SQLite file (3
  hosts every 60 s over 30 days ending now, the size of ``make demo``; generated each run
  since the view is relative to now, once per tree with that tree's schema; ``--db URL``
  reuses one whose newest snapshot is recent). Baseline: the same page at
  ``--baseline-ref`` (default: the commit before the first-render work), exported with
  ``git archive`` into a temporary directory. Without git or that commit (an installed
  wheel) the cold run of this tree is the only baseline.
- **fleet** (``--db URL --range FROM:TO`` [``--range ...``]): the explorer opened on the
  custom range of whole UTC days ``FROM``..``TO`` through the page's query string
  (``?range=custom&from=FROM&to=TO``, as a shared link), default metrics, one line per
  host, on an existing database such as ``bench_tiers``'s 10-host month. Baseline: the same
  page of this tree with the rollup tiers off (``METRICS_TOOLKIT_EXPLORER_TIERS=off``:
  every view reads the snapshots; the tree at ``--baseline-ref`` cannot open a database
  whose schema is newer than it). Each page is measured twice: the click at once after
  the login page (its read-ahead of the linked view, in the background, still running:
  the cold page, target charts sent <= 1 s, issue 18), and the click once that read-ahead
  has ended, as after a person types.

Both runs of a pair are interleaved, so background load hits both alike; the load average
is printed. The user ``bench`` is added to the database when missing. Ratios are this
tree / baseline: under 1 is faster.

Run: ``python -m benchmarks.bench_explorer [--repeat 3] [--baseline-ref REF] [--strict]``
     ``python -m benchmarks.bench_explorer --db postgresql://postgres@127.0.0.1:5432/\
mt_bench_fleet10 --range 2026-11-30:2026-11-30 --range 2026-11-01:2026-11-30``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks.harness import Report
from metrics_toolkit.explorer.connection import TIERS_ENV
from metrics_toolkit.store.db import make_engine, mask_url, resolve_url, session_scope
from metrics_toolkit.store.users import add_user, check_password, get_user

ROOT = Path(__file__).resolve().parent.parent
#: main before the first-render work of issue 14 (the page as it was measured at 13.5 s).
BEFORE = "49674d3"
USER, PASSWORD = "bench", "bench password 14"
#: The first page's target on the 10-host month (issue 18), click to charts sent.
TARGET_S = 1.0

# Runs in a fresh interpreter with PYTHONPATH at the tree measured: only Streamlit here.
# The page's module is imported by the first run (the login page); its draw_charts is then
# wrapped to note when the last chart was handed to Streamlit (sent to the browser).
CHILD = r"""
import json, sys, threading, time
from streamlit.testing.v1 import AppTest

app, user, password, params, wait = sys.argv[1:6]
at = AppTest.from_file(app, default_timeout=600)
at.query_params = json.loads(params)
started = time.perf_counter()
at.run()
login_page = time.perf_counter() - started
if wait == "wait":  # a person types for seconds: the login page's warm-up ends meanwhile
    for thread in threading.enumerate():
        if thread.name == "explorer-warm-up":
            thread.join()
warm_up = time.perf_counter() - started
sent = []
page = sys.modules.get("metrics_toolkit.explorer.app")
if page is not None and hasattr(page, "draw_charts"):
    draw = page.draw_charts
    def timed(*args, **kwargs):
        out = draw(*args, **kwargs)
        sent.append(time.perf_counter())
        return out
    page.draw_charts = timed
next(f for f in at.text_input if f.label == "Username").set_value(user)
next(f for f in at.text_input if f.label == "Password").set_value(password)
next(b for b in at.button if b.label == "Log in").click()
started = time.perf_counter()
at.run()
cold = time.perf_counter() - started
charts_sent = sent[-1] - started if sent else cold
charts = len(list(at.get("vega_lite_chart"))) or len(list(at.get("arrow_vega_lite_chart")))
failed = [e.value for e in at.exception] + [e.value for e in at.error]
captions = [c.value for c in at.caption]
started = time.perf_counter()
at.run()
warm = time.perf_counter() - started
print(json.dumps({"login_page": login_page, "warm_up": warm_up, "charts_sent": charts_sent,
                  "cold": cold,
                  "warm": warm, "charts": charts, "failed": failed, "captions": captions}))
"""


# Makes the demo database in a fresh interpreter with PYTHONPATH at the tree whose schema it has.
DEMO = r"""
import sys
from datetime import datetime, timedelta
from metrics_toolkit.collect.generator import generate_history
from metrics_toolkit.store.db import make_engine, session_scope
from metrics_toolkit.store.ingest import write_snapshots
from metrics_toolkit.store.migrate import upgrade
from metrics_toolkit.store.users import add_user

url, end, days, hosts, user, password = sys.argv[1:7]
end = datetime.fromisoformat(end)
engine = make_engine(url)
upgrade(engine)
history = generate_history(
    start=end - timedelta(days=int(days)), end=end, interval="60s", hosts=int(hosts), seed=42
)
write_snapshots(engine, history)
with session_scope(engine) as session:
    add_user(session=session, username=user, password=password)
engine.dispose()
"""


@dataclass(frozen=True)
class Pass:
    """One page measured: its tree, its environment and the query string it opens with."""

    tree: Path
    env: dict[str, str]
    params: dict[str, str]
    expect: str = ""  # text the view's caption must hold (the range shown)
    wait: bool = False  # click only once the login page's warm-up thread has ended
    url: str = ""  # this pass's own database (else the run's)


def demo_database(path: Path, tree: Path, end: datetime, *, days: int = 30, hosts: int = 3) -> str:
    """A fresh SQLite file like ``make demo``'s, ending at ``end``, with the user ``bench``,
    made by the code of ``tree`` (a child process): each tree's page opens a database of
    its own schema (a page refuses a database migrated past its own code)."""
    path.unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    argv = [url, end.isoformat(), str(days), str(hosts), USER, PASSWORD]
    done = subprocess.run(
        [sys.executable, "-c", DEMO, *argv],
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=False,
        cwd=tree,
    )
    if done.returncode != 0:
        msg = f"the demo database of {tree} failed:\n{done.stderr[-2000:]}"
        raise RuntimeError(msg)
    return url


def ensure_user(url: str) -> None:
    """Add the user ``bench`` to ``url`` when missing (nothing else is written)."""
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            found = get_user(session=session, username=USER)
            if found is None:
                add_user(session=session, username=USER, password=PASSWORD)
            elif not check_password(PASSWORD, found.password_hash):
                msg = f"the user {USER!r} of this database has another password than the bench's"
                raise SystemExit(msg)
    finally:
        engine.dispose()


def parse_range(text: str) -> tuple[date, date]:
    """``FROM:TO`` (ISO days, UTC, both included) -> the two days."""
    first, sep, last = text.partition(":")
    try:
        days = date.fromisoformat(first), date.fromisoformat(last if sep else first)
    except ValueError:
        msg = f"--range {text!r}: expected FROM:TO as ISO days, e.g. 2026-11-01:2026-11-30"
        raise argparse.ArgumentTypeError(msg) from None
    return min(days), max(days)


def range_label(days: tuple[date, date]) -> str:
    first, last = days
    span = (last - first).days + 1
    return f"{first}" if first == last else f"{first}..{last} ({span} days)"


def exported(ref: str, into: Path) -> Path | None:
    """The tree of ``ref`` (``git archive``) in ``into``; None without git or that ref."""
    if shutil.which("git") is None:
        return None
    archive = into / "tree.tar"
    with archive.open("wb") as out:
        done = subprocess.run(
            ["git", "-C", str(ROOT), "archive", ref],
            stdout=out,
            stderr=subprocess.DEVNULL,
            check=False,
        )
    if done.returncode != 0:
        return None
    tree = into / "tree"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def one_run(run: Pass, url: str) -> dict[str, Any]:
    """The child's figures for one page (a fresh process, empty caches)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(run.tree),
        "METRICS_TOOLKIT_DATABASE_URL": url,
        **run.env,
    }
    if TIERS_ENV not in run.env:
        env.pop(TIERS_ENV, None)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(run.tree / "streamlit_app.py"),
            USER,
            PASSWORD,
            json.dumps(run.params),
            "wait" if run.wait else "no wait",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=run.tree,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        msg = f"the page in {run.tree} failed:\n{done.stderr[-2000:]}"
        raise RuntimeError(msg)
    result: dict[str, Any] = json.loads(lines[-1])
    if result["failed"] or result["charts"] < 1:
        msg = f"the page in {run.tree} drew {result['charts']} charts, errors: {result['failed']}"
        raise RuntimeError(msg)
    shown = [str(c).replace("\\", "") for c in result["captions"]]  # markdown escapes
    if run.expect and not any(run.expect in c for c in shown):
        msg = f"the page did not show {run.expect!r}: captions {result['captions']}"
        raise RuntimeError(msg)
    return result


def measure(passes: dict[str, Pass], url: str, repeat: int) -> dict[str, list[dict[str, Any]]]:
    """``repeat`` runs of each pass, interleaved: background load hits them alike."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in passes}
    for _ in range(repeat):
        for name, run in passes.items():
            runs[name].append(one_run(run, run.url or url))
    return runs


def median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(run[key] for run in runs))


def label_of(url: str) -> str:
    """The database as it may be printed (password masked)."""
    return mask_url(resolve_url(url))


def load_average() -> str:
    try:
        return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "load average unknown"


def default_view(args: argparse.Namespace) -> Report:
    """The default 24 h view, this tree against the page at ``--baseline-ref``."""
    with tempfile.TemporaryDirectory(prefix="bench-explorer-") as scratch:
        work = Path(scratch)
        before = exported(args.baseline_ref, work)
        end = datetime.now(UTC).replace(second=0, microsecond=0)
        if args.db:
            url = args.db
            ensure_user(url)
        else:  # the same rows in a file per tree, each with that tree's schema
            url = demo_database(work / "demo.db", ROOT, end)
        passes = {"this tree": Pass(ROOT, {}, {})}
        if before:
            theirs = args.db or demo_database(work / "demo-baseline.db", before, end)
            passes["baseline"] = Pass(before, {}, {}, url=theirs)
        loaded = load_average()
        runs = measure(passes, url, args.repeat)
    ours = runs["this tree"]
    table = Report(
        "Explorer: the default 24 h view's script run (AppTest), demo-sized SQLite database",
        note=(
            f"median of {args.repeat} fresh processes per tree, interleaved; baseline: "
            + (f"the page at {args.baseline_ref}" if before else "none (no git or ref)")
            + "; cold = login + view with empty caches, warm = the view's next run; "
            + f"{loaded} before, {load_average()} after"
        ),
    )
    cold, warm = median(ours, "cold"), median(ours, "warm")
    if before:
        theirs = runs["baseline"]
        same = f"same at {args.baseline_ref}"
        table.add(
            "cold: login click -> default view sent",
            cold,
            "s",
            baseline=(same, median(theirs, "cold")),
            max_ratio=1.0,
        )
        table.add(
            "cold: login click -> charts sent",
            median(ours, "charts_sent"),
            "s",
            baseline=(same, median(theirs, "charts_sent")),
        )
        table.add("warm: the view's next run", warm, "s", baseline=(same, median(theirs, "warm")))
        table.add(
            "login page (imports, informative)",
            median(ours, "login_page"),
            "s",
            baseline=(same, median(theirs, "login_page")),
        )
    table.add("warm beside cold (the caches)", warm, "s", baseline=("cold, this tree", cold))
    return table


def fleet(args: argparse.Namespace) -> Report:
    """Custom ranges opened by link on ``--db``, tiers on against tiers off, the click at
    once and after the login page's read-ahead."""
    url: str = args.db
    ensure_user(url)
    loaded = load_average()
    figures: list[tuple[tuple[date, date], dict[str, list[dict[str, Any]]]]] = []
    for days in args.range:
        params = {"range": "custom", "from": days[0].isoformat(), "to": days[1].isoformat()}
        expect = f"{days[0]:%Y-%m-%d} 00:00 UTC"
        off = {TIERS_ENV: "off"}
        passes = {
            "tiers": Pass(ROOT, {}, params, expect),
            "raw": Pass(ROOT, off, params, expect),
            "tiers, typed": Pass(ROOT, {}, params, expect, wait=True),
            "raw, typed": Pass(ROOT, off, params, expect, wait=True),
        }
        figures.append((days, measure(passes, url, args.repeat)))
    table = Report(
        f"Explorer: a custom range's first page, opened by link (AppTest), on {label_of(url)}",
        note=(
            f"median of {args.repeat} fresh processes per page, interleaved; default metrics, "
            f"one line per host; baseline: the same page with {TIERS_ENV}=off (no tier "
            "read). 'at once': the click right after the login page, its read-ahead of the "
            "view still running (the cold page); 'typed': the click once the read-ahead has "
            f"ended, as after a person types. {loaded} before, {load_average()} after"
        ),
    )
    for days, runs in figures:
        label = range_label(days)
        rows = (
            ("click at once -> charts sent", "charts_sent", "", TARGET_S),
            ("click after typing -> charts sent", "charts_sent", ", typed", TARGET_S),
            ("click at once -> whole run (p95, summary...)", "cold", "", None),
            ("warm rerun", "warm", "", None),
            ("login page + its read-ahead (before the click)", "warm_up", ", typed", None),
        )
        for name, key, typed, target in rows:
            table.add(
                f"{label}: {name}",
                median(runs["tiers" + typed], key),
                "s",
                baseline=("same, tiers off", median(runs["raw" + typed], key)),
                max_value=target,
            )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per page")
    parser.add_argument("--baseline-ref", default=BEFORE, help="git ref of the baseline page")
    parser.add_argument("--db", help="use this database (the user 'bench' is added if missing)")
    parser.add_argument(
        "--range",
        type=parse_range,
        action="append",
        metavar="FROM:TO",
        help="open this custom range of UTC days (repeatable; needs --db): fleet mode",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.range and not args.db:
        parser.error("--range needs --db (a database holding those days)")

    table = fleet(args) if args.range else default_view(args)
    table.print(Console() if sys.stdout.isatty() else Console(width=140))
    table.write_json(f"benchmarks/results/explorer{'_fleet' if args.range else ''}.json")
    return table.exit_code(strict=args.strict)


if __name__ == "__main__":
    sys.exit(main())
