"""The metrics-toolkit explorer page: ``metrics-toolkit explore`` serves this file.

Thin by design: cached loaders at the top, the layout below. Every number comes from
``metrics_toolkit`` (mostly :mod:`metrics_toolkit.explorer`); this file only decides what
goes where. The database URL comes from ``METRICS_TOOLKIT_DATABASE_URL`` (then
``DATABASE_URL``, then ``./metrics.db``). Nothing but the login form is shown before login.

The view (range, hosts, metrics, interval, aggregate...) lives in the query string
(:mod:`metrics_toolkit.explorer.links`), so a link or a reload shows it again after login;
the login survives a reload through a signed, expiring session cookie
(:mod:`metrics_toolkit.explorer.sessions`). Only admins see or reach the Admin page.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from metrics_toolkit.catalog import unit_of
from metrics_toolkit.errors import InvalidInterval, MetricsToolkitError
from metrics_toolkit.explorer import admin
from metrics_toolkit.explorer.auth import (
    Account,
    LoginThrottle,
    account,
    attempt_login,
    users_exist,
)
from metrics_toolkit.explorer.charts import Chart, view_charts
from metrics_toolkit.explorer.connection import (
    DATABASE_ERRORS,
    database_label,
    database_url,
    open_database,
    tiers_on,
)
from metrics_toolkit.explorer.downloads import to_csv_bytes, to_parquet_bytes
from metrics_toolkit.explorer.links import (
    DEFAULTS,
    LINES,
    PER,
    POOLED,
    from_params,
    linked_view,
    to_params,
)
from metrics_toolkit.explorer.markup import escape_markdown
from metrics_toolkit.explorer.query import (
    AGGREGATES,
    AUTO,
    CUSTOM,
    P95,
    PRESETS,
    RANGE_CHOICES,
    ViewQuery,
    areas,
    default_metrics,
    metric_label,
    normalize_interval,
    preset_step,
    resolve_range,
)
from metrics_toolkit.explorer.raw import RawRow, latest_snapshots
from metrics_toolkit.explorer.report import ReportFiles, build_report_files, reporting_available
from metrics_toolkit.explorer.sessions import (
    COOKIE,
    Revoked,
    cookie_script,
    issue_token,
    new_secret,
    verify_token,
)
from metrics_toolkit.explorer.units import format_duration, format_value
from metrics_toolkit.explorer.view import View, build_view, with_percentiles
from metrics_toolkit.frames.load import MetricInfo, list_hosts, list_metrics, time_range
from metrics_toolkit.store.config_keys import CONFIG_KEYS
from metrics_toolkit.store.db import describe_error

TITLE = "metrics-toolkit explorer"
TIME = "%Y-%m-%d %H:%M"
SIDEBAR_WIDTH = 380  # pixels: room for the "area > metric (unit)" chips
EXPLORER, ADMIN = "Explorer", "Admin"

# --------------------------------------------------------------------------------------
# Cached loaders: the engine per URL, data per query. Keys change when a preset's range
# moves on (every bucket width); the TTL bounds how stale a view can get meanwhile.


@st.cache_resource(show_spinner=False)
def engine_for(url: str) -> Engine:
    return open_database(url)


@st.cache_resource(show_spinner=False)
def throttle_for(url: str) -> LoginThrottle:
    return LoginThrottle()


@st.cache_resource(show_spinner=False)
def session_secret() -> bytes:
    """This server process's key for session tokens (a restart logs everyone out)."""
    return new_secret()


@st.cache_resource(show_spinner=False)
def revoked_tokens() -> Revoked:
    return Revoked()


@st.cache_data(ttl=60, show_spinner=False)
def span_of(_engine: Engine, url: str) -> tuple[datetime, datetime] | None:
    return time_range(_engine)


@st.cache_data(ttl=300, show_spinner=False)
def hosts_of(_engine: Engine, url: str, start: datetime, end: datetime) -> list[str]:
    return list_hosts(_engine, start=start, end=end)


@st.cache_data(ttl=60, show_spinner=False)
def metric_infos(_engine: Engine, url: str, host: str | None) -> list[MetricInfo]:
    return list_metrics(_engine, host=host)


