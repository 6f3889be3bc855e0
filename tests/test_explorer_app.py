"""The Streamlit explorer driven by AppTest against real databases (issue 6).

Each test runs ``streamlit_app.py`` as Streamlit would, with the database URL in the
environment, and reads what the page shows: messages, widgets, and the data sent to the
charts (decoded from the Arrow bytes of each Vega-Lite chart).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import streamlit as st
from sqlalchemy import event, text
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Button, TextInput

from metrics_toolkit.archive.runner import dry_run, run_archive
from metrics_toolkit.explorer import app as page
from metrics_toolkit.explorer.markup import escape_markdown
from metrics_toolkit.explorer.query import ViewQuery, default_metrics, resolve_range
from metrics_toolkit.explorer.report import reporting_available
from metrics_toolkit.frames.load import load_frame
from metrics_toolkit.reporting.charts import PALETTE
from metrics_toolkit.store.config import get_config
from metrics_toolkit.store.db import make_engine, session_scope
from metrics_toolkit.store.ingest import write_snapshots
from metrics_toolkit.store.policies import get_active_policy, update_policy
from metrics_toolkit.store.users import get_user
from tests.test_explorer_support import PASSWORD, USER, add_account, fill

APP = Path(__file__).resolve().parent.parent / "streamlit_app.py"
TIMEOUT = 60


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    # Caches live in the process and are keyed by URL; the PostgreSQL URL is the same for
    # every test, so each test starts from empty caches (and a fresh login throttle).
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def app_for(url: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("METRICS_TOOLKIT_DATABASE_URL", url)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    return at


def log_in(at: AppTest, username: str = USER, password: str = PASSWORD) -> AppTest:
    field(at, "Username").set_value(username)
    field(at, "Password").set_value(password)
    button(at, "Log in").click()
    return at.run()


def button(at: AppTest, label: str) -> Button:
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r}; buttons: {[b.label for b in at.button]}"
    return found[0]


def field(at: AppTest, label: str) -> TextInput:
    found = [f for f in at.text_input if f.label == label]
    assert found, f"no text input {label!r}"
    return found[0]


def elements(at: AppTest, kind: str) -> list[Any]:
    """Every element of ``kind`` on the page (``at.get`` for types AppTest has no list for)."""
    return list(at.get(kind))


def texts(at: AppTest) -> str:
    """Everything the page says, as one string (messages, markdown, captions, titles)."""
    parts: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "error", "warning",
                 "info", "success", "text", "code"):  # fmt: skip
        parts.extend(str(element.value) for element in elements(at, kind))
    return "\n".join(parts)


def chart_tables(at: AppTest) -> list[pd.DataFrame]:
    """The rows each Vega-Lite chart on the page received."""
    tables = []
    for chart in elements(at, "vega_lite_chart"):
        proto = chart.proto
        raw = proto.data.data if proto.HasField("data") else proto.datasets[0].data.data
        tables.append(pa.ipc.open_stream(raw).read_all().to_pandas())
    return tables


def summary_table(at: AppTest) -> pd.DataFrame:
    """The summary table (the page may also show a table of gaps)."""
    found = [t.value for t in at.dataframe if "samples" in t.value.columns]
    assert len(found) == 1, [list(t.value.columns) for t in at.dataframe]
    return found[0]


@pytest.fixture
def filled_url(sqlite_url: str) -> str:
    fill(sqlite_url)
    return sqlite_url


@pytest.fixture
def filled_db(db_url: str) -> str:
    fill(db_url)
    return db_url


# --------------------------------------------------------------------------------------
# Login


def test_nothing_but_the_login_form_before_login(
    filled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = app_for(filled_url, monkeypatch)
    assert not at.exception
    assert [f.label for f in at.text_input] == ["Username", "Password"]
    assert not elements(at, "vega_lite_chart")
    assert not elements(at, "dataframe")
    assert not elements(at, "download_button")
    assert not elements(at, "json")
    assert not list(at.sidebar.multiselect) and not list(at.sidebar.radio)
    page = texts(at)
    for secret in ("web-1", "db-1", "cpu.usage_percent", "sqlite"):
        assert secret not in page


def test_login_page_warms_the_first_views_caches(
    filled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # While the form waits, a background thread reads the span, the metric list, the default
    # range's hosts and the default view into the caches (issue 14: the render after the click).
    at = app_for(filled_url, monkeypatch)
    assert [f.label for f in at.text_input] == ["Username", "Password"]
    # The browser meanwhile loads the chart code (an import in an invisible element).
    scripts = [str(e.proto.body) for e in elements(at, "html")]
    assert any("ArrowVegaLiteChart." in body and "import(" in body for body in scripts)
    lock = page.warm_up_lock()
    assert lock.acquire(timeout=TIMEOUT), "the warm-up never ended"
    lock.release()
    url = page.database_url()
    engine = page.engine_for(url)
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        span = page.span_of(engine, url)
        infos = page.metric_infos(engine, url, None)
        start, end = resolve_range("24h")
        hosts = page.hosts_of(engine, url, start, end)
        default = ViewQuery(start, end, tuple(default_metrics(infos)), pooled=False)
        view = page.view_of(engine, url, default)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert not statements, statements  # all from the caches
    assert not view.empty and view.p95 is None  # the buckets; the percentiles come later
    assert span is not None and hosts == ["db-1", "web-1"]
    assert "cpu.usage_percent" in {info.path for info in infos}
    log_in(at)
    assert len(elements(at, "vega_lite_chart")) == len(default.metrics) and not at.exception


def _views_built(monkeypatch: pytest.MonkeyPatch) -> list[ViewQuery]:
    """The queries whose view, then charts, the page computes from now on (the real
    build_view and view_charts run): each query once per computation of either."""
    built: list[ViewQuery] = []
    real_view, real_charts = page.build_view, page.view_charts

    def view(source: Any, query: ViewQuery, **kwargs: Any) -> Any:
        built.append(query)
        return real_view(source, query, **kwargs)

    def charts(view: Any, aggregate: str, per: Any) -> Any:
        built.append(view.query)
        return real_charts(view, aggregate, per)

    monkeypatch.setattr(page, "build_view", view)
    monkeypatch.setattr(page, "view_charts", charts)
    return built


@pytest.mark.parametrize(
    ("link", "ahead"),
    [
        ({}, True),  # no link: the default view
        ({"range": "custom", "from": "TODAY-1", "to": "TODAY"}, True),
        (
            {"range": "7d", "host": "web-1", "metric": ["memory.used_bytes", "no.such"],
             "interval": "1h", "lines": "pooled"},
            True,
        ),
        ({"range": "custom", "from": "TODAY-2", "to": "TODAY", "host": ["db-1", "web-1"]}, True),
        ({"range": "custom", "from": "TODAY-40", "to": "TODAY"}, False),  # too long to read ahead
    ],
)  # fmt: skip
@pytest.mark.parametrize("tiers", ["on", "off"])
def test_login_page_reads_the_linked_view_ahead(
    filled_url: str,
    monkeypatch: pytest.MonkeyPatch,
    link: dict[str, Any],
    ahead: bool,
    tiers: str,
) -> None:
    # A link opens its view after login; the login page reads that view while the form
    # waits (not the default one), so the click only draws it; a longer one is read after.
    today = datetime.now(UTC).date()
    params = {
        key: [v.replace("TODAY", str(today)) for v in value] if isinstance(value, list)
        else value if "TODAY" not in value
        else str(today - timedelta(days=int(value.partition("-")[2] or 0)))
        for key, value in link.items()
    }  # fmt: skip
    built = _views_built(monkeypatch)
    monkeypatch.setenv("METRICS_TOOLKIT_DATABASE_URL", filled_url)
    monkeypatch.setenv("METRICS_TOOLKIT_EXPLORER_TIERS", tiers)
    # tiers off: views read the snapshots, so a visitor not logged in gets the default view
    ahead = ahead and (tiers == "on" or not link)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params = params
    at.run()
    lock = page.warm_up_lock()
    assert lock.acquire(timeout=TIMEOUT), "the warm-up never ended"
    lock.release()
    ahead_of_login = list(built)
    assert len(ahead_of_login) == 2 and ahead_of_login[0] == ahead_of_login[1]  # view, charts
    log_in(at)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert elements(at, "vega_lite_chart")
    after_login = built[len(ahead_of_login) :]
    shown = after_login[-1] if after_login else ahead_of_login[0]
    if ahead:  # the page's view and charts are those read ahead: nothing left to compute
        assert after_login == [], (ahead_of_login, after_login)
    else:  # the default view was read ahead; the link's after the click
        assert ahead_of_login[0].end - ahead_of_login[0].start == timedelta(hours=24)
        assert after_login == [shown, shown] and shown != ahead_of_login[0]
        if tiers == "on":
            assert shown.end - shown.start > page.WARM_UP_SPAN
    at.run()  # a rerun (any widget touched) draws the same charts: none made again
    assert built[len(ahead_of_login) + len(after_login) :] == []
    if "from" in params:
        assert shown.start == datetime.fromisoformat(params["from"]).replace(tzinfo=UTC)
    if "host" in link:
        hosts = link["host"] if isinstance(link["host"], list) else [link["host"]]
        assert shown.hosts == tuple(hosts)
    if "metric" in link:
        assert shown.metrics == ("memory.used_bytes",) and shown.interval == "1h"
        assert shown.pooled is True


def test_login_success_shows_charts_and_records_last_login(
    filled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = log_in(app_for(filled_url, monkeypatch))
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    assert elements(at, "vega_lite_chart"), texts(at)
    assert f"Logged in as **{USER}**" in texts(at)
    engine = make_engine(filled_url)
    with session_scope(engine) as session:
        user = get_user(session=session, username=USER)
        assert user is not None and user.last_login is not None
    engine.dispose()


@pytest.mark.parametrize(
    ("username", "password"), [(USER, "wrong password"), ("mallory", PASSWORD)]
)
def test_login_failure_does_not_say_which_part_was_wrong(
    filled_url: str, monkeypatch: pytest.MonkeyPatch, username: str, password: str
) -> None:
    at = log_in(app_for(filled_url, monkeypatch), username, password)
    assert [e.value for e in at.error] == ["Wrong username or password."]
    assert not elements(at, "vega_lite_chart")
    assert "user" not in at.session_state


def test_repeated_failures_lock_the_account_out(
    filled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = app_for(filled_url, monkeypatch)
    for _ in range(5):
        log_in(at, USER, "guess")
    assert "Too many failed logins" in at.error[0].value
    log_in(at, USER, PASSWORD)  # even the right password is refused while locked
    assert "Too many failed logins" in at.error[0].value
    assert not elements(at, "vega_lite_chart")


def test_logout_ends_the_session(filled_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = log_in(app_for(filled_url, monkeypatch))
    assert elements(at, "vega_lite_chart")
    button(at, "Log out").click()
    at.run()
    assert [f.label for f in at.text_input] == ["Username", "Password"]
    assert not elements(at, "vega_lite_chart")
    assert not elements(at, "download_button")


# --------------------------------------------------------------------------------------
# Explorer page


def test_metric_selection_changes_the_chart_data(
    filled_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = log_in(app_for(filled_db, monkeypatch))
    before = {s for table in chart_tables(at) for s in table["series"]}
    assert before == {"db-1", "web-1"}  # one line per host by default
    at.text_input(key="interval").set_value("1h")
    at.multiselect(key="metrics").set_value(["memory.used_bytes"])
    at.radio(key="lines").set_value("pooled")
    at.run()
    assert not at.exception and not at.error
    (table,) = chart_tables(at)
    assert set(table["series"]) == {"memory.used_bytes"}
    # The chart shows GiB: compare with load_frame's hourly means (whole buckets from the
    # first, up to the range's end: it ends at now, so the last bucket may be partial).
    assert "GiB" in texts(at) or table["value"].max() < 1024
    stamps = pd.to_datetime(table["timestamp"], unit="ms", utc=True)
    shown = pd.Series(table["value"].to_numpy() * 1024**3, index=stamps).iloc[1:]
    (spec,) = chart_specs(at)
    end = datetime.fromisoformat(spec["layer"][-1]["encoding"]["x"]["scale"]["domain"][1])
    expected = load_frame(
        filled_db,
        shown.index[0],
        end,
        metrics=["memory.used_bytes"],
        interval="1h",
    )["memory.used_bytes"]
    np.testing.assert_allclose(shown.to_numpy(), expected.reindex(shown.index), rtol=1e-9)


def test_interval_change_rebuckets_and_bad_interval_is_explained(
    filled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = log_in(app_for(filled_url, monkeypatch))
    auto = chart_tables(at)[0]
    at.text_input(key="interval").set_value("2h").run()
    assert "2h buckets" in texts(at)
    table = chart_tables(at)[0]
    steps = np.diff(np.sort(table["timestamp"].unique()))
    assert len(table) < len(auto)
    assert (steps % 7_200_000 == 0).all()
    at.text_input(key="interval").set_value("7min").run()
    messages = " ".join(e.value for e in at.error)
    assert "7min" in messages and "10s, 5min, 1h, 1D" in messages
    assert not elements(at, "vega_lite_chart")
    assert not at.exception


def test_downloads_and_summary_are_present(
    filled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = log_in(app_for(filled_url, monkeypatch))
    labels = [b.label for b in elements(at, "download_button")]
    assert labels == ["Download CSV", "Download Parquet"]
    summary = summary_table(at)
    assert list(summary.columns) == ["host", "metric", "mean", "p95", "min", "max", "samples"]
    assert set(summary["host"]) == {"db-1", "web-1"}
    assert "cpu.usage_percent" in set(summary["metric"])
    assert summary["mean"].str.endswith("%").any()


def test_several_hosts_are_drawn_apart(filled_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = log_in(app_for(filled_url, monkeypatch))
    at.multiselect(key="hosts").set_value(["db-1", "web-1"])
    at.multiselect(key="metrics").set_value(["cpu.usage_percent"])
    at.run()
    (table,) = chart_tables(at)
    assert set(table["series"]) == {"db-1", "web-1"}
    summary = summary_table(at)
    assert set(summary["host"]) == {"db-1", "web-1"}


def test_rolled_up_part_and_missing_p95_are_explained(
    filled_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(filled_db)
    with session_scope(engine) as session:
        update_policy(session=session, downsample_after_days=1, archive_enabled=False)
    run_archive(engine)
    engine.dispose()
    at = log_in(app_for(filled_db, monkeypatch))
    at.radio(key="range").set_value("7d")
    at.selectbox(key="aggregate").set_value("p95")
    at.run()
    page = texts(at)
    assert "is stored as 1h buckets" in page
    assert "p95 needs raw samples" in page
    assert elements(at, "vega_lite_chart")
    assert not at.exception


def test_empty_range_says_where_the_data_is(
    filled_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = log_in(app_for(filled_db, monkeypatch))
    at.radio(key="range").set_value("custom").run()
    picked = at.date_input(key="days").value
    assert isinstance(picked, tuple) and len(picked) == 2
    start = picked[0]
    at.date_input(key="days").set_value((start - timedelta(days=60), start - timedelta(days=50)))
    at.run()
    assert "No data between" in at.warning[0].value
    assert "The database holds snapshots from" in at.warning[0].value
    assert not elements(at, "vega_lite_chart")


def test_raw_rows_show_the_latest_documents(
    filled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = log_in(app_for(filled_url, monkeypatch))
    assert not elements(at, "json")  # read only once the panel is opened (issue 14)
    at.session_state["raw_open"] = True  # the user opens "Latest snapshots (raw rows)"
    at.run()
    documents = [element.value for element in elements(at, "json")]
    assert len(documents) == 3
    assert all('"host"' in doc for doc in documents)


# --------------------------------------------------------------------------------------
# Admin page


def admin(at: AppTest) -> AppTest:
    at.radio(key="page").set_value("Admin")
    return at.run()


def test_admin_policy_edit_validates_and_persists(
    filled_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = admin(log_in(app_for(filled_db, monkeypatch)))
    retention, after = at.number_input
    retention.set_value(10)
    after.set_value(12)
    button(at, "Save policy").click()
    at.run()
    assert "must be less than" in at.error[0].value
    engine = make_engine(filled_db)
    with session_scope(engine) as session:
        policy = get_active_policy(session=session)
        assert policy is not None and policy.retention_days == 30  # unchanged
    at.number_input[0].set_value(14)
    at.number_input[1].set_value(2)
    field(at, "Downsample interval").set_value("30min")
    button(at, "Save policy").click()
    at.run()
    assert not at.error, [e.value for e in at.error]
    assert "Policy saved" in at.success[0].value
    with session_scope(engine) as session:
        policy = get_active_policy(session=session)
        assert policy is not None
        assert (policy.retention_days, policy.downsample_after_days) == (14, 2)
        assert policy.downsample_interval == "30min"
    engine.dispose()


def test_admin_dry_run_config_and_users(filled_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(filled_db)
    with session_scope(engine) as session:
        update_policy(session=session, downsample_after_days=1)
    add_account(engine, "bob", "another password")
    at = admin(log_in(app_for(filled_db, monkeypatch)))
    button(at, "Plan an archive run now (changes nothing)").click()
    at.run()
    plan_table = at.dataframe[0].value
    _, actions = dry_run(engine)
    assert int(plan_table["rows"].sum()) == sum(a.rows for a in actions) > 0
    with engine.connect() as connection:  # a dry run changes nothing
        assert "_rollup" not in str(
            connection.execute(text("SELECT metric_data FROM metrics_snapshots LIMIT 1")).scalar()
        )
    # config: a non-JSON value is refused, a valid one stored
    at.selectbox[0].set_value("spool.max_rows")
    field(at, "New value (JSON)").set_value("many")
    button(at, "Save config value").click()
    at.run()
    assert "'many' is not JSON" in at.error[0].value
    at.selectbox[0].set_value("spool.max_rows")
    field(at, "New value (JSON)").set_value("5000")
    button(at, "Save config value").click()
    at.run()
    assert not at.error, [e.value for e in at.error]
    with session_scope(engine) as session:
        assert get_config(session=session, key="spool.max_rows") == 5000
    users = at.dataframe[-1].value
    assert set(users["username"]) == {USER, "bob"}
    assert "password_hash" not in users.columns
    engine.dispose()


# --------------------------------------------------------------------------------------
# Databases the explorer cannot show


def test_empty_database_message(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(sqlite_url)
    add_account(engine)
    engine.dispose()
    at = log_in(app_for(sqlite_url, monkeypatch))
    assert "holds no snapshots yet" in at.info[0].value
    assert "metrics-toolkit generate" in at.info[0].value
    assert not at.exception


def test_no_user_means_no_explorer(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fill(sqlite_url, days=1, user=False)
    at = app_for(sqlite_url, monkeypatch)
    assert "No user exists" in at.warning[0].value
    assert "metrics-toolkit users add NAME" in texts(at)
    assert not at.text_input  # no login form, and certainly no data
    assert not elements(at, "vega_lite_chart")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://viewer:s3cret@127.0.0.1:1/metrics", "127.0.0.1:1"),
        ("sqlite:////nonexistent/dir/metrics.db", "does not exist"),
        ("mysql://viewer:s3cret@127.0.0.1/metrics", "supports sqlite"),
    ],
)
def test_unreachable_database_message(
    url: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = app_for(url, monkeypatch)
    assert not at.exception
    message = " ".join(e.value for e in at.error)
    assert expected in message
    assert "s3cret" not in texts(at)
    assert not at.text_input


def test_report_button_offers_html_and_pdf(
    filled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not reporting_available():
        pytest.skip("metrics_toolkit.reporting is not installed in this checkout")
    at = log_in(app_for(filled_url, monkeypatch))
    button(at, "Build report for this selection").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    labels = [b.label for b in elements(at, "download_button")]
    assert "Download report (HTML)" in labels and "Download report (PDF)" in labels


def test_strings_from_the_data_are_escaped(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hostile = "<script>alert(1)</script>**x**"
    start, _ = fill(sqlite_url, days=1)
    engine = make_engine(sqlite_url)
    write_snapshots(
        engine,
        [
            (
                start + timedelta(minutes=5 * i),
                "aggregated",
                {"host": hostile, "cpu": {"usage_percent": 5.0}},
            )
            for i in range(12)
        ],
    )
    engine.dispose()
    at = log_in(app_for(sqlite_url, monkeypatch))
    at.multiselect(key="hosts").set_value([hostile]).run()
    sources = [str(e.value) for kind in ("markdown", "caption") for e in elements(at, kind)]
    assert any("\\<script\\>" in source for source in sources)  # shown, as text
    assert not any("<script>" in source for source in sources)
    assert not at.exception


# --------------------------------------------------------------------------------------
# As a Grafana user expects it (issue 14): lines per host, colours, tooltips, titles,
# ranges, links, roles


def chart_specs(at: AppTest) -> list[dict[str, Any]]:
    return [json.loads(chart.proto.spec) for chart in elements(at, "vega_lite_chart")]


def test_default_view_one_line_per_host_in_the_reports_colours(
    filled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = datetime.now(UTC)
    at = log_in(app_for(filled_url, monkeypatch))
    tables, specs = chart_tables(at), chart_specs(at)
    assert tables and len(tables) == len(specs)
    for table, spec in zip(tables, specs, strict=True):
        assert set(table["series"]) == {"db-1", "web-1"}
        line = spec["layer"][-1]["encoding"]
        assert line["color"]["scale"] == {"domain": ["db-1", "web-1"], "range": list(PALETTE[:2])}
        # never in the future: the x axis and the data end by now
        assert datetime.fromisoformat(line["x"]["scale"]["domain"][1]) <= datetime.now(UTC)
        assert table["timestamp"].max() <= before.timestamp() * 1000
        titles = [item["title"] for item in line["tooltip"]]
        assert titles == ["time", "host", "mean", "min", "max"]
    cpu = tables[0]
    row = cpu.dropna(subset=["value"]).iloc[-1]
    assert row["shown"] == row["mean"] and row["mean"].endswith(" %")
    stamp = pd.Timestamp(int(row["timestamp"]), unit="ms", tz="UTC")
    assert row["bucket"].startswith(f"{stamp:%a %Y-%m-%d %H:%M} UTC (")  # date and time of day
    assert row["host"] == row["series"]
    page = texts(at)
    assert "**CPU busy**" in page and "**Memory used**" in page  # the reports' labels
    details = {str(m.value): m.proto.help for m in elements(at, "markdown")}
    assert details["**CPU busy**"] == "cpu.usage_percent: CPU busy time, all cores"  # on hover
    assert "psutil" not in page and "**memory.usage_percent" not in page
    assert "the last complete 5 min before now" in page
    summary = summary_table(at)
    assert set(summary["host"]) == {"db-1", "web-1"}

    at.radio(key="lines").set_value("pooled").run()
    tables = chart_tables(at)
    assert all(table["series"].nunique() == 1 for table in tables)
    assert set(tables[0]["host"].dropna()) - {""} == {"all hosts"}
    assert "all hosts, pooled" in texts(at)
    assert "host" not in summary_table(at).columns


def test_band_legend_and_counted_snapshots(
    filled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = log_in(app_for(filled_url, monkeypatch))
    at.selectbox(key="aggregate").set_value("mean with min-max band").run()
    spec = chart_specs(at)[0]
    area, line = spec["layer"][-2], spec["layer"][-1]
    assert area["mark"]["type"] == "area" and line["mark"]["type"] == "line"
    legend = line["encoding"]["color"]["legend"]
    assert legend["symbolType"] == "stroke" and legend["symbolOpacity"] == 1
    # "N snapshots holding M metric values": N is the rows stored in the shown range
    caption = next(c for c in texts(at).splitlines() if "snapshots holding" in c)
    shown = int(caption.split(" snapshots holding")[0].rsplit("· ", 1)[1].replace(",", ""))
    start, end = (line["encoding"]["x"]["scale"]["domain"][i] for i in (0, 1))
    engine = make_engine(filled_url)
    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT count(*) FROM metrics_snapshots WHERE timestamp >= :a AND timestamp < :b"),
            {"a": datetime.fromisoformat(start), "b": datetime.fromisoformat(end)},
        ).scalar()
    engine.dispose()
    assert shown == stored


def test_the_view_goes_to_the_link_and_comes_back_after_login(
    filled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = log_in(app_for(filled_url, monkeypatch))
    at.radio(key="range").set_value("7d")
    at.multiselect(key="hosts").set_value(["web-1"])
    at.multiselect(key="metrics").set_value(["cpu.usage_percent", "memory.used_bytes"])
    at.text_input(key="interval").set_value("1h")
    at.selectbox(key="aggregate").set_value("max")
    at.run()
    link = dict(at.query_params)
    assert link == {
        "range": "7d",
        "interval": "1h",
        "aggregate": "max",
        "host": "web-1",
        "metric": ["cpu.usage_percent", "memory.used_bytes"],
    }
    # Someone opens the link: the login form first, then exactly that view.
    st.cache_resource.clear()
    monkeypatch.setenv("METRICS_TOOLKIT_DATABASE_URL", filled_url)
    other = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    other.query_params = dict(link)
    other.run()
    assert [f.label for f in other.text_input] == ["Username", "Password"]
    log_in(other)
    assert other.radio(key="range").value == "7d"
    assert other.multiselect(key="hosts").value == ["web-1"]
    assert other.multiselect(key="metrics").value == ["cpu.usage_percent", "memory.used_bytes"]
    assert other.text_input(key="interval").value == "1h"
    assert other.selectbox(key="aggregate").value == "max"
    # The caption names the host (the raw rows, which also did, are read once opened).
    assert "1h buckets" in texts(other) and escape_markdown("web-1, one line") in texts(other)
    assert dict(other.query_params) == link
    # Nonsense in a link is ignored, never an error.
    bad = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    bad.query_params = {"range": "2y", "interval": "7min", "metric": "no.such", "from": "x"}
    bad.run()
    log_in(bad)
    assert not bad.exception and not bad.error
    assert bad.radio(key="range").value == "24h"
    assert "cpu.usage_percent" in bad.multiselect(key="metrics").value


def test_only_admins_see_or_reach_the_admin_page(
    filled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(filled_url)
    add_account(engine, "bob", "another password")
    with session_scope(engine) as session:
        alice, bob = (get_user(session=session, username=n) for n in (USER, "bob"))
        assert alice is not None and alice.is_admin  # the first user
        assert bob is not None and not bob.is_admin
    engine.dispose()
    at = admin(log_in(app_for(filled_url, monkeypatch)))
    assert "Archive policy" in texts(at) and at.query_params.get("page") == "admin"
    assert "(admin)" in texts(at)

    plain = log_in(app_for(filled_url, monkeypatch), "bob", "another password")
    assert not [r for r in plain.sidebar.radio if r.label == "Page"]  # no way to the page
    assert "Archive policy" not in texts(plain)
    crafted = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    crafted.query_params = {"page": "admin"}
    crafted.run()
    log_in(crafted, "bob", "another password")
    assert "Refused: the Admin page is for administrators only" in crafted.error[0].value
    page = texts(crafted)
    for secret in ("Archive policy", "Config", "Users", "retention"):
        assert secret not in page
    assert not elements(crafted, "dataframe") and not crafted.number_input
    button(crafted, "Back to the explorer").click()
    crafted.run()
    assert elements(crafted, "vega_lite_chart") and not crafted.error