@st.cache_data(ttl=300, show_spinner="Loading metrics…")
def view_of(_engine: Engine, url: str, query: ViewQuery) -> View:
    """The buckets, gaps and summary of a view, without percentiles (drawn first)."""
    return build_view(_engine, query, percentiles=False, tiers=tiers_on())


@st.cache_data(ttl=300, show_spinner=False)
def percentiles_of(_engine: Engine, url: str, query: ViewQuery) -> View:
    """The view with its p95: the one read of raw samples, after the charts are sent."""
    return with_percentiles(_engine, view_of(_engine, url, query))


@st.cache_data(ttl=300, show_spinner=False)
def charts_of(_engine: Engine, url: str, query: ViewQuery, aggregate: str, per: str) -> list[Chart]:
    """The charts of a view, lines showing ``aggregate``, one per metric or ``per`` area
    (formatted tooltips for every bucket: kept, not made again at every rerun)."""
    view = percentiles_of(_engine, url, query) if aggregate == P95 else view_of(_engine, url, query)
    return view_charts(view, aggregate, "area" if per == "area" else "metric")


WARM_UP_THREAD = "explorer-warm-up"
#: The longest view a link makes the login page read ahead (the longest preset, 30 days,
#: and a day): a longer one is read once the user has logged in.
WARM_UP_SPAN = timedelta(days=31)


class _QuietWarmUp(logging.Filter):
    """Drops Streamlit's "missing ScriptRunContext" warning for the warm-up thread (which
    runs outside any page on purpose), a line in the log at every warm-up otherwise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.threadName != WARM_UP_THREAD


@st.cache_resource(show_spinner=False)
def warm_up_lock() -> threading.Lock:
    """Held while a warm-up runs (one at a time in this server process)."""
    logger = logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context")
    if not any(type(f).__name__ == _QuietWarmUp.__name__ for f in logger.filters):
        logger.addFilter(_QuietWarmUp())
    return threading.Lock()


def warm_up(engine: Engine, url: str, linked: Mapping[str, Any]) -> None:
    """While the login form waits for a user, read what the first view needs.

    The time span, the metric list (documents decoded in Python), the hosts of the range,
    the view's buckets and its charts, into the caches above, in a background thread. The
    view is
    the one the page opens after login: the link's (``linked``: its query string read by
    :func:`~metrics_toolkit.explorer.links.from_params`) when it spans at most
    :data:`WARM_UP_SPAN` and views read the rollup tiers, else the default view (the
    sidebar untouched: all hosts, one line each, the headline metrics, auto width). With
    the tiers off (:func:`~metrics_toolkit.explorer.connection.tiers_on`) a month's view
    reads millions of snapshots: a visitor who has not logged in does not choose one.
    Nothing is shown before login, one warm-up runs at a time, and the caches keep it to
    one per view and TTL whatever the number of login pages served. A failure is left for
    the page to report when it reads the same. The percentiles are not read: the page does
    it after the charts.
    """
    lock = warm_up_lock()
    if not lock.acquire(blocking=False):
        return
    if not tiers_on():
        linked = {}

    def run() -> None:
        try:
            with suppress(Exception):  # not cached: the page meets it again and shows it
                span = span_of(engine, url)
                if span is None:
                    return
                hosts = list(linked.get("hosts", ()))
                infos = metric_infos(engine, url, hosts[0] if len(hosts) == 1 else None)
                query = linked_view(linked, span[1].date(), infos)
                if query is not None and query.end - query.start > WARM_UP_SPAN:
                    infos = metric_infos(engine, url, None)
                    query = linked_view({}, span[1].date(), infos)  # the default view
                if query is not None:  # the queries the sidebar makes, and the charts
                    hosts_of(engine, url, query.start, query.end)
                    view_of(engine, url, query)
                    aggregate = str(linked.get("aggregate", DEFAULTS["aggregate"]))
                    if aggregate != P95:  # p95 reads raw samples: only once logged in
                        per = str(linked.get("per", DEFAULTS["per"]))
                        charts_of(engine, url, query, aggregate, per)
        finally:
            lock.release()

    threading.Thread(target=run, name=WARM_UP_THREAD, daemon=True).start()


@st.cache_data(ttl=15, show_spinner=False)
def latest_of(
    _engine: Engine, url: str, hosts: tuple[str, ...], before: datetime, limit: int
) -> list[RawRow]:
    return latest_snapshots(_engine, hosts=hosts, before=before, limit=limit)


# --------------------------------------------------------------------------------------
# Layout helpers


@contextmanager
def shown_errors(what: str, label: str, *, stop: bool = True) -> Iterator[None]:
    """Show an expected failure as one message in the page (never a traceback)."""
    try:
        yield
    except MetricsToolkitError as error:
        st.error(f"{what}: {error}")
        if stop:
            st.stop()
    except DATABASE_ERRORS as error:
        st.error(f"{what}: database error on {label}: {describe_error(error)}")
        if stop:
            st.stop()


def utc(moment: datetime) -> str:
    return f"{moment:{TIME}} UTC"


def logout() -> None:
    token = st.session_state.get("token")
    if isinstance(token, str):
        revoked_tokens().add(token)
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    st.session_state["logged_out"] = True  # the browser's cookie no longer counts


def cookie_token() -> str | None:
    try:
        return st.context.cookies.get(COOKIE)
    except (AttributeError, RuntimeError):
        return None


@st.cache_resource(show_spinner=False)
def chart_code_script() -> str | None:
    """A ``<script>`` that loads Streamlit's Vega-Lite chart code (its largest download
    after login) while the login form waits; None when this Streamlit has no such file.

    The browser imports it from where Streamlit's own ``index`` script comes from, as the
    page would at its first chart, which then finds it loaded. A failure only loses that.
    """
    code = Path(st.__file__).parent / "static" / "static" / "js"
    found = sorted(code.glob("ArrowVegaLiteChart.*.js"))
    if len(found) != 1 or not re.fullmatch(r"[\w.-]+", found[0].name):
        return None
    return (
        "<script>(() => { const index = document.querySelector('script[src*=\"/js/index.\"]');"
        f" if (index) import(new URL('{found[0].name}', index.src).href).catch(() => {{}});"
        " })();</script>"
    )


def set_cookie(token: str | None) -> None:
    """Store (or delete) the session cookie in the browser; an invisible element."""
    st.html(cookie_script(token), unsafe_allow_javascript=True, width=1)


def client_address() -> str | None:
    try:
        return st.context.ip_address
    except (AttributeError, RuntimeError):
        return None


# --------------------------------------------------------------------------------------
# Login


def password_hash_of(engine: Engine, username: str) -> str | None:
    found = account(engine, username)
    return found.password_hash if found else None


def resume_session(engine: Engine) -> str | None:
    """The user of a valid session cookie (a reload), unless this session logged out."""
    token = cookie_token()
    if st.session_state.get("logged_out") or not token or token in revoked_tokens():
        return None
    name = verify_token(session_secret(), token, lambda n: password_hash_of(engine, n))
    if name is not None:
        st.session_state["user"], st.session_state["token"] = name, token
    return name


def login_gate(engine: Engine, url: str, label: str) -> Account:
    """The logged-in user; otherwise draw the login form and stop the script."""
    user = st.session_state.get("user")
    with shown_errors("Cannot read the users table", label):
        if not (isinstance(user, str) and user):
            user = resume_session(engine)
        found = account(engine, user) if user else None
    if found is not None:
        return found
    if user:  # removed (or renamed) since the login: log out
        logout()
    st.title(TITLE)
    if st.session_state.get("logged_out"):
        set_cookie(None)
    with shown_errors("Cannot read the users table", label):
        exist = users_exist(engine)
    if not exist:
        st.warning(
            "No user exists in this database yet, so the explorer stays closed. "
            "Create one on the server, then reload this page:"
        )
        st.code("metrics-toolkit users add NAME", language="bash")
        st.caption(f"Database: {escape_markdown(label)}")
        st.stop()
    warm_up(engine, url, from_params(st.query_params.get_all))
    form_column = st.columns([2, 3])[0]  # a form as wide as the page looks odd
    with form_column.form("login"):
        st.caption("Log in to see the metrics.")
        username = st.text_input("Username", autocomplete="username")
        password = st.text_input("Password", type="password", autocomplete="current-password")
        submitted = st.form_submit_button("Log in", type="primary")
    preload = chart_code_script()
    if preload and not submitted:  # below the form: an invisible element
        st.html(preload, unsafe_allow_javascript=True, width=1)
    if submitted:
        with shown_errors("Cannot check the login", label):
            outcome = attempt_login(
                engine=engine,
                throttle=throttle_for(url),
                username=username,
                password=password,
                client=client_address(),
            )
        if outcome.ok and outcome.username:
            hashed = password_hash_of(engine, outcome.username) or ""
            st.session_state["user"] = outcome.username
            st.session_state["token"] = issue_token(session_secret(), outcome.username, hashed)
            st.session_state.pop("logged_out", None)
            st.rerun()
        form_column.error(outcome.message)
    st.stop()


# --------------------------------------------------------------------------------------
# Explorer page


def sidebar_query(engine: Engine, url: str, span: tuple[datetime, datetime]) -> ViewQuery | None:
    """Draw the explorer's sidebar; the query it describes (None while it is incomplete)."""
    st.sidebar.header("View")
    state = st.session_state
    # Defaults in the session state (never as widget arguments), so a view restored from
    # the link and one picked by hand are the same thing to every widget.
    for key, value in DEFAULTS.items():
        state.setdefault(key, value)
    choice = st.sidebar.radio("Time range", RANGE_CHOICES, horizontal=True, key="range")
    custom = None
    if choice == CUSTOM:
        last = span[1].date()
        state.setdefault("days", (last - timedelta(days=6), last))
        picked = st.sidebar.date_input("Days (UTC)", key="days")
        if not isinstance(picked, tuple) or len(picked) != 2:
            st.sidebar.info("Pick the first and the last day.")
            return None
        custom = (picked[0], picked[1])
    start, end = resolve_range(choice, custom=custom)
    # Hosts with data in the range, and any already picked (so a pick survives a range change)
    picked_hosts = list(st.session_state.get("hosts", []))
    hosts = st.sidebar.multiselect(
        "Hosts",
        sorted({*hosts_of(engine, url, start, end), *picked_hosts}),
        key="hosts",
        placeholder="All hosts",
        help="Empty: every host. Pick some to show only them.",
    )
    lines = st.sidebar.radio(
        "Hosts drawn",
        LINES,
        horizontal=True,
        key="lines",
        help="per host: one line per host. pooled: the hosts merged into one line per bucket "
        "(sample-weighted mean, lowest min, highest max).",
    )

    infos = metric_infos(engine, url, hosts[0] if len(hosts) == 1 else None)
    by_path = {info.path: info for info in infos}
    if "metrics" not in st.session_state:
        linked = [m for m in st.session_state.pop("linked_metrics", []) if m in by_path]
        st.session_state["metrics"] = linked or default_metrics(infos)
        st.session_state["areas"] = areas(by_path[m] for m in st.session_state["metrics"])
    chosen_areas = st.sidebar.multiselect("Areas", areas(infos), key="areas")
    options = [info.path for info in infos if info.area in chosen_areas]
    st.session_state["metrics"] = [m for m in st.session_state["metrics"] if m in options]
    metrics = st.sidebar.multiselect(
        "Metrics",
        options,
        key="metrics",
        format_func=lambda path: metric_label(by_path[path]),
        help="Grouped by area, with units. Pick areas above to list their metrics.",
    )
    text = st.sidebar.text_input(
        "Interval",
        key="interval",
        help="Bucket width: auto (a few hundred points per chart) or 10s, 5min, 1h, 1D...",
    )
    st.sidebar.selectbox("Aggregate", AGGREGATES, key="aggregate")
    st.sidebar.radio("One chart per", PER, horizontal=True, key="per")
    try:
        interval = normalize_interval(text)
    except InvalidInterval as error:
        st.sidebar.error(str(error))
        st.error("Fix the interval in the sidebar to see the charts.")
        return None
    if not metrics:
        st.info("Pick at least one metric in the sidebar.")
        return None
    return ViewQuery(start, end, tuple(metrics), tuple(hosts), interval, pooled=lines == POOLED)


def explorer_page(engine: Engine, url: str, label: str) -> None:
    st.title("Metrics")
    with shown_errors("Cannot read the database", label):
        span = span_of(engine, url)
    if span is None:
        st.info(
            "The database holds no snapshots yet. Collect some with `metrics-toolkit collect`, "
            "or generate a history with `metrics-toolkit generate --days 7`."
        )
        return
    with shown_errors("Cannot list the metrics", label):
        query = sidebar_query(engine, url, span)
    if query is None:
        return
    with shown_errors("Cannot load the data", label):
        view = view_of(engine, url, query)
    who = ", ".join(query.hosts) if query.hosts else "all hosts"
    who += ", pooled" if not query.by_host and query.host is None else ", one line each"
    width = f"{view.interval} buckets" + (" (auto)" if query.interval == AUTO else "")
    choice = str(st.session_state.get("range"))
    ends = (
        f" (the last complete {format_duration(preset_step(PRESETS[choice]).total_seconds())}"
        " before now)"
        if choice in PRESETS
        else ""
    )
    st.caption(
        escape_markdown(f"{utc(query.start)} – {utc(query.end)}{ends} · {who} · {width}")
        + f" · {view.snapshots:,} snapshots holding {view.samples:,} metric values"
    )
    if view.empty:
        st.warning(
            f"No data between {utc(query.start)} and {utc(query.end)} for these metrics and "
            f"hosts. The database holds snapshots from {utc(span[0])} to {utc(span[1])}: "
            "choose a time range that covers them (Time range › custom)."
        )
        return
    if (
        st.session_state.get("aggregate") == P95
    ):  # the lines need the percentiles; otherwise only the summary does
        with shown_errors("Cannot compute the percentiles", label):
            view = percentiles_of(engine, url, query)
    coverage_notes(view)
    draw_charts(engine, url, query)
    # The charts are on their way to the browser: read the raw samples for the p95 now.
    with shown_errors("Cannot compute the percentiles", label):
        view = percentiles_of(engine, url, query)
    summary_table(view)
    downloads(view)
    report_panel(engine, query, label)
    raw_rows(engine, url, query)


def coverage_notes(view: View) -> None:
    for part in view.rolled_up:
        st.info(
            f"Rolled up: {utc(part.start)} – {utc(part.end)} is stored as {part.interval} "
            f"buckets ({part.rows:,} rows), tinted in the charts. Finer views of that "
            f"part show one point per {part.interval} bucket."
        )
    if not view.rolled_up:  # the notes say the same about rolled-up parts
        for note in view.notes:
            st.caption(escape_markdown(note))
    if view.gaps:
        longest = max(view.gaps, key=lambda g: g.length)
        st.warning(
            f"{len(view.gaps)} gap(s) in collection, shaded red in the charts; the longest is "
            f"{format_duration(longest.length.total_seconds())} from {utc(longest.start)}."
        )
        with st.expander("Gaps"):
            st.dataframe(
                pd.DataFrame(
                    [
                        (g.host or "all", g.start, g.end, format_duration(g.length.total_seconds()))
                        for g in view.gaps
                    ],
                    columns=["host", "start (UTC)", "end (UTC)", "length"],
                ),
                hide_index=True,
            )
    if st.session_state.get("aggregate") == P95 and view.p95 is None:
        st.info(f"{view.p95_reason} The charts show the mean instead.")


def draw_charts(engine: Engine, url: str, query: ViewQuery) -> None:
    aggregate = str(st.session_state.get("aggregate", AGGREGATES[0]))
    charts = charts_of(engine, url, query, aggregate, str(st.session_state.get("per", PER[0])))
    columns = st.columns(2) if len(charts) > 1 else [st.container()]
    for number, chart in enumerate(charts):
        with columns[number % len(columns)]:
            # The human label as the title; the path and its description on hover.
            st.markdown(f"**{escape_markdown(chart.group.title)}**", help=chart.group.details)
            st.vega_lite_chart(chart.data, chart.spec, width="stretch")


def summary_table(view: View) -> None:
    st.subheader("Summary")
    rows = []
    for key, record in view.summary.iterrows():
        host, metric = key if isinstance(key, tuple) else (None, key)
        unit = unit_of(str(metric))
        row: dict[str, Any] = {"host": host} if host is not None else {}
        row["metric"] = metric
        for column in ("mean", "p95", "min", "max"):
            row[column] = format_value(record[column], unit)
        row["samples"] = f"{int(record['samples']):,}"
        rows.append(row)
    counted = "Values of the metric in the range: one per snapshot that holds it."
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        column_config={"samples": st.column_config.Column(help=counted)},
    )
    if view.p95 is None and view.p95_reason:
        st.caption(escape_markdown(view.p95_reason))


def downloads(view: View) -> None:
    name = f"metrics-{view.query.start:%Y%m%dT%H%M}-{view.query.end:%Y%m%dT%H%M}"
    left, right = st.columns(2)
    frame = view.frame
    left.download_button(
        "Download CSV",
        data=lambda: to_csv_bytes(frame),
        file_name=f"{name}.csv",
        mime="text/csv",
        on_click="ignore",
        width="stretch",
    )
    right.download_button(
        "Download Parquet",
        data=lambda: to_parquet_bytes(frame),
        file_name=f"{name}.parquet",
        mime="application/vnd.apache.parquet",
        on_click="ignore",
        width="stretch",
    )


def report_panel(engine: Engine, query: ViewQuery, label: str) -> None:
    st.subheader("Report")
    if not reporting_available():
        st.caption("Reports need the metrics_toolkit.reporting package, not installed here.")
        return
    if len(query.hosts) > 1:
        st.caption("With several hosts selected, the report covers all hosts.")
    if st.button("Build report for this selection"):
        with (
            st.spinner("Building the report…"),
            shown_errors("Cannot build the report", label, stop=False),
        ):
            built = build_report_files(
                engine,
                start=query.start,
                end=query.end,
                host=query.host,
                interval=None if query.interval == AUTO else query.interval,
            )
            st.session_state["report"] = (query, built)
    stored = st.session_state.get("report")
    if stored and stored[0] == query:
        files: ReportFiles = stored[1]
        left, right = st.columns(2)
        left.download_button(
            "Download report (HTML)",
            data=files.html,
            file_name=f"{files.name}.html",
            mime="text/html",
            on_click="ignore",
        )
        if files.pdf:
            right.download_button(
                "Download report (PDF)",
                data=files.pdf,
                file_name=f"{files.name}.pdf",
                mime="application/pdf",
                on_click="ignore",
            )


def raw_rows(engine: Engine, url: str, query: ViewQuery) -> None:
    """The newest documents, read and drawn only once the expander is opened."""
    panel = st.expander("Latest snapshots (raw rows)", key="raw_open", on_change="rerun")
    if not panel.open:
        return
    with panel:
        limit = st.slider("Rows", 1, 20, 3, key="raw_limit")
        rows = latest_of(engine, url, query.hosts, query.end, limit)
        if not rows:
            st.caption("No snapshots before the end of the range.")
        for row in rows:
            kind = f"rolled up to {row.rollup_interval}" if row.rollup_interval else "raw"
            st.text(
                f"{row.timestamp:%Y-%m-%d %H:%M:%S} UTC · {row.host} · {row.metric_type} · {kind}"
            )
            st.json(row.document, expanded=1)


# --------------------------------------------------------------------------------------
# Admin page


def admin_page(engine: Engine, label: str) -> None:
    st.title("Admin")
    st.subheader("Archive policy")
    with shown_errors("Cannot read the policy", label):
        policy = admin.read_policy(engine)
    with st.form("policy"):
        retention = st.number_input("Retention (days)", min_value=0, value=policy.retention_days)
        after = st.number_input(
            "Downsample after (days)", min_value=0, value=policy.downsample_after_days
        )
        interval = st.text_input(
            "Downsample interval",
            value=policy.downsample_interval,
            help="Rollup rule syntax: 10s, 5min, 1h, 1D (dividing a day or whole days).",
        )
        enabled = st.checkbox(
            "Archive rows to Parquet before they are replaced or deleted",
            value=policy.archive_enabled,
        )
        saved = st.form_submit_button("Save policy")
    if saved:
        with shown_errors("Policy not saved", label, stop=False):
            new = admin.save_policy(
                engine,
                retention_days=int(retention),
                downsample_after_days=int(after),
                downsample_interval=interval,
                archive_enabled=enabled,
            )
            st.success(
                f"Policy saved: keep {new.retention_days} days, roll up to "
                f"{new.downsample_interval} after {new.downsample_after_days} days, archive "
                f"{'on' if new.archive_enabled else 'off'}."
            )
    last = policy.last_archive_run
    st.caption(f"Last archive run: {utc(last) if last else 'never'}.")

    st.subheader("Archive dry run")
    if st.button("Plan an archive run now (changes nothing)"):
        with shown_errors("Dry run failed", label, stop=False):
            st.session_state["plan"] = admin.plan_table(engine)
    if "plan" in st.session_state:
        summary, table = st.session_state["plan"]
        st.caption(
            f"At {utc(summary['now'])}: rows before {utc(summary['deleted before'])} are deleted; "
            f"rows before {utc(summary['rolled up before'])} are rolled up to "
            f"{summary['interval']}; archive {'on' if summary['archive'] else 'off'}."
        )
        if table.empty:
            st.success("Nothing to do: the data already follows the policy.")
        else:
            st.dataframe(table, hide_index=True, width="stretch")

    st.subheader("Config")
    with shown_errors("Cannot read the config", label):
        st.dataframe(admin.config_table(engine), hide_index=True, width="stretch")
    with st.form("config"):
        key = st.selectbox("Key", [entry.key for entry in CONFIG_KEYS])
        text = st.text_input("New value (JSON)", placeholder='"30s", 10, true, ["cpu", "memory"]')
        stored = st.form_submit_button("Save config value")
    if stored:
        with shown_errors(f"Config {key} not saved", label, stop=False):
            value = admin.save_config(engine, str(key), text)
            st.success(f"Saved {key} = {value!r}.")

    st.subheader("Users")
    with shown_errors("Cannot list users", label):
        st.dataframe(admin.users_table(engine), hide_index=True, width="stretch")
    st.caption("Add, change or remove users with `metrics-toolkit users add|passwd|remove NAME`.")


# --------------------------------------------------------------------------------------
# The page


def closed(message: str) -> NoReturn:
    """The page when the database cannot be used: the reason, and what to do."""
    st.title(TITLE)
    st.error(message)
    st.caption("Fix the database URL (METRICS_TOOLKIT_DATABASE_URL) or start the server.")
    st.stop()


def main() -> None:
    st.set_page_config(
        page_title=TITLE, page_icon="📈", layout="wide", initial_sidebar_state=SIDEBAR_WIDTH
    )
    with shown_errors("Cannot open the database", "the configured database"):
        url = database_url()
        label = database_label(url)
    try:
        engine = engine_for(url)
    except MetricsToolkitError as error:
        closed(str(error))
    except DATABASE_ERRORS as error:
        closed(f"Cannot use database {label}: {describe_error(error)}")
    user = login_gate(engine, url, label)
    restore_view()
    with st.sidebar:
        top, button = st.columns([3, 2], vertical_alignment="center")
        role = " (admin)" if user.is_admin else ""
        top.markdown(f"Logged in as **{escape_markdown(user.username)}**{role}")
        button.button("Log out", on_click=logout)
        st.caption(f"Database: {escape_markdown(label)}")
        st.session_state.setdefault("page", EXPLORER)
        if user.is_admin:
            page = st.radio("Page", (EXPLORER, ADMIN), horizontal=True, key="page")
        else:
            page = str(st.session_state["page"])
        token = st.session_state.get("token")
        if isinstance(token, str):
            set_cookie(token)  # kept in the browser: a reload keeps the login
    if page != ADMIN:
        explorer_page(engine, url, label)
    elif user.is_admin:
        admin_page(engine, label)
    else:
        refused()
    st.query_params.from_dict(to_params(st.session_state.to_dict(), page).items())


def restore_view() -> None:
    """Once per browser session, after login: the sidebar from the link's query string."""
    if st.session_state.get("view_restored"):
        return
    st.session_state["view_restored"] = True
    for key, value in from_params(st.query_params.get_all).items():
        if key == "page":
            st.session_state["page"] = ADMIN if value == "admin" else EXPLORER
        elif key == "metrics":
            st.session_state["linked_metrics"] = value  # checked against the data later
        else:
            st.session_state[key] = value


def to_explorer() -> None:
    st.session_state["page"] = EXPLORER


def refused() -> None:
    """What a non-admin sees when a link (or a crafted URL) asks for the Admin page."""
    st.title(ADMIN)
    st.error(
        "Refused: the Admin page is for administrators only. Ask an admin to run "
        "`metrics-toolkit users add NAME --admin` for an administrator account."
    )
    st.button("Back to the explorer", on_click=to_explorer)


if __name__ == "__main__":  # streamlit runs this file as __main__
    main()
